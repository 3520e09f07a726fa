"File round trips of temrf.io: HDF5 pairs with attributes, atomic writes, TIFF stacks and PNG masks."
import os
import stat

import h5py
import numpy as np
import pytest
import skimage.io
import tifffile

from temrf.files import load_h5_pair, load_pair, load_tiff_pair, read_h5_attrs, save_h5_pair


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    imgs = rng.normal(0, 1, (3, 16, 16)).astype(np.float32)
    return imgs, (imgs > 0).astype(np.uint8)


def test_h5_round_trip_keys_and_attrs(tmp_path, pair):
    imgs, lbls = pair
    attrs = dict(kind='hr', seed=7, pixel_nm=0.0215, ok=True, pools=(2, 4), nested={'a': [1, 2]},
                 arr=np.arange(3), none=None)
    fi, fl = save_h5_pair(imgs, lbls, tmp_path/'sub'/'x.h5', tmp_path/'sub'/'y.hdf5', attrs=attrs,
                          images_key='data', labels_key='masks')
    x, y = load_pair(fi, fl, images_key='data', labels_key='masks')
    np.testing.assert_array_equal(x, imgs)
    np.testing.assert_array_equal(y, lbls)
    assert x.dtype == np.float32 and y.dtype == np.uint8
    want = dict(attrs, pools=[2, 4], arr=[0, 1, 2])
    assert read_h5_attrs(fi) == want == read_h5_attrs(fl)
    with h5py.File(fl) as f: assert list(f.keys()) == ['masks']
    with pytest.raises(ValueError, match=r"no dataset 'images'; keys present: \['data'\]"): load_h5_pair(fi, fl)


def test_written_files_get_normal_permissions(tmp_path, pair):
    old = os.umask(0o022)
    try: fi, fl = save_h5_pair(*pair, tmp_path/'x.h5', tmp_path/'y.h5')
    finally: os.umask(old)
    assert stat.S_IMODE(os.stat(fi).st_mode) == 0o644


def test_refuses_overwrite_without_writing_anything(tmp_path, pair):
    imgs, lbls = pair
    fl = tmp_path/'y.h5'
    fl.write_bytes(b'keep me')
    with pytest.raises(FileExistsError, match='overwrite=True'): save_h5_pair(imgs, lbls, tmp_path/'x.h5', fl)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['y.h5'] and fl.read_bytes() == b'keep me'
    save_h5_pair(imgs, lbls, tmp_path/'x.h5', fl, overwrite=True)
    assert len(load_h5_pair(tmp_path/'x.h5', fl)[0]) == 3


def test_failed_write_leaves_no_file(tmp_path, pair, monkeypatch):
    imgs, lbls = pair
    save_h5_pair(imgs, lbls, tmp_path/'x.h5', tmp_path/'y.h5')
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real = h5py.Group.create_dataset

    def flaky(self, name, *args, **kwargs):  # fails on the second file, after the first is complete
        if name == 'labels': raise OSError('disk full')
        return real(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, 'create_dataset', flaky)
    with pytest.raises(OSError, match='disk full'):
        save_h5_pair(imgs[:1], lbls[:1], tmp_path/'x.h5', tmp_path/'y.h5', overwrite=True)
    with pytest.raises(OSError, match='disk full'):
        save_h5_pair(imgs[:1], lbls[:1], tmp_path/'new_x.h5', tmp_path/'new_y.h5')
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # old pair intact, no temp files


def test_bad_pairs_are_not_written(tmp_path, pair):
    imgs, lbls = pair
    with pytest.raises(ValueError, match=r'found values \[2\]'): save_h5_pair(imgs, 2 * lbls, tmp_path/'x.h5', tmp_path/'y.h5')
    bad = imgs.copy(); bad[1, 2, 3] = np.inf
    with pytest.raises(ValueError, match=r'1 NaN/inf pixel\(s\), first at \(1, 2, 3\)'):
        save_h5_pair(bad, lbls, tmp_path/'x.h5', tmp_path/'y.h5')
    assert list(tmp_path.iterdir()) == []


def test_tiff_stack_with_tiff_and_png_masks(tmp_path, pair):
    imgs, lbls = pair
    tifffile.imwrite(tmp_path/'s.tiff', imgs, photometric='minisblack')
    tifffile.imwrite(tmp_path/'s_labels.tif', lbls * 255, photometric='minisblack')
    x, y = load_pair(tmp_path/'s.tiff', tmp_path/'s_labels.tif')
    np.testing.assert_array_equal(x, imgs)
    np.testing.assert_array_equal(y, lbls)
    # a 16-bit single image, a grey image saved as RGB TIFF, and a 0/1 PNG mask
    tifffile.imwrite(tmp_path/'one.tif', (imgs[0] * 100 + 1000).astype(np.uint16))
    tifffile.imwrite(tmp_path/'rgb.tif', np.dstack([lbls[0]] * 3), photometric='rgb')
    skimage.io.imsave(tmp_path/'m.png', lbls[0], check_contrast=False)
    x, y = load_tiff_pair(tmp_path/'one.tif', tmp_path/'m.png')
    assert x.dtype == np.uint16 and x.shape == (1, 16, 16)
    np.testing.assert_array_equal(y[0], lbls[0])
    np.testing.assert_array_equal(load_tiff_pair(tmp_path/'one.tif', tmp_path/'rgb.tif')[1][0], lbls[0])
    with pytest.raises(ValueError, match='differ in shape'): load_tiff_pair(tmp_path/'s.tiff', tmp_path/'m.png')
    tifffile.imwrite(tmp_path/'as_rgb.tif', imgs, photometric='rgb')  # 3 images mistaken for colour planes
    with pytest.raises(ValueError, match="photometric='minisblack'"): load_tiff_pair(tmp_path/'as_rgb.tif', tmp_path/'s_labels.tif')
    with pytest.raises(ValueError, match='keys only for HDF5'): load_pair(tmp_path/'one.tif', tmp_path/'m.png', images_key='x')


def test_multi_series_tiff_reads_the_same_for_training_and_segment(tmp_path):
    "A reduced-size preview and two frames appended one by one: training and `temrf segment` read the same stack"
    import tifffile
    from temrf.files import read_image_file, read_micrograph
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 4000, (2, 64, 48)).astype(np.uint16)
    p = tmp_path/'session.tif'
    tifffile.imwrite(p, frames[0][::4, ::4], subfiletype=1)  # a reduced-size preview first, as some microscope software writes
    tifffile.imwrite(p, frames[0], append=True)
    tifffile.imwrite(p, frames[1], append=True)
    with tifffile.TiffFile(p) as tf: assert len(tf.series) >= 2 and tf.series[0].shape == (16, 12)
    mask = (frames > 2000).astype(np.uint8)
    tifffile.imwrite(tmp_path/'session_labels.tif', mask)
    train_x, train_y = load_pair(p, tmp_path/'session_labels.tif')
    np.testing.assert_array_equal(train_x, frames)
    np.testing.assert_array_equal(read_image_file(p), np.asarray(read_micrograph(p).data))
    np.testing.assert_array_equal(train_y, mask)
