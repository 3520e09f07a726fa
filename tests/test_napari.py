"The napari plugin as napari plugins are tested: its logic against `ViewerModel` (no window), its widgets in a real viewer"
import os, subprocess, sys
from pathlib import Path

import numpy as np
import pytest

napari = pytest.importorskip('napari')
from napari.components import ViewerModel
from npe2 import PluginManager
from napari.utils.notifications import notification_manager
from skimage.draw import disk

from temrf import napari_plugin as plug
from temrf.datasets import get_splits, resolve_dataset
from temrf.files import read_micrograph, save_tiff

LR_NM = 0.1243  # lr-au's own pixel size: no resampling, so the small tests stay quick


def particles(size=96, centres=((48, 48),), r=16, seed=0):
    "A float32 image of dark discs of radius `r` px on noise, and its 0/1 mask"
    rng = np.random.default_rng(seed)
    img, lab = rng.normal(100, 5, (size, size)).astype(np.float32), np.zeros((size, size), np.uint8)
    for c in centres: lab[disk(c, r, shape=lab.shape)] = 1
    img[lab > 0] -= 40
    return img, lab


def lr_field():
    "A simulated low-resolution field (256 px at lr-au's pixel size, two 12 nm particles) and its 0/1 mask"
    from temrf.sim import simulate_dataset
    img, lab, _ = simulate_dataset('lr', diameter_nm=12, n_images=1, size=256, seed=3)
    return img[0], lab[0]


def last_message():
    "The last napari notification's text"
    return notification_manager.records[-1].message


def refused(f, *args, **kwargs):
    "Call `f` through the widgets' `notify`: assert it was refused, with a one-line notification; that line"
    n = len(notification_manager.records)
    assert plug.notify(f, *args, **kwargs) is None
    assert len(notification_manager.records) == n + 1
    msg = last_message()
    assert '\n' not in msg and len(msg) < 300, msg
    return msg


@pytest.fixture
def vm():
    v = ViewerModel()
    yield v
    v.layers.clear()


# ---- the reader, through napari's own plugin machinery (npe2 finds temrf through its entry point) ----

def test_reader_sets_scale_and_units(vm, tmp_path):
    PluginManager.instance().discover()  # as napari does when it starts: finds temrf's `napari.manifest` entry point
    img, _ = particles()
    save_tiff(tmp_path/'cal.tif', img, pixel_nm=0.5)
    save_tiff(tmp_path/'stack.tif', np.stack([img, img]), pixel_nm=0.25)
    np.save(tmp_path/'bare.npy', img)
    cal, = vm.open(str(tmp_path/'cal.tif'), plugin='temrf')
    np.testing.assert_allclose(cal.scale, [0.5, 0.5], rtol=1e-6)
    assert [str(u) for u in cal.units] == ['nanometer', 'nanometer']
    assert cal.metadata['temrf']['calibration'] == '0.5 nm/px from the file'
    assert cal.metadata['temrf']['file']['pixel_source'] == 'file'
    stack, = vm.open(str(tmp_path/'stack.tif'), plugin='temrf')
    assert stack.data.shape == (2, 96, 96) and [str(u) for u in stack.units] == ['pixel', 'nanometer', 'nanometer']
    assert plug.layer_frames(stack).shape == (2, 96, 96)  # a stack of frames, not a volume
    bare, = vm.open(str(tmp_path/'bare.npy'), plugin='temrf')
    assert list(bare.scale) == [1, 1] and plug.layer_pixel_nm(bare) is None
    assert bare.metadata['temrf']['calibration'].startswith('none: the file holds no pixel size')


def test_reader_hook_declines_other_files(tmp_path):
    assert plug.get_reader(str(tmp_path/'a.png')) is None
    assert plug.get_reader([str(tmp_path/'a.tif'), str(tmp_path/'b.txt')]) is None
    assert plug.get_reader(str(tmp_path/'a.dm4')) is plug.read_layers


# ---- segment, measure, RF advice, fine-tune: the widgets' logic without Qt ----

def test_segment_small_image_lr_au(vm):
    img, lab = lr_field()
    layer = vm.add_image(img, scale=(LR_NM, LR_NM), units=('nm', 'nm'), name='au')
    mask, prob = plug.segment_layer(vm, layer, 'lr-au')
    assert [l.name for l in vm.layers] == ['au', 'au probability', 'au mask']
    assert isinstance(mask, napari.layers.Labels) and mask.data.dtype == np.uint32
    assert mask.data.max() == len(np.unique(mask.data)) - 1 > 1  # one label per particle, numbered 1..n
    np.testing.assert_array_equal(mask.scale, layer.scale); assert mask.units == layer.units
    assert prob.data.dtype == np.float32 and 0 <= prob.data.min() and prob.data.max() <= 1
    m = mask.data > 0
    dice = 2*(m & (lab > 0)).sum()/(m.sum() + (lab > 0).sum())
    assert dice > 0.9, dice
    mask.data[:5, :5] = 1  # a correction, then a second run: a new layer, the corrected one kept
    plug.segment_layer(vm, layer, 'lr-au')
    assert vm.layers['au mask'].data[:5, :5].all() and 'au mask [1]' in [l.name for l in vm.layers]


def test_measure_respects_scale(vm):
    _, lab = particles(size=100, centres=((50, 50),), r=20)
    labels = vm.add_labels(lab, scale=(0.5, 0.5), units=('nm', 'nm'), name='disc')
    t = plug.measure_layer(labels)
    assert len(t) == 1
    assert abs(t.area_nm2[0] - np.pi*10**2) < 0.02*np.pi*10**2  # radius 20 px at 0.5 nm/px: 10 nm
    assert abs(t.ecd_nm[0] - 20) < 0.2
    labels.data[disk((10, 80), 6)] = 1  # the user paints in a particle the model missed
    assert len(plug.measure_layer(labels)) == 2
    fig = plug.size_figure(t)
    assert fig.axes[0].get_xlabel().endswith('(nm)')


def test_measure_exports_never_overwrite(vm, tmp_path):
    _, lab = particles(size=100, centres=((50, 50),), r=20)
    labels = vm.add_labels(lab, scale=(0.5, 0.5), units=('nm', 'nm'), name='disc')
    t = plug.measure_layer(labels)
    plug.export_csv(t, tmp_path/'p.csv'); plug.export_tiff(labels, tmp_path/'m.tif')
    m = read_micrograph(tmp_path/'m.tif')
    assert abs(m.pixel_nm - 0.5) < 1e-6 and (m.data == lab).all()
    before = (tmp_path/'p.csv').read_bytes()
    assert "tick 'overwrite'" in refused(plug.export_csv, t.iloc[:0], tmp_path/'p.csv')
    assert "tick 'overwrite'" in refused(plug.export_tiff, labels, tmp_path/'m.tif')
    assert (tmp_path/'p.csv').read_bytes() == before  # nothing lost
    plug.export_csv(t.iloc[:0], tmp_path/'p.csv', overwrite=True)
    assert len((tmp_path/'p.csv').read_text().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ['m.tif', 'p.csv']  # no temporaries left
    (tmp_path/'afile').write_text('x')  # a path under a file: one line, not '[Errno 17] File exists'
    assert 'afile is a file, not a folder' in refused(plug.export_csv, t, tmp_path/'afile'/'p.csv')


def test_rf_advice(vm):
    img, lab = particles()
    layer = vm.add_image(img, scale=(LR_NM, LR_NM), units=('nm', 'nm'), name='au')
    labels = vm.add_labels(lab, scale=layer.scale, units=layer.units, name='au mask')
    a, text = plug.rf_advice(layer, labels=labels)
    assert a['pixel_nm'] == pytest.approx(LR_NM) and a['regime'] == 'low-resolution' and a['rf_nm'] > 0
    assert text.startswith('suggested receptive field') and 'because:' in text


def test_finetune_writes_a_dataset_train_reads(vm, tmp_path):
    centres = [(y, x) for y in (16, 80, 144) for x in (16, 60, 104, 160)]
    img, lab = particles(size=200, centres=centres, r=12)
    image = vm.add_image(img, scale=(LR_NM, LR_NM), units=('nm', 'nm'), name='au')
    labels = vm.add_labels(lab, scale=image.scale, units=image.units, name='au mask', metadata=dict(temrf=dict(model='lr-au')))
    r = plug.finetune_dataset(image, labels, tmp_path/'ft')
    assert r['command'] == f"temrf train --dataset {tmp_path/'ft'} --init lr-au --patch {r['patch']} --out runs/finetune"
    info = resolve_dataset(str(tmp_path/'ft'))
    assert (info['kind'], info['origin']) == ('lr', 'folder') and info['pixel_nm'] == pytest.approx(LR_NM)
    s = get_splits(str(tmp_path/'ft'), patch=r['patch'])  # what `temrf train --dataset ... --patch ...` cuts
    assert min(len(s.train[0]), len(s.valid[0]), len(s.test[0])) > 0
    assert 'already holds a dataset' in refused(plug.finetune_dataset, image, labels, tmp_path/'ft')


# ---- bad input: one line each, nothing changed ----

@pytest.fixture
def bad(vm, tmp_path):
    img, _ = particles()
    (tmp_path/'notes.pth').write_text('not a model')
    return dict(
        bare=vm.add_image(img, name='bare'),
        rgb=vm.add_image(np.zeros((64, 64, 3), np.uint8), rgb=True, name='rgb'),
        volume=vm.add_image(np.stack([img]*4), scale=(0.5,)*3, units=('nm',)*3, name='tomogram'),
        z=vm.add_image(np.stack([img]*4), axis_labels=('z', 'y', 'x'), name='z stack'),
        ok=vm.add_image(img, scale=(LR_NM, LR_NM), units=('nm', 'nm'), name='ok'),
        tiny=vm.add_image(img[:12, :12], scale=(LR_NM, LR_NM), units=('nm', 'nm'), name='tiny'),
        notes=tmp_path/'notes.pth')


@pytest.mark.parametrize('case, layer, model, want', [
    ('no scale', 'bare', 'lr-au', "layer 'bare' has no pixel size (its scale has no units): enter the pixel size in nm"),
    ('RGB', 'rgb', 'lr-au', "layer 'rgb' is RGB (colour); temrf segments greyscale micrographs"),
    ('volume', 'volume', 'lr-au', "layer 'tomogram' is a 3D volume"),
    ('z axis', 'z', 'lr-au', "layer 'z stack' is a 3D volume (axis 0 z"),
    ('not a model', 'ok', 'notes', "notes.pth is not a temrf model: choose a model.pth written by temrf train"),
    ('too small', 'tiny', 'lr-au', "layer 'tiny' is 12x12 px (12x12 px at the model's pixel size), smaller than the 16-px grid of lr-au"),
])
def test_segment_refuses(vm, bad, case, layer, model, want):
    n = len(vm.layers)
    msg = refused(plug.segment_layer, vm, bad[layer], bad.get(model, model))
    assert want in msg, msg
    assert len(vm.layers) == n  # nothing added, nothing removed


def test_no_scale_asks_everywhere(vm, bad, tmp_path):
    labels = vm.add_labels(np.zeros((96, 96), np.uint8), name='bare mask')
    for f, args in [(plug.measure_layer, (labels,)), (plug.rf_advice, (bad['bare'],)),
                    (plug.export_tiff, (labels, tmp_path/'m.tif')), (plug.finetune_dataset, (bad['bare'], labels, tmp_path/'ft'))]:
        assert 'has no pixel size' in refused(f, *args)
    assert list(tmp_path.iterdir()) == [bad['notes']]
    mask, _ = plug.segment_layer(vm, bad['bare'], 'lr-au', pixel_nm=LR_NM)  # once given, it is used and remembered
    assert mask.metadata['temrf']['pixel_nm'] == LR_NM and plug.layer_pixel_nm(mask) == LR_NM


# ---- the widgets in a real viewer, under a virtual display ----

@pytest.fixture(scope='module')
def qt_display():
    "Why Qt cannot open a window here (None when it can), asked in a subprocess: Qt aborts the process it fails in"
    if not os.environ.get('DISPLAY') and os.environ.get('QT_QPA_PLATFORM') != 'offscreen':
        return 'no display: install Xvfb (`make xvfb`, or `apt-get install -y xvfb` as root) and pytest-xvfb starts one'
    r = subprocess.run([sys.executable, '-c', 'from qtpy.QtWidgets import QApplication; QApplication([])'],
                       capture_output=True, text=True, timeout=60)
    if r.returncode == 0: return None
    why = next((l for l in r.stderr.splitlines() if 'plugin' in l), r.stderr.strip()[-200:])
    return (f"Qt cannot open a window on DISPLAY={os.environ.get('DISPLAY')} ({why.strip()}); on Debian install "
            "libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 libxcb-image0 libxcb-render-util0 libxkbcommon-x11-0 libgl1")


@pytest.fixture
def viewer(request, qt_display):
    if qt_display: pytest.skip(qt_display)
    return request.getfixturevalue('make_napari_viewer')()


def test_widgets_dock_from_the_manifest(viewer):
    for name, cls in [('Segment', plug.SegmentWidget), ('Measure', plug.MeasureWidget),
                      ('RF advice', plug.RFAdviceWidget), ('Fine-tune', plug.FinetuneWidget)]:
        dock, w = viewer.window.add_plugin_dock_widget('temrf', name)
        assert isinstance(w, cls)


def test_segment_and_measure_widgets(viewer, qtbot, tmp_path):
    img, lab = lr_field()
    layer = viewer.add_image(img, scale=(LR_NM, LR_NM), units=('nm', 'nm'), name='au')
    seg = plug.SegmentWidget(viewer)
    viewer.window.add_dock_widget(seg)
    assert seg.image.value is layer and seg.info.value.startswith('pixel size from the layer: 0.1243')
    seg.model.value = 'lr-au'
    worker = seg.run()
    with qtbot.waitSignal(worker.finished, timeout=60_000): pass
    mask = viewer.layers['au mask']
    assert mask.data.shape == img.shape and ((mask.data > 0) & (lab > 0)).sum() > 0.8*lab.sum()
    meas = plug.MeasureWidget(viewer)
    viewer.window.add_dock_widget(meas)
    assert meas.labels_layer.value is mask
    n_regions = mask.data.max()
    assert sorted(np.unique(mask.data))[1:] == list(range(1, n_regions + 1))  # Segment: one label per particle
    t = meas.run()
    assert set(t.id) <= set(np.unique(mask.data)) and all(abs((mask.data == r.id).sum()*LR_NM**2 - r.area_nm2) < 1e-6 for r in t.itertuples())
    meas.table.native.selectRow(1)  # a row of the table selects its particle in the layer
    assert mask.selected_label == t.id[1] and mask.show_selected_label
    big, truth = t[t.area_nm2 > 20], plug.measure_layer(viewer.add_labels(lab, scale=(LR_NM, LR_NM), units=('nm', 'nm'), name='truth'))
    assert len(big) == len(truth) == 2 and meas.summary.value.startswith(f'{len(t)} particles') and meas.canvas is not None
    assert abs(big.ecd_nm.mean()/truth.ecd_nm.mean() - 1) < 0.1  # sizes in nm as the true masks give them
    assert t.equals(plug.measure_layer(mask))
    meas.csv.value = tmp_path/'p.csv'
    assert meas.export('csv') == tmp_path/'p.csv'
    assert meas.export('csv') is None and "tick 'overwrite'" in last_message()
    meas.overwrite.value = True
    assert meas.export('csv') == tmp_path/'p.csv'


def test_segment_widget_asks_for_a_pixel_size(viewer):
    img, _ = particles()
    viewer.add_image(img, name='bare')
    seg = plug.SegmentWidget(viewer)
    assert seg.info.value == 'no pixel size on this layer: enter one (required)'
    assert "layer 'bare' has no pixel size" in last_message()
    n = len(viewer.layers)
    assert seg.run() is None and len(viewer.layers) == n
    seg.model.value, seg.pixel.value = 'lr-au', LR_NM
    mask, _ = seg.run(sync=True)
    assert mask.metadata['temrf']['pixel_nm'] == pytest.approx(LR_NM)
    seg.model.value = plug.AUTO  # the default: the shipped model for the pixel size, named in the widget
    mask, _ = seg.run(sync=True)
    assert mask.metadata['temrf']['model'] == 'lr-au' and seg.info.value == 'lr-au at 0.1243 nm/px'
    seg.model.value = 'file or run folder'
    assert seg.run() is None and 'no model file chosen' in last_message()


def test_rf_and_finetune_widgets(viewer, tmp_path):
    centres = [(y, x) for y in (16, 80, 144) for x in (16, 60, 104, 160)]
    img, lab = particles(size=200, centres=centres, r=12)
    image = viewer.add_image(img, scale=(LR_NM, LR_NM), units=('nm', 'nm'), name='au')
    viewer.add_labels(lab, scale=image.scale, units=image.units, name='au mask')
    rf = plug.RFAdviceWidget(viewer)
    rf.labels_layer.value = viewer.layers['au mask']
    rf.run(sync=True)
    assert rf.text.value.startswith('suggested receptive field')


def test_correct_finetune_and_segment(viewer, qtbot, tmp_path):
    "The fine-tuning loop as a microscopist runs it: segment, correct the mask, fine-tune in a thread, segment with the result"
    img, lab = lr_field()
    image = viewer.add_image(img, scale=(LR_NM, LR_NM), units=('nm', 'nm'), name='au')
    seg = plug.SegmentWidget(viewer)
    viewer.window.add_dock_widget(seg)
    seg.model.value = 'lr-au'
    mask, _ = seg.run(sync=True)
    mask.data = lab.copy()  # the user's corrections, painted with the Labels tools
    ft = plug.FinetuneWidget(viewer)
    viewer.window.add_dock_widget(ft)
    ft.image.value, ft.labels_layer.value, ft.folder.value, ft.steps.value = image, mask, tmp_path/'mine', 20
    worker = ft.run()
    assert not ft.button.enabled  # one fine-tune at a time
    with qtbot.waitSignal(worker.finished, timeout=180_000): pass
    mine = str(tmp_path/'mine')
    assert ft.result['kept'] in ('fine-tuned', 'starting') and ft.text.value.startswith('held-out dice') and ft.button.enabled
    assert (tmp_path/'mine'/'model.pth').exists() and mine in seg.model.choices  # offered in the Segment widget
    seg.model.value = mine
    new, _ = seg.run(sync=True)
    assert new.metadata['temrf']['model'] == mine and new.data.shape == img.shape
    assert ((new.data > 0) & (lab > 0)).sum() > 0.8*lab.sum()
    assert ft.run() is None and 'exists; choose a new folder or pass --overwrite' in last_message()  # nothing replaced unasked
