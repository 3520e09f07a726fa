"temrf.sweep end to end: a papermill sweep killed with SIGKILL midway resumes with every run recorded once"
import json, os, signal, subprocess, sys, textwrap, time
from pathlib import Path

import pandas as pd
import pytest

import temrf
from temrf.datasets import toy_pair
from temrf.runs import COLUMNS
from temrf.model import Arch
from temrf.sweep import make_grid, run_sweep, sweep_cmd

REPO = Path(__file__).resolve().parents[1]


def test_run_notebook_shape():
    "First code cell tagged `parameters` with the run's parameters; nbdev frontmatter skips its execution"
    from nbdev.process import NBProcessor
    from nbdev.frontmatter import FrontmatterProc
    nb_file = Path(temrf.__file__).parent/'sweeps'/'run.ipynb'
    nb = json.loads(nb_file.read_text())
    code = [c for c in nb['cells'] if c['cell_type'] == 'code']
    assert code[0]['metadata'].get('tags') == ['parameters']
    names = {l.split('=')[0].strip() for l in ''.join(code[0]['source']).splitlines() if '=' in l}
    assert {'spec', 'out', 'data_dir'} <= names
    assert (REPO/'nbs'/'sweeps').exists() is False  # one copy: the package's
    fm = NBProcessor(nb_file, procs=FrontmatterProc, process=True).nb.frontmatter_
    assert fm.get('skip_exec') is True


def _grid(data):
    "Two tiny runs (64-px patches, 1 epoch) of equal complexity"
    return make_grid([str(data)], [Arch((2, 2)), Arch((2, 2), (1, 1, 2))], seeds=(752,), epochs=1, lr=1e-3, patch=64)


SWEEP = textwrap.dedent("""
    import sys
    from temrf.model import Arch
    from temrf.sweep import make_grid, run_sweep
    data, out = sys.argv[1:]
    runs = make_grid([data], [Arch((2, 2)), Arch((2, 2), (1, 1, 2))], seeds=(752,), epochs=1, lr=1e-3, patch=64)
    run_sweep(runs, out, progress=False)
""")


@pytest.mark.slow
def test_sigkill_midway_then_resume(tmp_path, monkeypatch, capfd):
    "SIGKILL the sweep (and its kernel) once the first record exists; the rerun records every run exactly once"
    data, out = tmp_path/'toy', tmp_path/'sweep'
    toy_pair(data)
    runs = _grid(data)
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    p = subprocess.Popen([sys.executable, '-c', SWEEP, str(data), str(out)], env=env, start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = out/'runs'/runs[0].run_id/'record.json'
    try:
        t0 = time.time()
        while not first.exists() and p.poll() is None and time.time() - t0 < 120: time.sleep(0.2)
        assert first.exists(), 'the sweep wrote no record'
    finally:
        os.killpg(p.pid, signal.SIGKILL)  # the sweep and the papermill kernel it started
        p.wait()
    assert p.returncode == -signal.SIGKILL
    assert not (out/'runs'/runs[1].run_id/'record.json').exists(), 'the kill came too late to test resuming'
    mtime = first.stat().st_mtime_ns
    if (out/'results.csv').exists(): pd.read_csv(out/'results.csv')  # never half-written
    monkeypatch.setenv('OMP_NUM_THREADS', '1')  # the rerun's kernels: tiny batches on a shared CPU
    capfd.readouterr()
    df = run_sweep(runs, out, progress=False)
    assert 'without encryption' not in capfd.readouterr().err, "the run's kernel warned of an unencrypted transport"
    ids = [r.run_id for r in runs]
    records = sorted(out.glob('runs/*/record.json'))
    assert sorted(p.parent.name for p in records) == sorted(ids)
    assert first.stat().st_mtime_ns == mtime, 'a finished run was trained again'
    for f in records: assert json.loads(f.read_text())['run_id'] == f.parent.name
    table = pd.read_csv(out/'results.csv')
    assert list(table.columns) == COLUMNS and list(table.run_id) == ids == list(df.run_id)
    assert table.test_hard_dice.between(0, 1).all() and table.fft_dice.notna().all()
    assert (out/'runs'/ids[1]/'run.ipynb').exists()


def test_different_grid_refused(tmp_path):
    "A second, different grid in the same folder is an error; the first grid's files stay as they were"
    out = tmp_path/'sweep'; out.mkdir()
    runs = _grid(tmp_path/'toy')
    (out/'sweep.json').write_text(json.dumps(dict(name='other', runs=[dict(runs[0].params(), run_id=runs[0].run_id)])))
    before = (out/'sweep.json').read_text()
    with pytest.raises(ValueError, match='holds another sweep'): run_sweep(runs, out, progress=False)
    with pytest.raises(ValueError, match='holds another sweep'): sweep_cmd('quick', out=str(out))
    assert (out/'sweep.json').read_text() == before
    stray = tmp_path/'stray'; (stray/'runs'/'x').mkdir(parents=True); (stray/'runs'/'x'/'record.json').write_text('{}')
    with pytest.raises(ValueError, match='not from a sweep'): run_sweep(runs, stray, progress=False)
    with pytest.raises(ValueError, match='unknown sweep preset'): sweep_cmd('huge', out=str(tmp_path/'x'))
