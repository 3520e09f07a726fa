"The docs site renders from the notebooks and reads right in headless Chromium; README.md is what index.ipynb makes"
import os, re, shutil, subprocess, sys, tempfile
from pathlib import Path

import pytest
from matplotlib.image import imread

pytestmark = pytest.mark.slow

sys.path.insert(0, str(Path(__file__).resolve().parents[1]/'tools'))
from docs import missing_images, page_facts  # tools/docs.py, the docs renderer

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
         '--no-first-run', '--disable-sync', '--disable-quic', '--hide-scrollbars']
# The pages a reader must see working, and what each shows beyond a title, sections and code:
# `api` show_doc blocks, `images` figures (the index's picture of the main result), `tables` (the paper's numbers)
PAGES = {'index.ipynb': dict(api=0, images=1, tables=0),
         '03_model.ipynb': dict(api=1, images=0, tables=0),
         '11_figures.ipynb': dict(api=0, images=1, tables=1),
         '12_contrast_experiment.ipynb': dict(api=0, images=1, tables=1)}


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    "Render the site as `make docs` does, from a copy of the project (so nothing in the checkout changes); its `_docs`"
    work = tmp_path_factory.mktemp('docs')
    skip = shutil.ignore_patterns('.ipynb_checkpoints', 'nbdev.yml', 'sidebar.yml')  # nbdev writes these two afresh
    shutil.copytree(ROOT/'nbs', work/'nbs', ignore=skip)
    for f in ('settings.ini', '_quarto.yml'): shutil.copy2(ROOT/f, work/f)
    if (ROOT/'_proc').is_dir():  # nbdev's cache from `make docs`: only the notebooks changed since are processed again
        shutil.copytree(ROOT/'_proc', work/'_proc', ignore=shutil.ignore_patterns('_docs'))
    r = subprocess.run([sys.executable, str(ROOT/'tools'/'docs.py')], cwd=work, capture_output=True, text=True, timeout=300)
    print(r.stdout)
    assert r.returncode == 0, f'python tools/docs.py failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}'
    return work/'_docs'


def output_file(site, src):
    "The page nbdev makes of notebook `src`: the `output-file` in its processed front matter"
    nb = site.parent/'_proc'/src
    assert nb.exists(), f'nbs/{src} is missing, so the site has no page for it'
    m = re.search(r'output-file: ([^\\"\n]+)', nb.read_text())
    return site/Path(src).parent/(m[1].strip() if m else Path(src).with_suffix('.html').name)


def browse(page, shot, size='1280,2400'):
    "Open `page` in headless Chromium with a fresh profile: screenshot to `shot`, and return the DOM it built"
    shot.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        opts = [f'--user-data-dir={profile}', f'--window-size={size}', f'--screenshot={shot}', '--dump-dom']
        r = subprocess.run([CHROMIUM, *FLAGS, *opts, page.as_uri()], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and '<html' in r.stdout, r.stderr[-2000:]
    return r.stdout


def test_site_has_a_page_per_notebook(site):
    nbs = sorted(p.relative_to(ROOT/'nbs') for p in (ROOT/'nbs').rglob('*.ipynb')
                 if not any(s.startswith(('_', '.')) for s in p.relative_to(ROOT/'nbs').parts))
    pages = [output_file(site, str(nb)) for nb in nbs]
    assert [p for p in pages if not p.exists()] == []
    print(f'{len(pages)} pages')


@pytest.mark.parametrize('src', list(PAGES))
def test_page_in_browser(site, src):
    if not CHROMIUM: pytest.skip('chromium is not installed: `apt-get install -y chromium` (as root) runs this test')
    page, want = output_file(site, src), PAGES[src]
    shot = Path(os.environ.get('TEMRF_SCREENSHOTS') or site/'screenshots')/f'{page.stem}.png'
    f = page_facts(browse(page, shot))
    assert f['title'], f'{page.name}: no title'
    assert [t for h, t in f['headings'] if h == 'h2'], f'{page.name}: no sections (## headings)'
    assert f['code'] >= 1, f'{page.name}: no code blocks'
    assert f['api'] >= want['api'], f"{page.name}: {f['api']} show_doc blocks"
    assert len(f['images']) >= want['images'], f"{page.name}: {len(f['images'])} figures, {want['images']} expected"
    assert missing_images(f['images'], page) == [], f'{page.name}: broken pictures'
    assert f['tables'] >= want['tables'], f"{page.name}: {f['tables']} tables"
    assert f['raw_markdown'] == [], f'{page.name}: Markdown left unrendered'
    img = imread(shot)
    assert img.shape[1] == 1280 and img[..., :3].std() > 0.05, f'{shot}: the screenshot looks blank'
    print(f"{page.name}: {len(f['headings'])} headings, {f['code']} code blocks, {f['api']} API blocks, "
          f"{len(f['images'])} images, {f['tables']} tables; screenshot {shot}")


def test_one_quarto_config():
    "nbdev_docs (Quarto) and `python tools/docs.py` (smalldocs) read the same `_quarto.yml`"
    assert (ROOT/'nbs/_quarto.yml').resolve() == (ROOT/'_quarto.yml').resolve()


def test_readme_matches_index(tmp_path):
    code = f'import sys; sys.path.insert(0, {str(ROOT/"tools")!r}); from docs import make_readme; make_readme({str(tmp_path)!r})'
    r = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob('*') if p.is_file())
    for p in fresh:
        assert (ROOT/p).is_file() and (ROOT/p).read_bytes() == (tmp_path/p).read_bytes(), \
            f'{p} is not what nbs/index.ipynb makes: run `python tools/docs.py readme`'


def test_maths_needs_no_network(site):
    "Maths is MathML in the page, drawn by the browser itself: no KaTeX from a CDN, no TeX left for a script to find"
    pages = {p.name: p.read_text() for p in site.rglob('*.html')}
    assert sum('<math' in t for t in pages.values()) >= 5, 'the pages with equations have no MathML'
    assert [n for n, t in pages.items() if 'katex' in t.lower() or 'class="math' in t] == []
