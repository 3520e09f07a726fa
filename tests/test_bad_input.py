"""Bad input, as a new user gives it: every case is answered by one line that names the problem, before any work is
done, and nothing a user made is lost. CLI cases run through `temrf.cli.main`; the rest through the Python API."""
import json, os, shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import tifffile
import torch

from temrf.cli import main
from temrf.datasets import toy_pair
from temrf.fft import fourier_filter
from temrf.files import save_tiff
from temrf.files import read_image_file, save_h5_pair
from temrf.preprocess import drop_background, prepare_splits
from temrf.runs import load_run
from temrf.metrics import dice_score
from temrf.model import Arch, ResUNet, load_weights, predict, save_weights
from temrf.rf import rf_nm
from temrf.runs import RunSpec, collect
from temrf.sweep import make_grid
from temrf.train import predict_dice


pytestmark = pytest.mark.usefixtures('one_thread')


def _pair(folder, images, labels, stem='x', key='images'):
    folder.mkdir(parents=True)
    with h5py.File(folder/f'{stem}_Images.h5', 'w') as f: f[key] = images
    with h5py.File(folder/f'{stem}_Labels.h5', 'w') as f: f['labels'] = labels


@pytest.fixture(scope='module')
def ws(tmp_path_factory):
    "A folder of everything a user can get wrong, and one good dataset and trained run"
    w = tmp_path_factory.mktemp('ws')
    toy_pair(w/'toy')
    good = (w/'toy'/'toy_Images.h5').read_bytes()
    for name, data in (('corrupt', good[:500]), ('empty', b''), ('text', b'these are not images')):
        (w/name).mkdir(); (w/name/'x_Images.h5').write_bytes(data); shutil.copy(w/'toy'/'toy_Labels.h5', w/name/'x_Labels.h5')
    (w/'nolabels').mkdir(); shutil.copy(w/'toy'/'toy_Images.h5', w/'nolabels'/'x_Images.h5')
    (w/'twopairs').mkdir()
    for s in ('a', 'b'):
        for k in ('Images', 'Labels'): shutil.copy(w/'toy'/f'toy_{k}.h5', w/'twopairs'/f'{s}_{k}.h5')
    img, lbl = np.zeros((3, 64, 64), np.float32), np.zeros((3, 64, 64), np.uint8)
    _pair(w/'wrongkey', img, lbl, key='data')
    _pair(w/'badlabels', img, lbl + 3)
    _pair(w/'nan', np.where(np.arange(64) == 5, np.nan, img), lbl)
    _pair(w/'mismatch', img, lbl[:, :32])
    (w/'afile').write_text('a plain file')
    # a trained run, a sweep folder, and damaged records and tables
    assert main(['train', '--dataset', str(w/'toy'), '--epochs', '1', '--lr', '1e-3', '--patch', '64', '--out', str(w/'trained')]) == 0
    run = w/'trained'/'runs'/'toy_N2_m22_s752'
    (w/'sweepdir').mkdir(); (w/'sweepdir'/'sweep.json').write_text(json.dumps(dict(name='x', runs=[dict(run_id='other')])))
    (w/'damagedsweep').mkdir(); (w/'damagedsweep'/'sweep.json').write_text('{"runs": [')
    (w/'stray'/'runs'/'r').mkdir(parents=True); (w/'stray'/'runs'/'r'/'record.json').write_text('{}')
    shutil.copytree(w/'trained', w/'damagedrec'); (w/'damagedrec'/'runs'/'toy_N2_m22_s752'/'record.json').write_text('{"run_id": ')
    shutil.copytree(w/'trained', w/'mixedup'); save_weights(ResUNet(Arch([2, 4])), w/'mixedup'/'runs'/'toy_N2_m22_s752'/'model.pth')
    shutil.copytree(w/'trained', w/'crafted')
    torch.save({'model': _Payload(w/'PWNED')}, w/'crafted'/'runs'/'toy_N2_m22_s752'/'model.pth')
    rec = json.loads((run/'record.json').read_text())
    row = {k: rec[k] for k in ('dataset', 'arch', 'n_blocks', 'seed', 'rf_nm', 'test_hard_dice')}
    pd.DataFrame([dict(row, rf_nm='about 1 nm')]).to_csv(w/'nonnumeric.csv', index=False)
    pd.DataFrame([dict(dataset='a', arch='m22')]).to_csv(w/'fewcols.csv', index=False)
    pd.DataFrame(columns=list(row)).to_csv(w/'norows.csv', index=False)
    (w/'binary.csv').write_bytes(bytes(range(256)) * 4)
    # micrographs for temrf segment and temrf rf suggest
    img = np.random.default_rng(0).poisson(100, (64, 64)).astype(np.float32)
    save_tiff(w/'img.tif', img, pixel_nm=0.1243)
    np.save(w/'raw.npy', img)
    np.save(w/'nanimg.npy', np.where(np.eye(64, dtype=bool), np.nan, img))
    (w/'notes.xyz').write_text('not an image')
    (w/'earlier').mkdir(); (w/'earlier'/'img_mask.tif').write_bytes(b'a user\'s earlier result')
    # what microscopists' files and typing do to temrf segment
    for k in range(3): tifffile.imwrite(w/'appended.tif', img, append=True)  # written page by page
    tifffile.imwrite(w/'mixed.tif', img); tifffile.imwrite(w/'mixed.tif', img[:32], append=True)
    tifffile.imwrite(w/'saturated.tif', img, resolution=(2**32 - 1, 2**32 - 1), resolutionunit='CENTIMETER')
    np.save(w/'px1.npy', img[:1, :1]); np.save(w/'px7.npy', img[:7, :7]); np.save(w/'flat.npy', np.full((64, 64), 3, np.float32))
    save_tiff(w/'blankframe.tif', np.stack([img, img, np.full_like(img, 5), img]), pixel_nm=0.1243)
    for name, px in (('negpx', -1.), ('textpx', 'abc')):
        with h5py.File(w/f'{name}.h5', 'w') as f: f['images'] = img[None]; f.attrs['pixel_nm'] = px
    (w/'empty.pth').write_bytes(b'')
    # masks for temrf finetune
    np.save(w/'mask.npy', (img > 100).astype(np.uint8)); np.save(w/'mask32.npy', (img[:32, :32] > 100).astype(np.uint8))
    np.save(w/'fracmask.npy', (img > 100)*0.5); np.save(w/'emptymask.npy', np.zeros((64, 64), np.uint8))
    np.save(w/'small.npy', img[:12, :12]); np.save(w/'smallmask.npy', (img[:12, :12] > 100).astype(np.uint8))
    (w/'inout').mkdir(); save_tiff(w/'inout'/'c.tif', img, pixel_nm=0.1243); save_tiff(w/'inout'/'c_mask.tif', img > 100, pixel_nm=0.1243)
    # the audit's cases: crafted model files, a user's package folder and mask, labels of another pixel size
    ok = torch.load(w/'trained'/'runs'/'toy_N2_m22_s752'/'model.pth', weights_only=True)
    for name, change in (('deep', dict(temrf_config=dict(ok['temrf_config'], n_blocks=40, pools=[2]*40))), ('cfgstr', dict(temrf_config='m22')),
                         ('noweights', dict(state_dict=None)), ('wrongshape', dict(temrf_config=dict(ok['temrf_config'], kernel=5))),
                         ('wide', None)):
        torch.save(dict(ok, **(change or {})), w/f'{name}.pth')
    wide = ResUNet(Arch([2, 2]), filters=8); wide.info = dict(kind='hr', pixel_nm=0.0215); save_weights(wide, w/'wide.pth')
    (w/'userpkg').mkdir(); (w/'userpkg'/'rdf.yaml').write_text('type: model'); (w/'userpkg'/'notes.txt').write_text('mine')
    (w/'hand').mkdir(); save_tiff(w/'hand'/'x.tif', img, pixel_nm=0.1243); tifffile.imwrite(w/'hand'/'x_mask.tif', (img > 100).astype(np.uint8))
    save_tiff(w/'lbl_px2.tif', (img > 100).astype(np.uint8), pixel_nm=0.2486)
    np.save(w/'px16.npy', img[:16, :16])
    return w


class _Payload:
    "Unpickling this would create a file: the proof that no pickled code ran"
    def __init__(self, path): self.path = str(path)
    def __reduce__(self): return (open, (self.path, 'w'))


def _tree(w): return sorted(str(p.relative_to(w)) for p in w.rglob('*'))


def _cli(ws, capsys, args):
    "Run `temrf <args>` ({w} is the workspace); return (exit status, stderr)"
    argv = [a.format(w=ws) for a in args.split()]
    capsys.readouterr()
    rc = main(argv)
    return rc, capsys.readouterr().err


TRAIN = 'train --dataset {w}/toy --out {w}/o --epochs 1 --patch 64 '
CLI = {  # id: (arguments, what the one-line error must say)
    'pools-letters': (TRAIN + '--pools abc', "pools must be comma-separated integers such as 2,4; got 'abc'"),
    'pools-zero': (TRAIN + '--pools 0,2', 'pools must be integers >= 1'),
    'pools-float': (TRAIN + '--pools 2.5,2', 'pools must be comma-separated integers'),
    'pools-count': (TRAIN + '--pools 2,2,2', 'pools needs one size per block'),
    'pools-empty': (TRAIN + '--pools ,', 'pools must be comma-separated integers'),
    'bs-zero': (TRAIN + '--bs 0', 'bs must be an integer >= 1, got 0'),
    'bs-float': (TRAIN + '--bs 1.5', 'bs must be an integer'),
    'epochs-zero': ('train --dataset {w}/toy --out {w}/o --epochs 0', 'epochs must be an integer >= 1, got 0'),
    'epochs-negative': ('train --dataset {w}/toy --out {w}/o --epochs -3', 'epochs must be an integer >= 1'),
    'lr-zero': (TRAIN + '--lr 0', 'lr must be a positive learning rate'),
    'lr-letters': (TRAIN + '--lr abc', "lr must be a positive learning rate below 10 (e.g. 1e-4), got 'abc'"),
    'lr-nan': (TRAIN + '--lr nan', 'lr must be a positive learning rate'),
    'lr-huge': (TRAIN + '--lr 1e6', 'lr must be a positive learning rate below 10'),
    'n_blocks-zero': (TRAIN + '--n_blocks 0', 'n_blocks must be an integer >= 1'),
    'n_blocks-word': (TRAIN + '--n_blocks two', "n_blocks must be an integer >= 1, got 'two'"),
    'dilations-count': (TRAIN + '--dilations 1,2', 'dilations needs n_blocks+1=3 values'),
    'dilations-zero': (TRAIN + '--dilations 1,0,1', 'dilations must be integers >= 1'),
    'pool-type': (TRAIN + '--pool min', "pool must be 'max' or 'avg', got 'min'"),
    'kernel-even': (TRAIN + '--kernel 4', 'kernel must be odd'),
    'kernel-zero': (TRAIN + '--kernel 0', 'kernel must be an integer >= 1'),
    'kernel-too-big': (TRAIN + '--kernel 7', 'm22-k7 (124 px) does not fit in the 64-px patch'),
    'seed-negative': (TRAIN + '--seed -1', 'seed must be an integer >= 0, got -1'),
    'data_seed-negative': (TRAIN + '--data_seed -2', 'data_seed must be an integer >= 0'),
    'early_stop-zero': (TRAIN + '--early_stop 0', 'early_stop must be an integer >= 1'),
    'eval_model': (TRAIN + '--eval_model final', "eval_model must be 'last' or 'best', got 'final'"),
    'patch-tiny': ('train --dataset {w}/toy --out {w}/o --patch 4', 'patch must be an integer >= 8'),
    'patch-too-big': ('train --dataset {w}/toy --out {w}/o --patch 1000', 'patch 1000 px is larger than the 128-px images'),
    'patch-not-divided': ('train --dataset {w}/toy --out {w}/o --patch 96 --pools 8,8', 'downsamples by 64, which does not divide the 96-px patch'),
    'rf-too-big': (TRAIN + '--pools 8,8', 'the receptive field of m88 (392 px) does not fit in the 64-px patch'),
    'rf-avg-too-big': ('train --dataset {w}/toy --out {w}/o --patch 128 --pools 4,4 --pool avg', 'a44 (140 px) does not fit'),
    'preset-arch-before-simulating': ('train --dataset hr-small --pools 8,8 --patch 256 --out {w}/o', 'm88 (392 px) does not fit'),
    'dataset-unknown': ('train --dataset hr-7nm --out {w}/o', "unknown dataset 'hr-7nm'"),
    'dataset-missing-folder': ('train --dataset {w}/missing/set --out {w}/o', 'does not exist'),
    'dataset-is-file': ('train --dataset {w}/toy/toy_Images.h5 --out {w}/o', 'toy_Images.h5\' is a file; give the folder'),
    'h5-truncated': ('train --dataset {w}/corrupt --out {w}/o', 'corrupt/x_Images.h5 is not a readable HDF5 file'),
    'h5-empty': ('train --dataset {w}/empty --out {w}/o', 'empty/x_Images.h5 is not a readable HDF5 file'),
    'h5-not-hdf5': ('train --dataset {w}/text --out {w}/o', 'text/x_Images.h5 is not a readable HDF5 file'),
    'h5-no-labels': ('train --dataset {w}/nolabels --out {w}/o', 'has no labels file x_Labels.h5'),
    'h5-two-pairs': ('train --dataset {w}/twopairs --out {w}/o', 'needs exactly one pair'),
    'h5-wrong-key': ('train --dataset {w}/wrongkey --out {w}/o', "wrongkey/x_Images.h5 has no dataset 'images'"),
    'labels-not-binary': ('train --dataset {w}/badlabels --out {w}/o', 'x_Labels.h5 must be 0/1 (background/particle) or a 0/255 mask, found values [3]'),
    'images-nan': ('train --dataset {w}/nan --out {w}/o', 'x_Images.h5 has 192 NaN/inf pixel(s)'),
    'images-labels-shape': ('train --dataset {w}/mismatch --out {w}/o', 'differ in shape'),
    'out-under-file': ('train --dataset {w}/toy --out {w}/afile/run', 'afile is a file; choose another folder'),
    'out-is-file': ('train --dataset {w}/toy --out {w}/afile', 'afile is a file'),
    'data-missing': ('train --dataset hr-small --data {w}/nodata --out {w}/o', "data folder '{w}/nodata' does not exist"),
    'data-is-file': ('train --dataset hr-small --data {w}/afile --out {w}/o', 'is a file; give a folder (--data)'),
    'run-exists': (TRAIN + '--lr 1e-3 --out {w}/trained', 'holds a finished run; pass --overwrite'),
    'run-into-other-sweep': (TRAIN + '--out {w}/sweepdir', 'holds a sweep without the run toy_N2_m22_s752'),
    'sweep-engine': ('sweep --out {w}/s --engine foo', "--engine must be 'papermill' or 'inline', got 'foo'"),
    'sweep-pools': ('sweep --out {w}/s --pools max,min', "--pools takes max and/or avg, got 'min'"),
    'sweep-kernels': ('sweep --out {w}/s --kernels 4', 'kernel must be odd'),
    'sweep-kernels-letters': ('sweep --out {w}/s --kernels x', 'kernels must be comma-separated integers'),
    'sweep-seeds-repeated': ('sweep --out {w}/s --seeds 752,752', 'seed 752 is given twice; give each once'),
    'sweep-seeds-letters': ('sweep --out {w}/s --seeds a,b', 'seeds must be comma-separated integers'),
    'sweep-seeds-negative': ('sweep --out {w}/s --seeds -5', 'seeds must be integers >= 0, got [-5]'),
    'sweep-epochs-zero': ('sweep --out {w}/s --epochs 0', 'epochs must be an integer >= 1'),
    'sweep-preset': ('sweep --out {w}/s --preset huge', "unknown sweep preset 'huge'"),
    'sweep-n_jobs': ('sweep --out {w}/s --n_jobs 0', 'n_jobs (runs side by side) must be an integer >= 1, got 0'),
    'sweep-data-missing': ('sweep --out {w}/s --data {w}/nodata', 'does not exist; create it, or leave out --data'),
    'sweep-out-file': ('sweep --out {w}/afile', 'afile is a file'),
    'sweep-json-damaged': ('sweep --out {w}/damagedsweep', 'damagedsweep/sweep.json is a damaged sweep description'),
    'sweep-other-grid': ('sweep --out {w}/sweepdir', 'holds another sweep'),
    'sweep-stray-results': ('sweep --out {w}/stray', 'holds results that are not from a sweep'),
    'report-missing': ('report {w}/nothere.csv', 'nothere.csv not found'),
    'report-nonnumeric-rf': ('report {w}/nonnumeric.csv', "column rf_nm must hold numbers, row 1 has 'about 1 nm'"),
    'report-few-columns': ('report {w}/fewcols.csv', 'lacks column(s) n_blocks, seed, rf_nm, test_hard_dice'),
    'report-no-rows': ('report {w}/norows.csv', 'holds no runs'),
    'report-binary': ('report {w}/binary.csv', 'binary.csv'),
    'report-empty-folder': ('report {w}/toy', 'holds neither results.csv nor runs'),
    'report-damaged-record': ('report {w}/damagedrec', 'record.json is a damaged run record'),
    'report-weights-mixed-up': ('report {w}/mixedup', 'pools=[2, 4], but its record says [2, 2]'),
    'report-crafted-weights': ('report {w}/crafted', 'model.pth is not a temrf weights file'),
    'simulate-preset': ('simulate --preset hr-7nm --out {w}/sim', "unknown preset 'hr-7nm'"),
    'simulate-n_images': ('simulate --preset lr-small --n_images 0 --out {w}/sim', 'n_images=0 must be at least 1'),
    'simulate-size': ('simulate --preset lr-small --size 8 --out {w}/sim', 'size=8 px is too small'),
    'command-unknown': ('fit', "unknown command 'fit'"),
    'segment-unknown-type': ('segment {w}/notes.xyz --out {w}/seg', 'temrf cannot read .xyz files'),
    'segment-missing-file': ('segment {w}/gone.tif --out {w}/seg', 'gone.tif does not exist'),
    'segment-nan': ('segment {w}/nanimg.npy --model lr-au --out {w}/seg', 'has 64 NaN/inf pixel(s)'),
    'segment-no-calibration': ('segment {w}/raw.npy --stats --out {w}/seg', 'raw.npy has no pixel calibration; give the pixel size with --pixel-size'),
    'segment-not-a-model': ('segment {w}/img.tif --model {w}/afile --out {w}/seg', 'neither a temrf model file nor a study checkpoint'),
    'segment-unknown-model': ('segment {w}/img.tif --model au-hr --out {w}/seg', "model 'au-hr' is neither a shipped model"),
    'segment-crafted-model': ('segment {w}/img.tif --model {w}/crafted/runs/toy_N2_m22_s752 --out {w}/seg', 'neither a temrf model file nor a study checkpoint'),
    'segment-earlier-results': ('segment {w}/img.tif --model lr-au --out {w}/earlier', 'holds earlier results; choose another --out or pass --overwrite'),
    'segment-same-names': ('segment {w}/img.tif {w}/img.tif --out {w}/seg', "two inputs are named 'img'"),
    'segment-tile': ('segment {w}/img.tif --model lr-au --tile 0 --out {w}/seg', 'tile (--tile, px) must be an integer >= 1, got 0'),
    'segment-batch-negative': ('segment {w}/img.tif --model lr-au --tile 64 --batch-size=-1 --probabilities --out {w}/seg', 'batch_size (--batch-size) must be an integer >= 1, got -1'),
    'segment-batch-zero': ('segment {w}/img.tif --model lr-au --batch-size 0 --out {w}/seg', 'batch_size (--batch-size) must be an integer >= 1, got 0'),
    'segment-h5-negative-pixel': ('segment {w}/negpx.h5 --model lr-au --out {w}/seg', 'negpx.h5 has pixel_nm=-1.0 in its attributes, not a positive number of nm'),
    'segment-h5-text-pixel': ('segment {w}/textpx.h5 --model lr-au --out {w}/seg', "textpx.h5 has pixel_nm='abc' in its attributes"),
    'segment-pixel-size-tiny': ('segment {w}/img.tif --model lr-au --pixel-size 1e-6 --out {w}/seg', 'pixel_nm=1e-06 is outside 0.001-1000 nm'),
    'segment-pixel-size-huge': ('segment {w}/img.tif --model lr-au --pixel-size 5000 --out {w}/seg', 'pixel_nm=5000.0 is outside 0.001-1000 nm'),
    'segment-pixel-size-negative': ('segment {w}/img.tif --model lr-au --pixel-size -1 --out {w}/seg', 'pixel_nm=-1.0 must be a positive number'),
    'segment-rescale-too-far': ('segment {w}/img.tif --model hr-au --pixel-size 0.9 --out {w}/seg', 'img.tif has 0.9 nm pixels, 41.9x coarser than the 0.0215 nm the model was trained at'),
    'segment-rescale-finer': ('segment {w}/img.tif --model lr-au --pixel-size 0.005 --out {w}/seg', '24.9x finer than the 0.1243 nm'),
    'segment-max-rescale': ('segment {w}/img.tif --model lr-au --max-rescale 0.5 --out {w}/seg', 'max_rescale=0.5 must be a number >= 1'),
    'segment-saturated-resolution': ('segment {w}/saturated.tif --model lr-au --stats --out {w}/seg', 'saturated.tif has no pixel calibration'),
    'segment-tiff-mixed-sizes': ('segment {w}/mixed.tif --model lr-au --out {w}/seg', 'mixed.tif holds 2 images of different sizes or types (32x64 float32, 64x64 float32)'),
    'segment-1px': ('segment {w}/px1.npy --model lr-au --out {w}/seg', 'px1.npy is 1x1 px; temrf segments images of at least 8 px a side'),
    'segment-7px': ('segment {w}/px7.npy --model lr-au --out {w}/seg', 'px7.npy is 7x7 px'),
    'segment-constant': ('segment {w}/flat.npy --model lr-au --out {w}/seg', 'flat.npy is constant (every pixel 3.0): nothing to segment'),
    'segment-constant-frame': ('segment {w}/blankframe.tif --model lr-au --out {w}/seg', 'blankframe.tif frame 2 is constant (every pixel 5'),
    'segment-input-is-output': ('segment {w}/inout/c.tif {w}/inout/c_mask.tif --model lr-au --out {w}/inout --overwrite', 'c_mask.tif is an input, and temrf segment would write c_mask.tif over it'),
    'segment-empty-model': ('segment {w}/img.tif --model {w}/empty.pth --out {w}/seg', 'empty.pth is neither a temrf model file nor a study checkpoint'),
    'segment-device-unknown': ('segment {w}/img.tif --model lr-au --device gpu0 --out {w}/seg', "device 'gpu0' is not a torch device; give 'cpu' or 'cuda'"),
    'segment-min-size-nan': ('segment {w}/img.tif --model lr-au --stats --min-size nan --out {w}/seg', 'min_size=nan must be a diameter in nm >= 0 (--min-size'),
    'segment-min-size-negative': ('segment {w}/img.tif --model lr-au --stats --min-size -1 --out {w}/seg', 'min_size=-1.0 must be a diameter in nm >= 0'),
    'rf-suggest-empty-model': ('rf suggest {w}/img.tif --model {w}/empty.pth', 'empty.pth is neither a temrf model file nor a study checkpoint'),
    'train-init-empty-model': (TRAIN + '--init {w}/empty.pth', 'empty.pth is neither a temrf model file nor a study checkpoint'),
    'sweep-scheduler-http': ('sweep --out {w}/s --scheduler http://127.0.0.1:1', "scheduler 'http://127.0.0.1:1' is not a Dask address: Dask speaks"),
    'rf-suggest-no-calibration': ('rf suggest {w}/raw.npy', 'raw.npy has no pixel calibration'),
    'rf-of-pools': ('rf of --blocks 2 --pools 4', 'pools needs one size per block'),
    'finetune-mask-size': ('finetune {w}/img.tif --labels {w}/mask32.npy --model lr-au --out {w}/ft', 'img.tif is 32x32 px, the image 64x64; give a mask of the image'),
    'finetune-mask-fractional': ('finetune {w}/img.tif --labels {w}/fracmask.npy --model lr-au --out {w}/ft', 'fracmask.npy holds fractional values; give 0/1, 0/255 or integer labels'),
    'finetune-mask-empty': ('finetune {w}/img.tif --labels {w}/emptymask.npy --model lr-au --out {w}/ft', 'emptymask.npy marks no particle'),
    'finetune-mask-count': ('finetune {w}/img.tif {w}/raw.npy --labels {w}/mask.npy --model lr-au --out {w}/ft', '2 images but 1 masks; give one mask per image'),
    'finetune-rescale-absurd': ('finetune {w}/raw.npy --labels {w}/mask.npy --pixel-size 50 --model lr-au --out {w}/ft', '402.3x coarser than the 0.1243 nm the model was trained at'),
    'finetune-out-exists': ('finetune {w}/img.tif --labels {w}/mask.npy --model lr-au --out {w}/earlier', 'earlier exists; choose a new folder or pass --overwrite'),
    'finetune-out-foreign': ('finetune {w}/img.tif --labels {w}/mask.npy --model lr-au --out {w}/earlier --overwrite', 'is not a model folder written by temrf finetune'),
    'finetune-not-a-model': ('finetune {w}/img.tif --labels {w}/mask.npy --model {w}/afile --out {w}/ft', 'neither a temrf model file nor a study checkpoint'),
    'finetune-steps': ('finetune {w}/img.tif --labels {w}/mask.npy --model lr-au --steps 0 --out {w}/ft', 'steps must be an integer >= 1, got 0'),
    'export-overwrite-foreign': ('export lr-au --out {w}/userpkg --overwrite', 'userpkg holds what temrf export did not write (notes.txt)'),
    'export-pixel-nan': ('export {w}/trained/runs/toy_N2_m22_s752 --out {w}/pk --pixel-size nan', 'must be a positive number of nm per pixel'),
    'export-pixel-inf': ('export {w}/trained/runs/toy_N2_m22_s752 --out {w}/pk --pixel-size inf', 'must be a positive number of nm per pixel'),
    'export-pixel-zero': ('export {w}/trained/runs/toy_N2_m22_s752 --out {w}/pk --pixel-size 0', 'must be a positive number of nm per pixel'),
    'export-pixel-mismatch': ('export lr-au --out {w}/pk --pixel-size 0.05', 'the model was trained at 0.1243 nm/px'),
    'export-deep-config': ('export {w}/deep.pth --out {w}/pk', 'far beyond any network temrf trains'),
    'segment-deep-config': ('segment {w}/img.tif --model {w}/deep.pth --out {w}/seg', 'far beyond any network temrf trains'),
    'segment-config-string': ('segment {w}/img.tif --model {w}/cfgstr.pth --out {w}/seg', 'has a damaged architecture (a str, not a mapping)'),
    'segment-no-weights': ('segment {w}/img.tif --model {w}/noweights.pth --out {w}/seg', 'holds an architecture but no weights'),
    'segment-wrong-shapes': ('segment {w}/img.tif --model {w}/wrongshape.pth --out {w}/seg', 'holds weights that do not fit its architecture'),
    'rf-suggest-deep-config': ('rf suggest {w}/img.tif --model {w}/deep.pth', 'far beyond any network temrf trains'),
    'train-init-deep-config': (TRAIN + '--init {w}/deep.pth', 'far beyond any network temrf trains'),
    'train-init-wide': (TRAIN + '--init {w}/wide.pth', 'a width temrf train does not build'),
    'segment-overwrite-handmade': ('segment {w}/hand/x.tif --model lr-au --out {w}/hand --overwrite', 'x_mask.tif was not written by temrf segment; nothing was replaced'),
    'simulate-seed-negative': ('simulate --seed -1', '--seed must be an integer >= 0, got -1'),
    'rf-suggest-1px': ('rf suggest {w}/px1.npy --pixel-size 0.1', 'RF advice needs images of at least 8 px a side'),
    'rf-labels-other-pixel': ('rf suggest {w}/img.tif --labels {w}/lbl_px2.tif', 'is calibrated at 0.2486 nm/px, the images at 0.1243'),
    'finetune-too-small': ('finetune {w}/small.npy --labels {w}/smallmask.npy --model lr-au --out {w}/ft', "px across at the model's pixel size, less than its"),
}


if not torch.cuda.is_available():
    CLI['segment-device-cuda'] = ('segment {w}/img.tif --model lr-au --device cuda --out {w}/seg', "device 'cuda': this torch has no CUDA GPU")


@pytest.mark.parametrize('case', list(CLI))
def test_cli_bad_input(ws, refuses, case):
    "One line `temrf <command>: error: ...` naming the problem, exit status 1, and nothing made or changed"
    refuses(ws, *CLI[case])
    assert not (ws/'PWNED').exists(), 'pickled code ran'


def test_debug_keeps_traceback(ws, capsys, monkeypatch):
    monkeypatch.setenv('TEMRF_DEBUG', '1')
    with pytest.raises(ValueError, match='bs must be'): main([a.format(w=ws) for a in (TRAIN + '--bs 0').split()])


def test_unknown_flag_is_argparse_usage(ws, capsys):
    with pytest.raises(SystemExit) as e: main(['train', '--poolz', '2,2'])
    assert e.value.code == 2 and 'unrecognized arguments: --poolz' in capsys.readouterr().err


# The Python API: the same rules where no flag exists
def _m(): return ResUNet(Arch([2, 2])).eval()

API = {
    'resunet-numpy': (lambda w: _m()(np.zeros((1, 1, 32, 32), np.float32)), TypeError, 'takes a torch tensor'),
    'resunet-float64': (lambda w: _m()(torch.zeros(1, 1, 32, 32, dtype=torch.float64)), TypeError, 'input is torch.float64'),
    'resunet-no-channel': (lambda w: _m()(torch.zeros(2, 32, 32)), ValueError, 'x[:, None]'),
    'resunet-rgb': (lambda w: _m()(torch.zeros(1, 3, 32, 32)), ValueError, 'one greyscale channel'),
    'resunet-odd-size': (lambda w: _m()(torch.zeros(1, 1, 30, 32)), ValueError, 'crop or pad to 28 or 32'),
    'resunet-bool-pools': (lambda w: ResUNet(Arch([True, 2])), ValueError, 'not booleans'),
    'resunet-float-pools': (lambda w: ResUNet(Arch((2.5, 2))), ValueError, 'pools must be integers such as (2, 4)'),
    'spec-float-pools': (lambda w: RunSpec('hr-small', pools=(2.5, 2)), ValueError, 'pools must be integers'),
    'spec-bool-pools': (lambda w: RunSpec('hr-small', pools=[True, 2]), ValueError, 'pools must be integers'),
    'spec-bool-bs': (lambda w: RunSpec('hr-small', bs=True), ValueError, 'bs must be an integer'),
    'spec-one_cycle': (lambda w: RunSpec('hr-small', one_cycle='yes'), ValueError, 'one_cycle must be True or False'),
    'rf-negative': (lambda w: rf_nm(-44, 'hr'), ValueError, 'at least 1 px'),
    'fft-subpixel-band': (lambda w: fourier_filter(np.zeros((64, 64)), 1.5, 1.7), ValueError, 'holds no frequency'),
    'dice-numpy-empty': (lambda w: dice_score(np.zeros((0, 2, 8, 8)), np.zeros((0, 8, 8))), ValueError, 'empty batch'),
    'predict-dice-empty': (lambda w: predict_dice(_m(), np.zeros((0, 32, 32)), np.zeros((0, 32, 32))), ValueError, 'test set is empty'),
    'predict-shape': (lambda w: predict(_m(), np.zeros((2, 1, 32, 32))), ValueError, 'got shape (2, 1, 32, 32)'),
    'collect-missing': (lambda w: collect(w/'nowhere'), FileNotFoundError, 'is not a folder of runs'),
    'toy-overwrite': (lambda w: toy_pair(w/'toy'), FileExistsError, 'exists; pass overwrite=True'),
    'tiff-truncated': (lambda w: read_image_file(_write(w/'cut.tif', _tiff_bytes()[:60])), ValueError, 'cut.tif is not a readable TIF'),
    'png-empty': (lambda w: read_image_file(_write(w/'e.png', b'')), ValueError, 'e.png is not a readable PNG'),
    'png-garbage': (lambda w: read_image_file(_write(w/'g.png', b'\x89PNG\r\n\x1a\nnonsense')), ValueError, 'g.png is not a readable PNG'),
    'grid-repeated-arch': (lambda w: make_grid(['hr-small'], [Arch((2, 2)), Arch((2, 2))], seeds=(752,), epochs=1), ValueError, 'is given twice'),
    'grid-repeated-dataset': (lambda w: make_grid(['hr-small', 'hr-small'], [Arch((2, 2))], seeds=(752,), epochs=1), ValueError, "dataset 'hr-small' is given twice"),
    'weights-bare-state-dict': (lambda w: load_weights(_bare(w)), ValueError, 'weights without their architecture'),
    'weights-no-state-dict': (lambda w: load_weights(w/'noweights.pth'), ValueError, 'holds an architecture but no weights'),
    'h5-pair-under-a-file': (lambda w: save_h5_pair(np.ones((1, 8, 8)), np.zeros((1, 8, 8)), w/'afile'/'x_Images.h5', w/'afile'/'x_Labels.h5'),
                             NotADirectoryError, 'afile is a file, not a folder; choose another path'),
    'load-run-bad-pools': (lambda w: load_run(_bad_pools_run(w)), ValueError, 'records no valid architecture (pools must be comma-separated'),
    'resunet-zero-height': (lambda w: _m()(torch.zeros(1, 1, 0, 32)), ValueError, 'has no pixels; give images of at least 4 px a side'),
    'drop-background-text': (lambda w: drop_background(np.ones((2, 8, 8)), np.zeros((2, 8, 8)), min_pixels='x'), ValueError, "min_pixels must be an integer >= 0, got 'x'"),
    'prepare-splits-seed': (lambda w: prepare_splits(np.ones((2, 64, 64)), np.zeros((2, 64, 64)), size=32, seed='a'), ValueError, "seed must be an integer >= 0, got 'a'"),
    'predict-nan': (lambda w: predict(_m(), np.full((1, 32, 32), np.nan)), ValueError, 'images has 1024 NaN/inf pixel(s)'),
    'fourier-sigma-negative': (lambda w: fourier_filter(np.random.default_rng(0).random((64, 64)), 5, 10, sigma=-1), ValueError, 'sigma=-1 must be a blur width'),
}


def _bad_pools_run(w):
    d = w.parent/'badpools'
    if not d.exists():
        shutil.copytree(w/'trained'/'runs'/'toy_N2_m22_s752', d)
        rec = json.loads((d/'record.json').read_text()); rec['pools'] = 'x'; (d/'record.json').write_text(json.dumps(rec))
    return d


def _write(p, b): p.write_bytes(b); return p
def _tiff_bytes():
    import io
    buf = io.BytesIO(); tifffile.imwrite(buf, np.zeros((16, 16), np.uint16)); return buf.getvalue()
def _bare(w):
    p = w/'bare.pth'; torch.save(ResUNet(Arch([2, 2])).state_dict(), p); return p


@pytest.mark.parametrize('case', list(API))
def test_api_bad_input(ws, case):
    f, err, msg = API[case]
    with pytest.raises(err) as e: f(ws)
    assert msg in str(e.value) and len(str(e.value).splitlines()) == 1, str(e.value)
    assert not (ws/'nowhere').exists()


def test_crafted_weights_never_run_code(ws, monkeypatch):
    "Loading stays weights-only even when the environment asks torch for full unpickling"
    from temrf.runs import load_run
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    with pytest.raises(ValueError, match='is not a temrf weights file'): load_run(ws/'crafted'/'runs'/'toy_N2_m22_s752')
    assert not (ws/'PWNED').exists()


def test_overwrite_keeps_sweep_table_current(ws, tmp_path, capsys):
    "A run retrained inside a sweep needs --overwrite, and then the sweep's results.csv shows the new run"
    from temrf.sweep import run_sweep
    runs = make_grid([str(ws/'toy')], [Arch((2, 2))], seeds=(752,), epochs=1, lr=1e-3, patch=64)
    run_sweep(runs, tmp_path/'sw', engine='inline', progress=False)
    before = pd.read_csv(tmp_path/'sw'/'results.csv')
    args = ['train', '--dataset', str(ws/'toy'), '--epochs', '1', '--lr', '1e-3', '--patch', '64', '--out', str(tmp_path/'sw')]
    assert main(args) == 1 and 'pass --overwrite' in capsys.readouterr().err
    assert pd.read_csv(tmp_path/'sw'/'results.csv').equals(before)
    assert main(args + ['--overwrite']) == 0
    after = pd.read_csv(tmp_path/'sw'/'results.csv')
    rec = json.loads((tmp_path/'sw'/'runs'/'toy_N2_m22_s752'/'record.json').read_text())
    assert len(after) == 1 and after.train_time_s[0] == rec['train_time_s'] and after.run_id[0] == rec['run_id']


def test_failed_run_leaves_no_run_folder(ws, tmp_path, monkeypatch):
    "A run that fails in training leaves no run folder, no hidden one, and no output folder it made"
    import temrf.train as tt
    def boom(*a, **k): raise RuntimeError('out of memory')
    monkeypatch.setattr(tt, 'get_learner', boom)
    with pytest.raises(RuntimeError, match='out of memory'):
        tt.train_run(str(ws/'toy'), epochs=1, patch=64, out=tmp_path/'o', progress=False)
    assert not (tmp_path/'o').exists()


@pytest.mark.slow
def test_max_and_avg_pooling_in_one_sweep_and_report(ws, tmp_path):
    "`temrf train --pool avg --kernel 5` records what it trained; a grid of max and avg pooling reports both"
    toy_pair(tmp_path/'toy', n_images=12)
    assert main(['train', '--dataset', str(tmp_path/'toy'), '--epochs', '1', '--lr', '1e-3', '--patch', '128', '--pool', 'avg',
                 '--kernel', '5', '--out', str(tmp_path/'t')]) == 0
    rec = json.loads((tmp_path/'t'/'runs'/'toy_N2_a22-k5_s752'/'record.json').read_text())
    assert (rec['pool'], rec['kernel'], rec['arch'], rec['rf_px']) == ('avg', 5, 'a22-k5', 90)
    from temrf.sweep import run_sweep
    from temrf.analysis import report_cmd
    archs = [dict(n_blocks=2, pools=p, pool=t) for t in ('max', 'avg') for p in ((2, 2), (2, 4))]
    df = run_sweep(make_grid([str(tmp_path/'toy')], archs, seeds=(752,), epochs=1, lr=1e-3, patch=128), tmp_path/'sw',
                   engine='inline', progress=False)
    assert list(df.arch) == ['m22', 'm24', 'a22', 'a24'] and list(df.pool) == ['max', 'max', 'avg', 'avg']
    out = report_cmd(str(tmp_path/'sw'))
    summary = pd.read_csv(out/'summary.csv')
    assert set(summary.variant) == {'pooling', 'avg pooling'} and (out/'dice_vs_rf.png').exists()


@pytest.mark.slow
def test_scheduler_that_is_not_dask(ws, capsys):
    "A port where something listens but does not speak Dask is named in one line within seconds, nothing made"
    import socket, time
    with socket.socket() as srv:
        srv.bind(('127.0.0.1', 0)); srv.listen(4)  # accepts connections, never answers
        t0 = time.time()
        rc, err = _cli(ws, capsys, f'sweep --out {{w}}/s --scheduler tcp://127.0.0.1:{srv.getsockname()[1]}')
    assert rc == 1 and len(err.strip().splitlines()) == 1 and 'sent no Dask handshake' in err, err
    assert time.time() - t0 < 30 and not (ws/'s').exists()


def test_inputs_never_replaced(ws, capsys):
    "An input that would also be an output is refused even with --overwrite, and stays byte for byte"
    before = (ws/'inout'/'c_mask.tif').read_bytes()
    rc, err = _cli(ws, capsys, 'segment {w}/inout/c_mask.tif {w}/inout/c.tif --model lr-au --out {w}/inout --overwrite')
    assert rc == 1 and 'is an input' in err and (ws/'inout'/'c_mask.tif').read_bytes() == before


def test_tiff_written_page_by_page_is_one_stack(ws, tmp_path, capsys):
    "A TIFF appended page by page reads as all its frames, and every frame is segmented"
    from temrf.files import read_micrograph
    m = read_micrograph(ws/'appended.tif', pixel_nm=0.1243)
    assert m.data.shape == (3, 64, 64)
    assert main(['segment', str(ws/'appended.tif'), '--model', 'lr-au', '--pixel-size', '0.1243', '--out', str(tmp_path/'o'), '--quiet']) == 0
    assert read_micrograph(tmp_path/'o'/'appended_mask.tif').data.shape == (3, 64, 64)


def test_tiny_frames_are_segmented(ws, tmp_path):
    "Frames of 16 px (and a stack of them) segment: the fringe check gives no verdict instead of a numpy error"
    stack = tmp_path/'tiny_stack.tif'
    save_tiff(stack, np.stack([np.load(ws/'px16.npy')]*3), pixel_nm=0.0215)
    for f in (ws/'px16.npy', stack):
        assert main(['segment', str(f), '--model', 'hr-au', '--pixel-size', '0.0215', '--out', str(tmp_path/f.stem), '--quiet']) == 0


def test_ascii_terminal_and_a_unicode_file_name(ws, tmp_path):
    "A terminal that cannot show the file's name gets it escaped; the results are all written"
    import subprocess, sys
    src = tmp_path/'Å-金.tif'
    shutil.copy(ws/'img.tif', src)
    env = dict(os.environ, PYTHONIOENCODING='ascii', OMP_NUM_THREADS='1')
    r = subprocess.run([str(Path(sys.executable).parent/'temrf'), 'segment', str(src), '--model', 'lr-au', '--stats', '--out', str(tmp_path/'o'), '--quiet'],
                       env=env, capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode('ascii', 'replace')[-500:]
    assert (tmp_path/'o'/'particles.csv').is_file() and (tmp_path/'o'/'session.csv').is_file() and b'\\xc5' in r.stdout


def test_hyperspy_stack_saved_as_emd(tmp_path):
    "A HyperSpy image stack saved as .emd marks no navigation axis: read as a stack, calibrated"
    hs = pytest.importorskip('hyperspy.api')
    from temrf.files import read_micrograph
    s = hs.signals.Signal2D(np.random.default_rng(0).random((3, 32, 32)).astype(np.float32))
    for a in s.axes_manager.signal_axes: a.scale, a.units = 0.1, 'nm'
    s.save(tmp_path/'stack.emd')
    m = read_micrograph(tmp_path/'stack.emd')
    assert m.data.shape == (3, 32, 32) and m.pixel_nm == pytest.approx(0.1)


def test_finetune_notes_a_skewed_mask(ws, tmp_path, capsys):
    "A mask that is mostly particle: the fine-tune runs, and a notice says its held-out check cannot see the skew"
    img = np.asarray(tifffile.imread(ws/'img.tif'))
    np.save(tmp_path/'skew.npy', (img > 90).astype(np.uint8))
    capsys.readouterr()
    assert main(['finetune', str(ws/'img.tif'), '--labels', str(tmp_path/'skew.npy'), '--model', 'lr-au', '--steps', '2',
                 '--out', str(tmp_path/'ft'), '--quiet']) == 0
    err = capsys.readouterr().err
    assert 'of its image as particle; the held-out check sees only your labelled images' in err
