"""Run notebooks in place so that the docs show their figures and tables: `python tools/store_outputs.py nbs/03_model.ipynb ...`

Cells flagged `#| slow` run only with `--slow`; the export cell never runs. Figures are stored at a modest dpi so that
the committed notebooks stay small. Run `nbdev_clean` afterwards (`make outputs` does both)."""
import base64, io, json, os, re, sys
from pathlib import Path
from execnb.shell import CaptureShell
from PIL import Image

# Noisy micrographs do not compress as PNG: figures are stored as JPEG at a modest dpi.
SETUP = """
import matplotlib as mpl
mpl.rcParams['figure.dpi'] = 60
get_ipython().run_line_magic('config', "InlineBackend.figure_formats = ['jpeg']")
get_ipython().run_line_magic('config', "InlineBackend.print_figure_kwargs = {'bbox_inches': 'tight', 'pil_kwargs': {'quality': 80}}")
"""

def skip(cell, slow=False):
    "True for cells that must not run when storing outputs"
    src = cell.source
    if 'nbdev_export' + '(' in src: return True
    return not slow and re.search(r'^\s*#\s*\|\s*slow\b', src, re.M) is not None

def shrink(nb, limit=40_000, quality=75):
    "Store PNG outputs larger than `limit` bytes as JPEG where that is smaller (noisy micrographs)"
    d = json.loads(Path(nb).read_text())
    for o in (o for c in d['cells'] for o in c.get('outputs', [])):
        png = o.get('data', {}).get('image/png')
        if not png or len(png) < limit: continue
        im = Image.open(io.BytesIO(base64.b64decode(''.join(png)))).convert('RGB')
        buf = io.BytesIO(); im.save(buf, 'JPEG', quality=quality, optimize=True)
        jpg = base64.b64encode(buf.getvalue()).decode()
        if len(jpg) < len(''.join(png)) / 2: o['data'].pop('image/png'); o['data']['image/jpeg'] = jpg
    Path(nb).write_text(json.dumps(d, indent=1, ensure_ascii=False) + '\n')

def store(nb, slow=False):
    nb = Path(nb).resolve()
    cwd = os.getcwd(); os.chdir(nb.parent)
    try:
        sh = CaptureShell()
        sh.run(SETUP)
        sh.execute(nb, nb, exc_stop=True, preproc=lambda c: skip(c, slow))
        shrink(nb)
    finally: os.chdir(cwd)
    print(f"{nb.name}: {nb.stat().st_size/1024:.0f} KiB")

if __name__ == '__main__':
    args = sys.argv[1:]
    slow = '--slow' in args
    for nb in [a for a in args if a != '--slow']: store(nb, slow)
