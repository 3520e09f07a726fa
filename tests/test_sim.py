"temrf.sim: label alignment, determinism per seed, the on-disk cache and resuming, bad input, the CLI (tiny fields)"
import sys, time
import numpy as np, pytest
from scipy import ndimage
import temrf.sim as sim
import temrf.sim_hr as sim_hr
import temrf.sim_lr as sim_lr
from temrf.files import load_h5_pair, read_h5_attrs
from temrf.preprocess import prepare_splits

# noiseless, aberration-free imaging of particles in vacuum: the image departs from 1 only where the atoms are
CLEAN_HR = dict(support_nm=0., dose=None, defocus_spread_nm=0., defocus_nm=0., cs_um=0., focal_spread_nm=0.,
                image_spread_nm=0., mtf_px=0.)
CLEAN_LR = dict(dose=None, blur_px=0., support_var=0., grain=0.)

@pytest.mark.parametrize('centre', [(0.8, 1.9), (1.9, 0.8)])
def test_hr_label_alignment(centre):
    "A particle placed at (x, y) nm labels at (row, col) = (y, x)/pixel, and the image disturbance is under the label"
    p = sim.sim_params('hr', 1.2, size=128, **CLEAN_HR)
    img, lbl, info = sim_hr.hr_field(128, 1.2, np.random.default_rng(0), p, centres_nm=[centre])
    assert info['n_particles'] == 1 and lbl.dtype == np.uint8
    rc = np.argwhere(lbl).mean(0)
    np.testing.assert_allclose(rc, [centre[1]/0.0215, centre[0]/0.0215], atol=3)
    np.testing.assert_allclose(ndimage.center_of_mass(np.abs(img - 1) > 0.05), rc, atol=2)
    dark, lab = ndimage.gaussian_filter(np.abs(img - 1), 2) > 0.02, lbl.astype(bool)
    assert (dark & lab).sum()/(dark | lab).sum() > 0.75

def test_lr_label_alignment():
    "Low-res: the image is darker exactly on the label, and the label sits where the particle was put"
    p = sim.sim_params('lr', 10., size=256, **CLEAN_LR)
    img, lbl, _ = sim_lr.lr_field(256, 10., np.random.default_rng(0), p, centres_nm=[(8., 20.)])
    np.testing.assert_allclose(np.argwhere(lbl).mean(0), [20/0.1243, 8/0.1243], atol=2)
    np.testing.assert_array_equal(img < img.max() - 1e-6, lbl.astype(bool))

def test_labels_cover_random_fields():
    "In random fields every particle's label is a filled convex blob, away from the field's edge"
    ims, lbs, meta = sim.simulate_dataset('lr', 12., n_images=2, size=256, seed=3)
    for lbl, info in zip(lbs, meta['images']):
        blobs, n = ndimage.label(lbl)
        assert n == info['n_particles'] >= 1
        assert not (lbl[0].any() or lbl[-1].any() or lbl[:, 0].any() or lbl[:, -1].any())
        np.testing.assert_array_equal(ndimage.binary_fill_holes(lbl), lbl)

@pytest.mark.parametrize('kind,d,size', [('hr', 1.5, 96), ('lr', 12., 128)])
def test_determinism_per_seed(kind, d, size):
    a, la, ma = sim.simulate_dataset(kind, d, n_images=3, size=size, seed=7)
    b, lb, mb = sim.simulate_dataset(kind, d, n_images=2, size=size, seed=7)
    np.testing.assert_array_equal(a[:2], b); np.testing.assert_array_equal(la[:2], lb)  # image i ignores n_images
    np.testing.assert_array_equal(sim.simulate_dataset(kind, d, n_images=1, size=size, seed=7)[0][0], a[0])
    assert not np.array_equal(sim.simulate_dataset(kind, d, n_images=1, size=size, seed=8)[0][0], a[0])
    assert a.dtype == np.float32 and la.dtype == np.uint8 and set(np.unique(la)) <= {0, 1}
    assert ma['images'][:2] == mb['images'] and np.isfinite(ma['contrast'])

def test_preset_cache_and_readback(tmp_path, monkeypatch):
    fi, fl = sim.simulate_preset('lr-small', cache_dir=tmp_path, progress=False, n_images=3, size=256)
    assert fi.name == 'Au_20nm_sim_16e_Images.h5' and fl.name == 'Au_20nm_sim_16e_Labels.h5'
    assert fi.parent.name.startswith('lr-small-') and not (fi.parent/'partial').exists()
    a = read_h5_attrs(fi)
    assert a['pixel_nm'] == sim.PIXEL_NM['lr'] and a['dose'] == 16 and a['preset'] == 'lr-small'
    assert a['contrast'] < 0 and a['temrf_version'] and a['n_images'] == 3 and read_h5_attrs(fl)['contrast'] == a['contrast']
    monkeypatch.setattr(sim, 'simulate_field', lambda *a: pytest.fail('a cached preset must not simulate'))
    t = time.time()
    assert sim.simulate_preset('lr-small', cache_dir=tmp_path, n_images=3, size=256) == (fi, fl)
    assert time.time() - t < 0.5
    x, y = load_h5_pair(fi, fl)
    assert x.shape == y.shape == (3, 256, 256)
    s = prepare_splits(x, y, size=64, min_pixels=50)
    assert all(len(X) == len(Y) > 0 and X.shape[1:] == (64, 64) for X, Y in s)

def test_env_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv('TEMRF_DATA', str(tmp_path))
    assert sim.data_dir() == tmp_path and sim.data_dir(tmp_path/'x') == tmp_path/'x'
    fi, _ = sim.simulate_preset('lr-small', progress=False, n_images=1, size=128, diameter_nm=8.)
    assert tmp_path in fi.parents

def test_resume_after_kill(tmp_path, monkeypatch):
    "A run killed after one field leaves no final file; the rerun simulates only the missing fields"
    kw = dict(progress=False, n_images=3, size=128, diameter_nm=8.)
    field, calls = sim.simulate_field, []
    def dies_after_one(p, i):
        if calls: raise KeyboardInterrupt
        calls.append(i); return field(p, i)
    monkeypatch.setattr(sim, 'simulate_field', dies_after_one)
    with pytest.raises(KeyboardInterrupt): sim.simulate_preset('lr-small', cache_dir=tmp_path, **kw)
    folder = next(tmp_path.iterdir())
    assert not list(folder.glob('*.h5')) and len(list((folder/'partial').glob('*.npz'))) == 1
    def counts(p, i): calls.append(i); return field(p, i)
    monkeypatch.setattr(sim, 'simulate_field', counts)
    files = sim.simulate_preset('lr-small', cache_dir=tmp_path, **kw)
    assert calls == [0, 1, 2]
    fresh = sim.simulate_preset('lr-small', cache_dir=tmp_path/'fresh', **kw)
    for a, b in zip(load_h5_pair(*files), load_h5_pair(*fresh)): np.testing.assert_array_equal(a, b)

def test_hr_preset_tiny(tmp_path):
    fi, fl = sim.simulate_preset('hr-small', cache_dir=tmp_path, progress=False, n_images=2, size=128, diameter_nm=1.5)
    a = read_h5_attrs(fi)
    assert fi.name == 'Au_1p5nm_sim_423e_Images.h5' and a['kind'] == 'hr' and a['pixel_nm'] == 0.0215
    x, y = load_h5_pair(fi, fl)
    assert x.shape == (2, 128, 128) and 0 < y.mean() < 1

@pytest.mark.parametrize('kw,msg', [
    (dict(kind='hr', diameter_nm=5., size=128), 'does not fit'),
    (dict(kind='lr', diameter_nm=20., size=64), 'does not fit'),
    (dict(kind='hr', dose=0.), 'dose=0.0'),
    (dict(kind='lr', dose=-3.), 'dose=-3.0'),
    (dict(kind='hr', pixel_nm=0.), 'pixel_nm=0.0'),
    (dict(kind='lr', pixel_nm=-0.1), 'pixel_nm=-0.1'),
    (dict(kind='hr', size=700), 'not a multiple of the patch size 512'),
    (dict(kind='lr', size=300, patch=128), 'not a multiple of the patch size 128'),
    (dict(kind='hr', diameter_nm=0.), 'diameter_nm=0.0'),
    (dict(kind='xr'), "kind='xr'"),
])
def test_bad_input(kw, msg):
    with pytest.raises(ValueError, match=None) as e: sim.simulate_dataset(n_images=1, **kw)
    assert msg in str(e.value) and '\n' not in str(e.value)

def test_unknown_physics():
    with pytest.raises(TypeError, match='unknown lr parameter'): sim.simulate_dataset('lr', 20., size=512, cs_um=1.)
    with pytest.raises(ValueError, match="unknown preset 'hr-3nm'"): sim.simulate_preset('hr-3nm')

def test_abtem_missing(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, 'abtem', None)  # `import abtem` now raises ImportError
    with pytest.raises(ImportError, match=r'pip install "temrf\[sim\]"') as e: sim.simulate_dataset('hr', 1.5, 1, 96)
    assert '\n' not in str(e.value)
    with pytest.raises(ImportError, match='temrf'): sim.simulate_preset('hr-small', cache_dir=tmp_path, n_images=1, size=128, diameter_nm=1.5)
    assert sim.simulate_dataset('lr', 12., 1, 128)[0].shape == (1, 128, 128)  # low-res needs no abTEM

def test_presets_are_valid():
    for name in sim.PRESETS:
        p = sim.preset_params(name)
        assert p['size'] % 512 == 0 and p['n_images'] >= 1
    assert {'hr-small', 'lr-small', 'hr-2.2nm', 'hr-5nm', 'hr-10nm', 'lr-20nm'} <= set(sim.PRESETS)
    assert [f'hr-contrast-{i}' for i in range(1, 7)] == [k for k in sim.PRESETS if k.startswith('hr-contrast')]
    assert sim.preset_params('hr-5nm')['size'] == 4096 and sim.preset_params('lr-20nm')['size'] == 2048

def test_cli(tmp_path, capsys):
    from temrf.cli import main
    args = ['--preset', 'lr-small', '--n_images', '2', '--size', '128', '--diameter_nm', '8', '--out', str(tmp_path), '--quiet']
    assert main(['simulate', *args]) == 0
    out = capsys.readouterr().out
    assert 'Au_8nm_sim_16e_Images.h5' in out and 'Au_8nm_sim_16e_Labels.h5' in out and str(tmp_path) in out
    assert main(['simulate', '--preset', 'nope', '--out', str(tmp_path)]) == 1
    assert "unknown preset 'nope'" in capsys.readouterr().err

def test_another_process_finishes_first(tmp_path, monkeypatch):
    "If another process assembles the same preset (and removes the partial folder) meanwhile, its files are returned"
    from temrf.files import save_h5_pair
    kw = dict(progress=False, n_images=2, size=128, diameter_nm=8.)
    p = sim.preset_params('lr-small', **{k: v for k, v in kw.items() if k != 'progress'})
    folder = tmp_path/f'lr-small-{sim.params_hash(p)}'
    files = [folder/f for f in sim.file_names(p)]
    field = sim.simulate_field
    def other_process_done(p, i):
        if i == 1:
            import shutil; shutil.rmtree(folder/'partial')
            save_h5_pair(np.full((2, 128, 128), 5, np.float32), np.zeros((2, 128, 128), np.uint8), *files)
        return field(p, i)
    monkeypatch.setattr(sim, 'simulate_field', other_process_done)
    got = sim.simulate_preset('lr-small', cache_dir=tmp_path, **kw)
    assert list(got) == files and (load_h5_pair(*got)[0] == 5).all()

def test_phonons_and_oversampling():
    "Frozen phonons average the intensity over configurations; oversampling bins the finer grid to the output pixels"
    for kw in (dict(phonons=2, dose=None), dict(oversample=2)):
        x, y, m = sim.simulate_dataset('hr', 1.5, 1, 128, seed=2, **kw)
        assert x.shape == y.shape == (1, 128, 128) and np.isfinite(x).all() and m['images'][0]['n_particles'] == 1
