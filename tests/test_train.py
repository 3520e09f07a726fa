"temrf.train end to end on a toy dataset: equal starts across pooling variants, CPU determinism, records, errors"
import json

import pytest
import torch
from fastai.callback.core import Callback, CancelBatchException

from temrf.datasets import get_splits, resolve_dataset, toy_pair
from temrf.model import Arch, load_weights
from temrf.runs import COLUMNS, RunSpec
from temrf.train import build_model, fit_run, get_dls, get_learner, train_run

TINY = dict(epochs=1, bs=32, lr=1e-3, patch=64, progress=False)


pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    d = tmp_path_factory.mktemp('toy'); toy_pair(d); return d


@pytest.fixture(scope='module')
def toy256(tmp_path_factory):
    d = tmp_path_factory.mktemp('toy256'); toy_pair(d, n_images=3, size=256); return d


class RecordBatches(Callback):
    "Keep a fingerprint of every training batch the learner sees, then skip its step (only the order matters here)"
    def __init__(self): self.seen = []
    def before_batch(self):
        if not self.training: return
        self.seen.append((self.xb[0].sum().item(), self.yb[0].sum().item(), len(self.xb[0])))
        raise CancelBatchException()


def _start(splits, pools, seed=752, epochs=3):
    "What a run starts from, built in train_run's order: (initial state_dict, batch order of `epochs` epochs)"
    dls = get_dls(splits, bs=32, seed=seed)
    model = build_model(Arch(pools), seed=seed)
    return model.state_dict(), [dls.train.get_idxs() for _ in range(epochs)]


def test_m22_m44_same_start(toy256):
    "Same seed, N=2 m22 vs m44: identical initial weights and identical batch index order (the study's constraint)"
    splits = get_splits(toy256, patch=128)
    (sd22, idx22), (sd44, idx44) = _start(splits, (2, 2)), _start(splits, (4, 4))
    assert list(sd22) == list(sd44)
    assert all(torch.equal(sd22[k], sd44[k]) for k in sd22)
    assert idx22 == idx44 and idx22[0] != idx22[1]
    sd_other, idx_other = _start(splits, (2, 2), seed=2245)
    assert not torch.equal(sd_other['downs.0.conv1.weight'], sd22['downs.0.conv1.weight']) and idx_other != idx22


def test_m22_m44_same_batches_in_training(toy256, tmp_path):
    "During fit, m22 and m44 (same seed) see the same batches in the same order"
    splits = get_splits(toy256, patch=128)
    seen = []
    for pools in ((2, 2), (4, 4)):
        rec = RecordBatches()
        learn = get_learner(get_dls(splits, bs=32, seed=752), build_model(Arch(pools), seed=752), 1e-3, tmp_path/str(pools))
        with learn.no_bar(), learn.no_logging(): learn.fit(2, cbs=rec)
        seen.append(rec.seen)
    assert len(seen[0]) == 2*len(get_dls(splits, bs=32).train) and seen[0] == seen[1]


def test_cpu_determinism_and_record(toy, tmp_path):
    "Same seed and architecture on CPU: the same test dice and weights twice; the record has `COLUMNS`, in order"
    a = train_run(toy, n_blocks=2, pools=(2, 2), out=tmp_path/'a', **TINY)
    b = train_run(toy, n_blocks=2, pools=(2, 2), out=tmp_path/'b', **TINY)
    for k in ('test_hard_dice', 'test_soft_dice', 'valid_hard_dice', 'fft_dice'): assert a[k] == b[k], k
    wa, wb = (load_weights(f"{r['run_dir']}/model.pth").state_dict() for r in (a, b))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert list(a) == COLUMNS
    on_disk = json.loads((tmp_path/'a'/'runs'/f'{toy.name}_N2_m22_s752'/'record.json').read_text())
    assert on_disk == a and on_disk['pools'] == [2, 2] and on_disk['dilations'] is None
    assert a['rf_px'] == 44 and abs(a['rf_nm'] - 44*0.0215) < 1e-9 and a['n_params'] == 8074 and a['device'] == 'cpu'
    assert 0 <= a['test_hard_dice'] <= 1 and 0 < a['fft_dice'] <= 1 and a['n_train'] % 8 == 0


def test_dilated_run_and_best(toy, tmp_path):
    tiny = {k: v for k, v in TINY.items() if k != 'progress'}
    spec = RunSpec(str(toy), 2, (2, 2), (1, 1, 2), eval_model='best', early_stop=1, one_cycle=True, **tiny)
    rec, learn, splits = fit_run(spec, out=tmp_path, progress=False)
    assert rec['arch'] == 'm22-d112' and rec['dilations'] == [1, 1, 2] and rec['rf_px'] == 60
    assert sorted(p.name for p in (tmp_path/'runs'/rec['run_id']).iterdir()) == \
        ['best.pth', 'history.csv', 'model.pth', 'record.json']


@pytest.mark.parametrize('kw,msg', [
    (dict(pools=(8, 8), patch=96), 'does not divide'),
    (dict(pools=(8, 8), patch=64), 'does not fit'),
    (dict(pools=(2, 2, 2)), 'one size per block'),
    (dict(pools=(2, 2), patch=512), 'larger than'),
    (dict(pools=(2, 2), eval_model='worst'), "'last' or 'best'"),
])
def test_bad_runs(toy, tmp_path, kw, msg):
    kw = {**dict(n_blocks=2, epochs=1, patch=64, progress=False), **kw}
    with pytest.raises(ValueError, match=msg): train_run(toy, out=tmp_path, **kw)
    assert not list(tmp_path.glob('runs/*')) and not list(tmp_path.glob('runs/.*'))


def test_bad_datasets(tmp_path):
    with pytest.raises(ValueError, match='unknown dataset'): get_splits('hr-7nm')
    with pytest.raises(FileNotFoundError, match='does not exist'): get_splits(str(tmp_path/'nowhere'))
    (tmp_path/'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='exactly one'): get_splits(tmp_path/'empty')
    (tmp_path/'half').mkdir(); toy_pair(tmp_path/'half'); (tmp_path/'half'/'toy_Labels.h5').unlink()
    with pytest.raises(FileNotFoundError, match='no labels file'): get_splits(tmp_path/'half')


def test_study_files_found_in_data_dir(tmp_path):
    "The study's public file names in `data_dir` are used for the dataset of that name"
    toy_pair(tmp_path)
    for s in ('Images', 'Labels'): (tmp_path/f'toy_{s}.h5').rename(tmp_path/f'Au_5nm_330kx_423e_{s}.h5')
    info = resolve_dataset('hr-5nm', tmp_path)
    assert info['origin'] == 'study' and info['images_file'].name == 'Au_5nm_330kx_423e_Images.h5'


def test_train_cli(toy, tmp_path, capsys):
    "`temrf train` through the command line: the flags reach the record"
    from temrf.cli import main
    rc = main(['train', '--dataset', str(toy), '--pools', '2,2', '--dilations', '1,1,2', '--epochs', '1', '--lr', '1e-3',
               '--patch', '64', '--out', str(tmp_path)])
    assert rc == 0
    rec = json.loads((tmp_path/'runs'/f'{toy.name}_N2_m22-d112_s752'/'record.json').read_text())
    assert rec['dilations'] == [1, 1, 2] and rec['epochs'] == 1
    assert main(['train', '--dataset', 'hr-7nm', '--out', str(tmp_path)]) == 1
    assert 'unknown dataset' in capsys.readouterr().err
