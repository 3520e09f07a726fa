"temrf.sweep on a Dask cluster: a LocalCluster of two worker processes runs papermill runs; one worker is killed mid-run"
import json, os, signal, threading, time
from pathlib import Path

import pandas as pd
import pytest

distributed = pytest.importorskip('distributed')
from temrf.datasets import toy_pair
from temrf.runs import COLUMNS
from temrf.model import Arch
from temrf.sweep import make_grid, run_sweep


def _kill_worker_and_kernel(client, worker):
    "SIGKILL a worker process and the papermill kernel it started, as when its machine is lost"
    import psutil
    pid = client.run(os.getpid, workers=[worker])[worker]
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    for p in procs: p.send_signal(signal.SIGKILL)
    return len(procs)


@pytest.mark.slow
def test_cluster_sweep_survives_a_killed_worker(tmp_path, monkeypatch):
    "Three runs on two workers; the worker running the first started run is killed; every run is recorded once"
    monkeypatch.setenv('OMP_NUM_THREADS', '1')  # workers and their kernels: tiny batches on a shared CPU
    monkeypatch.setenv('MKL_NUM_THREADS', '1')
    data, out = tmp_path/'toy', tmp_path/'sweep'
    toy_pair(data)
    runs = make_grid([str(data)], [Arch((2, 2))], seeds=(1, 2, 3), epochs=2, lr=1e-3, patch=64)
    ids = [r.run_id for r in runs]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
         distributed.Client(cluster, set_as_default=False) as client:
        result, killed = {}, {}
        def sweep():
            try: result['df'] = run_sweep(runs, out, scheduler=client.scheduler.address, progress=False)
            except BaseException as e: result['error'] = e
        th = threading.Thread(target=sweep); th.start()
        t0 = time.time()
        while not killed and th.is_alive() and time.time() - t0 < 240:
            started = {p.name.split('.')[1] for p in (out/'runs').glob('.*.tmp') if p.is_dir()} if (out/'runs').exists() else set()
            for w, keys in client.processing().items():
                if any(k.split('-')[1] in started and not (out/'runs'/k.split('-')[1]/'record.json').exists() for k in keys):
                    killed[w] = _kill_worker_and_kernel(client, w)
                    break
            time.sleep(0.2)
        th.join(300)
        assert not th.is_alive(), 'the sweep did not finish'
        assert killed and min(killed.values()) >= 2, f'no run was caught training: {killed}'  # the worker and its kernel
        assert 'error' not in result, result.get('error')
        # every run recorded once, in its own folder, no attempt left behind
        records = sorted(out.glob('runs/*/record.json'))
        assert sorted(p.parent.name for p in records) == sorted(ids)
        for f in records: assert json.loads(f.read_text())['run_id'] == f.parent.name
        assert not list((out/'runs').glob('.*.tmp'))
        table = pd.read_csv(out/'results.csv')
        assert list(table.columns) == COLUMNS and sorted(table.run_id) == sorted(ids) and table.run_id.is_unique
        assert list(result['df'].run_id) == list(table.run_id)
        # the rerun through the cluster finds every record and trains nothing
        mtimes = {f: f.stat().st_mtime_ns for f in records}
        df = run_sweep(runs, out, scheduler=client, progress=False)
        assert len(df) == 3 and {f: f.stat().st_mtime_ns for f in records} == mtimes
