"""More bad input, through the Python API and the CLI: each case is one line naming the problem and the fix, raised
before any work, with nothing written. CLI cases run through `temrf.cli.main`, as in `tests/test_bad_input.py`."""
import json, pickle
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from temrf.datasets import image_size, toy_pair
from temrf.fft import auto_band, band_from_spacings, fourier_filter
from temrf.files import save_tiff
from temrf.io import as_stack, check_pair
from temrf.files import load_h5_pair
from temrf.metrics import dice_from_probs
from temrf.checkpoints import load_study_checkpoint
from temrf.model import Arch, ResUNet, save_weights
from temrf.preprocess import split_ordered
from temrf.rf import nearest_architectures, rf_table
from temrf.runs import collect, load_results, load_run
from temrf.train import predict_dice
from temrf.analysis import plot_dice_vs_rf


pytestmark = pytest.mark.usefixtures('one_thread')


def _h5(path, **arrays):
    with h5py.File(path, 'w') as f:
        for k, v in arrays.items(): f[k] = v


def _legacy_checkpoint(path, module, name, args):
    "A torch<1.6-format checkpoint whose object is `module.name(*args)`, named by a protocol-4 (dotted-name) global"
    s = lambda x: b'\x8c' + bytes([len(x)]) + x.encode()
    head = b''.join(pickle.dumps(o, 2) for o in (torch.serialization.MAGIC_NUMBER, torch.serialization.PROTOCOL_VERSION,
                    dict(protocol_version=1001, little_endian=True, type_sizes=dict(short=2, int=4, long=4))))
    path.write_bytes(head + b'\x80\x04' + s(module) + s(name) + b'\x93' + pickle.dumps(tuple(args), 2)[2:-1] + b'R.')


ROW = dict(dataset='x', arch='m22', n_blocks=2, seed=752, rf_nm=0.95, test_hard_dice=0.8)

@pytest.fixture(scope='module')
def ws(tmp_path_factory):
    "A folder of small bad inputs (and the few good ones they sit beside)"
    w = tmp_path_factory.mktemp('ws')
    z, o = np.zeros((2, 16, 16), np.float32), np.zeros((2, 16, 16), np.uint8)
    (w/'empty').mkdir(); _h5(w/'empty'/'x_Images.h5', images=z[:0]); _h5(w/'empty'/'x_Labels.h5', labels=o[:0])
    (w/'group').mkdir(); _h5(w/'group'/'x_Images.h5', **{'images/data': z}); _h5(w/'group'/'x_Labels.h5', labels=o)
    (w/'afile').write_text('a plain file')
    (w/'notes.pt').write_text('these are notes, not weights')
    torch.save(ResUNet(Arch([2, 2])).state_dict(), w/'sd.pt')
    (w/'cut.pt').write_bytes((w/'sd.pt').read_bytes()[:300])
    torch.save(ResUNet(Arch([2, 2])).state_dict(), w/'sd_legacy.pt', _use_new_zipfile_serialization=False)
    (w/'cut_legacy.pt').write_bytes((w/'sd_legacy.pt').read_bytes()[:300])
    _legacy_checkpoint(w/'graphmodule.pt', 'torch.nn.modules.module', 'torch.fx.GraphModule', ())
    _legacy_checkpoint(w/'linear.pt', 'torch.nn.modules.linear', 'Linear', (2, 2))
    _legacy_checkpoint(w/'fxcode.pt', 'torch.nn.modules.module', 'torch.fx.graph_module.reduce_graph_module',
                       ({'_code': 'pass'}, f"open({str(w/'PWNED')!r}, 'w').close()\n"))
    run = w/'norec'/'runs'/'r'; run.mkdir(parents=True)
    (run/'record.json').write_text(json.dumps(dict(run_id='r', dataset='x', arch='m22', pools=[2, 2], seed=752, rf_nm=0.95)))
    save_weights(ResUNet(Arch([2, 2])), run/'model.pth')
    pd.DataFrame([ROW, dict(ROW, seed=140, test_hard_dice=7.5)]).to_csv(w/'dice75.csv', index=False)
    pd.DataFrame([dict(ROW, rf_nm=-0.95)]).to_csv(w/'negrf.csv', index=False)
    img = np.random.default_rng(0).poisson(100, (64, 64)).astype(np.float32)
    save_tiff(w/'img.tif', img, pixel_nm=0.1243)
    save_tiff(w/'lab06.tif', (np.arange(64*64).reshape(64, 64) % 7).astype(np.uint8), pixel_nm=0.1243)
    save_tiff(w/'lab32.tif', np.zeros((32, 32), np.uint8), pixel_nm=0.1243)
    return w


def _tree(w): return sorted(str(p.relative_to(w)) for p in w.rglob('*'))

def _m(): return ResUNet(Arch([2, 2])).eval()
_rng = np.random.default_rng(1)
X, Y = _rng.normal(size=(3, 32, 32)).astype(np.float32), (_rng.random((3, 32, 32)) > 0.5).astype(np.uint8)
_res = pd.DataFrame([ROW, dict(ROW, arch='m44', rf_nm=2.58)])

API = {  # id: (call on the workspace, exception type, what the one-line error must say)
    'split-float': (lambda w: split_ordered(2.5), ValueError, 'n (the number of items to split) must be an integer >= 1, got 2.5'),
    'split-negative': (lambda w: split_ordered(-3), ValueError, 'n (the number of items to split) must be an integer >= 1, got -3'),
    'pair-empty-files': (lambda w: load_h5_pair(w/'empty'/'x_Images.h5', w/'empty'/'x_Labels.h5'), ValueError,
                         'x_Labels.h5 hold no images (shape (0, 16, 16)); give at least one image and its labels'),
    'pair-empty-check': (lambda w: check_pair(np.zeros((0, 8, 8)), np.zeros((0, 8, 8)), empty=False), ValueError, 'hold no images'),
    'stack-ragged': (lambda w: as_stack([np.zeros((8, 8)), np.zeros((4, 4))]), ValueError,
                     'images differ in size (shapes (4, 4), (8, 8)); crop or pad them to one size'),
    'pair-ragged': (lambda w: check_pair([np.zeros((8, 8)), np.zeros((4, 4))], np.zeros((2, 8, 8))), ValueError, 'images differ in size'),
    'fft-radius-string': (lambda w: fourier_filter(np.zeros((64, 64)), '5', 10), TypeError, "r_in must be a number of px (a radius in the FFT), got '5'"),
    'fft-no-spacings': (lambda w: band_from_spacings(()), ValueError, 'spacings_A holds no lattice spacing; give at least one (angstrom)'),
    'autoband-empty': (lambda w: auto_band(np.zeros((0, 64, 64))), ValueError, 'images holds no image (shape (0, 64, 64))'),
    'autoband-window': (lambda w: auto_band(np.zeros((64, 64)), window=0), ValueError, 'window (px of the background median) must be an integer >= 1, got 0'),
    'autoband-mixed': (lambda w: auto_band([np.zeros((64, 64)), np.zeros((32, 32))]), ValueError, 'images differ in size (shapes (32, 32), (64, 64))'),
    'nearest-string': (lambda w: nearest_architectures('5', 'hr'), TypeError, "`target_nm` must be a positive number of nm, got '5'"),
    'nearest-k': (lambda w: nearest_architectures(2.6, 'hr', k=-1), ValueError, 'k (how many architectures to list) must be an integer >= 1'),
    'nearest-nothing-fits': (lambda w: nearest_architectures(2.6, 'hr', size=16), ValueError,
                             'no architecture fits and divides a 16-px patch (the smallest receptive field is 44 px); choose a larger patch'),
    'rf-table-size': (lambda w: rf_table(size=0), ValueError, 'size (the patch in px) must be an integer >= 8, got 0'),
    'parse-arch-zero-pool': (lambda w: Arch.parse('m02'), ValueError, "architecture name 'm02' is no valid architecture: pools must be integers >= 1, got [0, 2]"),
    'h5-images-group': (lambda w: load_h5_pair(w/'group'/'x_Images.h5', w/'group'/'x_Labels.h5'), ValueError,
                        "x_Images.h5: 'images' is a group, not a dataset (it holds ['data']); store the array itself under 'images'"),
    'h5-images-group-size': (lambda w: image_size(w/'group'), ValueError, "x_Images.h5: 'images' is a group, not a dataset"),
    'checkpoint-text': (lambda w: load_study_checkpoint(w/'notes.pt'), ValueError, 'notes.pt is not a study checkpoint ('),
    'checkpoint-truncated': (lambda w: load_study_checkpoint(w/'cut.pt'), ValueError, 'cut.pt is not a study checkpoint ('),
    'checkpoint-truncated-legacy': (lambda w: load_study_checkpoint(w/'cut_legacy.pt'), ValueError, 'cut_legacy.pt is not a study checkpoint ('),
    'checkpoint-dotted-graphmodule': (lambda w: load_study_checkpoint(w/'graphmodule.pt'), pickle.UnpicklingError,
        'checkpoint refers to torch.nn.modules.module.torch.fx.GraphModule, which load_study_checkpoint does not load'),
    'checkpoint-unlisted-layer': (lambda w: load_study_checkpoint(w/'linear.pt'), pickle.UnpicklingError,
        'checkpoint refers to torch.nn.modules.linear.Linear, which load_study_checkpoint does not load'),
    'checkpoint-fx-code': (lambda w: load_study_checkpoint(w/'fxcode.pt'), pickle.UnpicklingError,
        'checkpoint refers to torch.nn.modules.module.torch.fx.graph_module.reduce_graph_module'),
    'record-no-n_blocks-collect': (lambda w: collect(w/'norec'), ValueError, 'r/record.json lacks key(s) n_blocks of a run record; restore it or retrain the run'),
    'record-no-n_blocks-results': (lambda w: load_results(w/'norec'), ValueError, 'r/record.json lacks key(s) n_blocks'),
    'record-no-n_blocks-run': (lambda w: load_run(w/'norec'/'runs'/'r'), ValueError, 'r/record.json lacks key(s) n_blocks'),
    'results-dice-above-1': (lambda w: load_results(w/'dice75.csv'), ValueError,
                             'dice75.csv: column test_hard_dice must hold dice within [0, 1], row 2 has 7.5; fix or remove that row'),
    'results-negative-rf': (lambda w: load_results(w/'negrf.csv'), ValueError, 'negrf.csv: column rf_nm must hold receptive fields > 0 nm, row 1 has -0.95'),
    'predict-dice-labels': (lambda w: predict_dice(_m(), X, Y*3), ValueError, 'labels Y must be 0/1 (background/particle) or a 0/255 mask, found values [3]'),
    'predict-dice-shape': (lambda w: predict_dice(_m(), X, Y[:, :16]), ValueError, 'differ in shape'),
    'dice-from-probs-255': (lambda w: dice_from_probs(torch.rand(3, 32, 32), torch.as_tensor(Y)*255), ValueError,
                            '`target` must hold only 0 (background) and 1 (particle), found [0.0, 255.0]'),
    'plot-negative-rf': (lambda w: plot_dice_vs_rf(_res.assign(rf_nm=[0.95, -2.58])), ValueError,
                         'results `df`: column rf_nm must hold receptive fields > 0 nm, row 2 has -2.58'),
}


@pytest.mark.parametrize('case', list(API))
def test_api_bad_input(ws, case):
    f, err, msg = API[case]
    before = _tree(ws)
    with pytest.raises(err) as e: f(ws)
    assert msg in str(e.value) and len(str(e.value).splitlines()) == 1, str(e.value)
    assert _tree(ws) == before, 'a refused call left files behind'
    assert not (ws/'PWNED').exists(), 'pickled code ran'


def test_predict_dice_mask_0_255():
    "A 0/255 mask counts as 0/1, as temrf.io reads labels: the same dice, never above 1"
    m = _m()
    hard, soft = predict_dice(m, X, Y)
    hard255, soft255 = predict_dice(m, X, Y*255)
    np.testing.assert_allclose(hard255, hard, rtol=0, atol=1e-6)  # the same computation on the same shapes
    np.testing.assert_allclose(soft255, soft, rtol=0, atol=1e-6)
    assert (hard255 <= 1).all() and (soft255 <= 1).all()


CLI = {  # id: (arguments, what the one-line error must say)
    'rf-suggest-labels-image': ('rf suggest {w}/img.tif --labels {w}/img.tif', '--labels {w}/img.tif must be 0/1 (background/particle) or a 0/255 mask, found values'),
    'rf-suggest-labels-0-6': ('rf suggest {w}/img.tif --labels {w}/lab06.tif', '--labels {w}/lab06.tif must be 0/1 (background/particle) or a 0/255 mask, found values [2, 3, 4, 5, 6]'),
    'rf-suggest-labels-shape': ('rf suggest {w}/img.tif --labels {w}/lab32.tif', '--labels {w}/lab32.tif has shape (1, 32, 32), the images (1, 64, 64)'),
    'rf-suggest-patch': ('rf suggest {w}/img.tif --patch 16', '--patch 16: no architecture fits and divides a 16-px patch'),
    'rf-table-patch-zero': ('rf table --patch 0', '--patch (px) must be an integer >= 8, got 0'),
    'rf-table-patch-negative': ('rf table --patch -5', '--patch (px) must be an integer >= 8, got -5'),
    'rf-table-patch-seven': ('rf table --patch 7', '--patch (px) must be an integer >= 8, got 7'),
    'rf-table-nothing-fits': ('rf table --patch 16', '--patch 16: no architecture fits and divides a 16-px patch (the smallest receptive field is 44 px); give a larger --patch'),
    'rf-of-pools-letters': ('rf of --pools abc', "pools must be comma-separated integers such as 2,4; got 'abc'"),
    'rf-of-pools-float': ('rf of --pools 2.5,2', "pools must be comma-separated integers such as 2,4; got '2.5,2'"),
    'rf-of-pools-empty': ("rf of --pools ''", "pools must be comma-separated integers such as 2,4; got ''"),
    'rf-of-dilations-letters': ('rf of --dilations a,b,c', "dilations must be comma-separated integers such as 2,4; got 'a,b,c'"),
    'simulate-out-under-file': ('simulate --preset lr-small --out {w}/afile/sim', "--out '{w}/afile/sim' cannot be made: {w}/afile is a file; choose another folder"),
    'simulate-out-is-file': ('simulate --preset lr-small --out {w}/afile', 'afile is a file; choose another folder'),
    'report-dice-above-1': ('report {w}/dice75.csv', 'dice75.csv: column test_hard_dice must hold dice within [0, 1], row 2 has 7.5'),
    'report-negative-rf': ('report {w}/negrf.csv', 'negrf.csv: column rf_nm must hold receptive fields > 0 nm, row 1 has -0.95'),
    'report-record-no-n_blocks': ('report {w}/norec', 'record.json lacks key(s) n_blocks of a run record'),
    'train-images-group': ('train --dataset {w}/group --out {w}/o', "x_Images.h5: 'images' is a group, not a dataset (it holds ['data'])"),
}


@pytest.mark.parametrize('case', list(CLI))
def test_cli_bad_input(ws, refuses, case):
    "One line `temrf <command>: error: ...` naming the problem, exit status 1, and nothing made or changed"
    refuses(ws, *CLI[case])
