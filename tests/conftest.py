"""Shared test settings and fixtures: figures render off screen (Agg), whatever display pytest-xvfb or napari's plugins
set up; `one_thread` keeps torch on one thread for a module; `refuses` runs a `temrf` command that must fail with one
line and leave its workspace as it was. Markers: `slow` (seconds each: subprocesses, clusters, a site build) and
`network` (fetches test files once); `make test` runs everything, `make quick` skips both."""
import os, shlex

import pytest


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: takes seconds (subprocesses, a Dask cluster, the docs site); make quick skips it')
    config.addinivalue_line('markers', 'network: fetches files (cached after the first run); make quick skips it')


@pytest.fixture(scope='module')
def one_thread():
    "torch on one thread for the module's tests: their tiny batches run faster so on a shared CPU"
    import torch
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

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
