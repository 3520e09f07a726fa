#!/usr/bin/env python
"""Screenshot of temrf's napari plugin at work on a real micrograph, for the docs (nbs/images/napari_plugin.png).

Frame 0 of `bftem_sintering.npz` (bright-field TEM of nanoparticles sintering at 800 C, msa-em/microscopy-seg-track,
CC-BY-4.0; see ../shared/realdata/README.md) has no calibration in its source, so it is written as a TIFF at an
*assumed* 0.1243 nm/px, the pixel size lr-au was trained at; the sizes in nm shown follow from that assumption.
The script opens the TIFF with temrf's reader in a real napari window (under a virtual display when there is no
$DISPLAY), runs the Segment widget with lr-au and the Measure widget, and saves the window at most 1000 px wide.

    .venv/bin/python tools/napari_screenshot.py [--data ../shared/realdata] [--out nbs/images/napari_plugin.png]
"""
import argparse, os, tempfile
from pathlib import Path

import numpy as np

ASSUMED_NM = 0.1243  # lr-au's training pixel size; the source gives none


def shoot(data, out, frame=0, width=1000, max_kb=300):
    "Run the plugin on frame `frame` of `data`/bftem_sintering.npz and save the window to `out` (PNG); returns the path"
    os.environ.setdefault('NAPARI_CONFIG', str(Path(tempfile.mkdtemp())/'settings.yaml'))  # leave the user's settings be
    import napari
    from napari.settings import get_settings
    from PIL import Image as PImage
    from temrf.files import save_tiff
    img = np.load(Path(data)/'bftem_sintering.npz')['images'][frame].astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        tif = save_tiff(Path(tmp)/'bftem_sintering_frame0.tif', img, pixel_nm=ASSUMED_NM)
        get_settings().application.gui_notification_level = 'error'  # no warning toast over the scale bar
        viewer = napari.Viewer(show=True, title='temrf in napari')
        viewer.window.resize(1750, 950)
        layer, = viewer.open(str(tif), plugin='temrf')
        _, seg = viewer.window.add_plugin_dock_widget('temrf', 'Segment')
        seg.image.value, seg.model.value = layer, 'lr-au'
        mask, prob = seg.run(sync=True)
        _, meas = viewer.window.add_plugin_dock_widget('temrf', 'Measure', tabify=False)
        meas.labels_layer.value = mask
        meas.run()
        meas.table.native.setMinimumHeight(150)
        viewer.scale_bar.visible, viewer.scale_bar.box, viewer.scale_bar.font_size = True, True, 14
        viewer.reset_view()
        napari.qt.get_qapp().processEvents()
        shot = viewer.screenshot(canvas_only=False, flash=False)
        viewer.close()
    pic = PImage.fromarray(shot[..., :3])
    pic = pic.resize((width, round(pic.height*width/pic.width)), PImage.LANCZOS)
    out = Path(out); out.parent.mkdir(parents=True, exist_ok=True)
    for colours in (256, 128, 64):  # a palette PNG: screenshots of a GUI keep their look in few colours
        pic.quantize(colours, method=PImage.Quantize.MEDIANCUT).save(out, optimize=True)
        if out.stat().st_size < max_kb*1024: break
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data', default=str(Path(__file__).resolve().parents[2]/'shared'/'realdata'), help='folder holding bftem_sintering.npz')
    p.add_argument('--out', default=str(Path(__file__).resolve().parents[1]/'nbs'/'images'/'napari_plugin.png'))
    a = p.parse_args()
    if not os.environ.get('DISPLAY'):
        from pyvirtualdisplay import Display  # Xvfb through PyVirtualDisplay (installed with pytest-xvfb)
        Display(visible=False, size=(1600, 1000), color_depth=24).start()
    out = shoot(a.data, a.out)
    print(f'{out}: {out.stat().st_size/1024:.0f} kB')


if __name__ == '__main__':
    main()
