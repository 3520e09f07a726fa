"""Shared test settings and fixtures: figures render off screen (Agg), whatever display pytest-xvfb or napari's plugins
set up; `refuses` runs a `temrf` command that must fail with one line and leave its workspace as it was."""
import os, shlex

import pytest

os.environ.setdefault('MPLBACKEND', 'Agg')


def tree(w):
    "Every path below folder `w`, relative and sorted"
    return sorted(str(p.relative_to(w)) for p in w.rglob('*'))


@pytest.fixture
def refuses(capsys):
    "`refuses(ws, args, msg)`: `temrf <args>` ({w}: the workspace `ws`) exits 1 with one line `temrf <command>: error: ...msg...`"
    from temrf.cli import main
    def check(ws, args, msg):
        before = tree(ws)
        capsys.readouterr()
        rc, err = main(shlex.split(args.format(w=ws))), capsys.readouterr().err
        lines = err.strip().splitlines()
        assert rc == 1 and len(lines) == 1, err
        assert lines[0].startswith(f"temrf {args.split()[0]}: error: "), lines[0]
        assert msg.format(w=ws) in lines[0], lines[0]
        assert tree(ws) == before, 'a failed command left files behind'
    return check
