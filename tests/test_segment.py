"""`temrf segment` and `temrf rf` end to end, as a microscopist runs them: calibrated files in, masks, particle tables
and advice out; tiles agree with whole frames, and a stack streams frame by frame."""
import re
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
import torch

from temrf.cli import main
from temrf.files import read_micrograph, save_tiff
from temrf.infer import pretrained, segment
from temrf.metrics import mask_dice
from temrf.sim import simulate_dataset


pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.fixture(scope='module')
def lr(tmp_path_factory):
    "A calibrated low-resolution micrograph (1024 px) and a 12-frame stack, with their labels"
    w = tmp_path_factory.mktemp('seg')
    img, lbl, meta = simulate_dataset('lr', diameter_nm=15, n_images=1, size=1024, seed=21)
    stack, slbl, _ = simulate_dataset('lr', diameter_nm=12, n_images=12, size=256, seed=22)
    save_tiff(w/'field.tif', img[0], pixel_nm=0.1243)
    save_tiff(w/'stack.tif', stack, pixel_nm=0.1243)
    return w, img[0], lbl[0], stack, slbl, meta


def test_segment_field_tiles_and_stats(lr, capsys):
    w, img, lbl, *_ , meta = lr
    assert main(['segment', str(w/'field.tif'), '--model', 'lr-au', '--out', str(w/'whole'), '--stats', '--quiet']) == 0
    assert main(['segment', str(w/'field.tif'), '--model', 'lr-au', '--out', str(w/'tiled'), '--tile', '256', '--quiet']) == 0
    a, b = read_micrograph(w/'whole'/'field_mask.tif'), read_micrograph(w/'tiled'/'field_mask.tif')
    assert a.data.shape == img.shape and a.pixel_nm == pytest.approx(0.1243)
    assert (a.data == b.data).mean() > 0.9999  # tiles agree with the whole frame (up to a pixel at p = 0.5)
    assert mask_dice(a.data > 0, lbl > 0) > 0.9
    t = pd.read_csv(w/'whole'/'particles.csv')
    truth = pd.DataFrame(meta['images'][0]['particles'])
    whole = t[~t.touches_edge]
    assert abs(len(t) - len(truth)) <= 0.1*len(truth)  # every particle found once
    assert abs(whole.ecd_nm.median()/truth.diameter_nm.median() - 1) < 0.15
    assert 'whole particles, median diameter' in capsys.readouterr().out


def test_segment_stack_streams_frames(lr):
    w, *_, stack, slbl, _ = lr
    assert main(['segment', str(w/'stack.tif'), '--model', 'lr-au', '--out', str(w/'st'), '--stats', '--probabilities', '--quiet']) == 0
    masks, probs = read_micrograph(w/'st'/'stack_mask.tif'), read_micrograph(w/'st'/'stack_prob.tif')
    assert masks.data.shape == stack.shape == probs.data.shape and probs.data.dtype == np.float32
    np.testing.assert_allclose(probs.data[3], segment(pretrained('lr-au', 'cpu'), stack[3], pixel_nm=0.1243), atol=1e-5)
    assert sorted(pd.read_csv(w/'st'/'particles.csv').frame.unique()) == list(range(12))


def test_rf_commands(lr, capsys):
    w, *_ = lr
    assert main(['rf', 'of', '--blocks', '2', '--pools', '4,4', '--pixel-size', '0.0215']) == 0
    assert 'RF 120 px = 2.58 nm' in capsys.readouterr().out
    assert main(['rf', 'table', '--pixel-size', '0.0215']) == 0
    assert 'm88' in capsys.readouterr().out
    assert main(['rf', 'suggest', str(w/'field.tif')]) == 0
    out = capsys.readouterr().out
    assert out.startswith('suggested receptive field') and 'low-resolution image' in out


# Ctrl-C as in a terminal: a shell that starts a job in the background (as CI may) sets SIGINT to ignored, and Python
# keeps that; the child restores Python's own handler first.
SEGMENT = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
           "from temrf.cli import main; sys.exit(main(sys.argv[1:]))")


@pytest.fixture(scope='module')
def long_stack(tmp_path_factory):
    "A 24-frame calibrated stack large enough that a run can be stopped midway"
    w = tmp_path_factory.mktemp('long')
    frames = np.random.default_rng(3).poisson(100, (24, 512, 512)).astype(np.float32)
    save_tiff(w/'long.tif', frames, pixel_nm=0.1243)
    return w/'long.tif'


def _finals(out): return sorted(p.name for p in out.glob('*') if not p.name.startswith('.')) if out.exists() else []
def _temps(out): return sorted(p.name for p in out.glob('.*')) if out.exists() else []


@pytest.mark.slow
@pytest.mark.parametrize('sig', ['SIGINT', 'SIGTERM'])
def test_stopped_segment_leaves_nothing_incomplete(long_stack, tmp_path, sig):
    "A real `temrf segment` stopped by SIGINT or SIGTERM midway leaves no output under a final name and no temporary"
    import os, signal, subprocess, sys, time
    out = tmp_path/'out'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    p = subprocess.Popen([sys.executable, '-c', SEGMENT, 'segment', str(long_stack), '--model', 'lr-au', '--probabilities',
                          '--stats', '--out', str(out), '--quiet'], env=env, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while p.poll() is None and time.time() - t0 < 120 and not any(q.stat().st_size > 2**20 for q in out.glob('.long_mask.tif.*')):
        time.sleep(0.05)
    assert p.poll() is None, 'the run ended before it could be stopped'
    p.send_signal(getattr(signal, sig))
    err = p.communicate(timeout=60)[1]
    assert p.returncode == (130 if sig == 'SIGINT' else 143), err
    assert 'Traceback' not in err and err.strip().splitlines()[-1].startswith('temrf segment: '), err
    assert _finals(out) == [] and _temps(out) == []
    assert main(['segment', str(long_stack), '--model', 'lr-au', '--out', str(out), '--quiet']) == 0  # a plain rerun
    assert read_micrograph(out/'long_mask.tif').data.shape == (24, 512, 512)


def test_error_midway_names_file_and_frame(long_stack, tmp_path, monkeypatch, capsys):
    "An error at frame 10 names the file and the frame, and leaves no output under a final name"
    import temrf.infer as ti
    calls, real = [], ti.segment
    def failing(*a, **k):
        calls.append(1)
        if len(calls) == 11: raise RuntimeError('out of memory')
        return real(*a, **k)
    monkeypatch.setattr(ti, 'segment', failing)
    out = tmp_path/'out'
    assert main(['segment', str(long_stack), '--model', 'lr-au', '--probabilities', '--out', str(out), '--quiet']) == 1
    assert f'temrf segment: error: {long_stack} frame 10: out of memory' in capsys.readouterr().err
    assert _finals(out) == [] and _temps(out) == []


def test_stale_temporaries_are_cleared(long_stack, tmp_path):
    "Temporaries a killed run left do not block a plain rerun and are removed by it; a running writer's are kept"
    import os, subprocess
    gone = subprocess.Popen(['true']); gone.wait()  # a process id that no longer runs
    out = tmp_path/'out'; out.mkdir()
    stale = out/f'.long_mask.tif.{gone.pid}.0a1b2c.tmp'; stale.write_bytes(b'half a stack')
    stack = read_micrograph(long_stack).data[:2]
    save_tiff(tmp_path/'two.tif', stack, pixel_nm=0.1243)
    assert main(['segment', str(tmp_path/'two.tif'), '--model', 'lr-au', '--out', str(out), '--quiet']) == 0
    assert not stale.exists() and _finals(out) == ['session.csv', 'two_mask.tif'] and _temps(out) == []


def test_segment_folder_one_label_per_particle(lr, tmp_path, capsys):
    "A folder of mixed files in, per-file masks and labels, particles.csv ids that are the label values, session.csv"
    import tifffile
    w, img, lbl, stack, *_ = lr
    d = tmp_path/'session'; d.mkdir()
    save_tiff(d/'a_field.tif', img[:512, :512], pixel_nm=0.1243)
    np.save(d/'b_raw.npy', stack[0])
    save_tiff(d/'c_stack.tif', stack[:2], pixel_nm=0.1243)
    tifffile.imwrite(d/'a_field_mask.tif', (lbl[:512, :512] > 0).astype(np.uint8))  # a user's mask: not an input
    (d/'notes.txt').write_text('beam current 2 nA')                                 # not an image: left out
    out = tmp_path/'out'
    assert main(['segment', str(d), '--model', 'lr-au', '--pixel-size', '0.1243', '--stats', '--split', '--out', str(out), '--quiet']) == 0
    printed = capsys.readouterr()
    assert '[1/3] a_field.tif' in printed.out and 'left out 1 file(s) named like masks' in printed.err
    for stem in ('a_field', 'b_raw', 'c_stack'):
        for kind in ('mask.tif', 'labels.tif', 'overlay.png', 'sizes.png'): assert (out/f'{stem}_{kind}').is_file(), (stem, kind)
    t = pd.read_csv(out/'particles.csv')
    for stem, g in t.groupby('file'):
        labels = np.asarray(read_micrograph(out/f'{Path(stem).stem}_labels.tif').data)
        labels = labels[None] if labels.ndim == 2 else labels
        for (frame, ids) in g.groupby('frame').id:
            assert sorted(ids) == list(range(1, labels[frame].max() + 1))  # every label value is one row, and back
        r = g.iloc[0]
        ys, xs = np.nonzero(labels[r.frame] == r.id)
        assert len(ys)*0.1243**2 == pytest.approx(r.area_nm2) and ys.mean()*0.1243 == pytest.approx(r.centroid_y_nm)
    s = pd.read_csv(out/'session.csv')
    assert list(s.file) == ['a_field.tif', 'b_raw.npy', 'c_stack.tif'] and list(s.frames) == [1, 1, 2]
    assert (s.model == 'lr-au').all() and (s.pixel_nm == 0.1243).all() and (s.whole_particles > 0).all()
    assert {'median_ecd_nm', 'iqr_ecd_nm', 'particle_fraction'} <= set(s.columns)


def test_segment_empty_result_says_so(tmp_path, capsys):
    "An image without a whole particle: words, not 'median diameter nan nm'"
    flat = np.random.default_rng(0).normal(1000, 5, (256, 256)).astype(np.float32)
    save_tiff(tmp_path/'blank.tif', flat, pixel_nm=0.1243)
    assert main(['segment', str(tmp_path/'blank.tif'), '--model', 'lr-au', '--stats', '--min-size', '3', '--out', str(tmp_path/'o'),
                 '--quiet']) == 0
    out = capsys.readouterr().out
    assert not re.search(r'\bnan\b', out) and ('no particle found' in out or 'no whole particle found' in out), out
    assert pd.read_csv(tmp_path/'o'/'session.csv').whole_particles.tolist() == [0]
