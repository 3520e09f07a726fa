#!/usr/bin/env python
"""Render temrf's documentation site and README.md from the notebooks, with or without Quarto (`make docs` runs it)"""

import argparse, base64, json, re, sys, tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote
import nbdev.serve_drv
from nbdev.config import get_config
from nbdev.processors import FilterDefaults
from nbdev.quarto import _def_file_re, nbdev_sidebar, refresh_quarto_yml
from nbdev.serve import proc_nbs
from smalldocs.config import load
from smalldocs.llms import Prose, notebook
from smalldocs.markdown import split_front_matter
from smalldocs.site import Site

def write_sidebar(path=None):
    "Write `sidebar.yml` in `path` (default `nbs_path`) listing the pages in the notebooks' order, as `nbdev_docs` does"
    path = Path(path or get_config().nbs_path)
    nbdev_sidebar.__wrapped__(path=path, file_re=_def_file_re)  # pages only: `nbdev_proc_nbs` lists every file
    return path/'sidebar.yml'

def proc_docs(n_workers:int=2):
    "nbdev's `_pre_docs` without the Quarto install: `nbdev.yml`, `sidebar.yml` and `_proc/`; returns `_proc`"
    refresh_quarto_yml()
    write_sidebar()
    return proc_nbs(n_workers=n_workers)

class NbdevSite(Site):
    "A smalldocs `Site` that writes each page to its `output-file`, as Quarto does with nbdev's processed notebooks"
    def read(self, src):
        page = super().read(src)
        if page.front.get('output-file'): page.out = src.parent/str(page.front['output-file'])
        return page

    def find_page(self, target):
        "The page whose source, or whose output file, is `target`"
        return super().find_page(target) or next((p for p in self.pages.values() if p.out == target), None)

_DATA_IMG = re.compile(r'src="data:image/(png|jpeg|gif|svg\+xml);base64,([^"]+)"')
_EXT = {'png': '.png', 'jpeg': '.jpg', 'gif': '.gif', 'svg+xml': '.svg'}

def extract_images(html:str, stem:str):
    "Move the base64 pictures of `html` to files `{stem}_files/figure-html/img-N.*`; returns `(html, {path: bytes})`"
    files = {}
    def _save(m):
        name = f'{stem}_files/figure-html/img-{len(files)+1}{_EXT[m[1]]}'
        files[name] = base64.b64decode(m[2])
        return f'src="{name}"'
    return _DATA_IMG.sub(_save, html), files

def write_files(folder, files:dict):
    "Write `files` (`{relative path: bytes}`) under `folder`"
    for name, data in files.items():
        (Path(folder)/name).parent.mkdir(parents=True, exist_ok=True)
        (Path(folder)/name).write_bytes(data)

_MATH = re.compile(r'<span class="math (inline|display)">\\[(\[](.*?)\\[)\]]</span>', re.S)
_KATEX = re.compile(r'<link[^>]*katex[^>]*>|<script[^>]*katex[^>]*></script>')

def mathml(html:str):
    "`html` with its TeX maths as MathML, which browsers draw with no script or network, and no KaTeX links"
    from html import unescape
    from latex2mathml.converter import convert
    def _one(m):
        try: return convert(unescape(m[2]), display='block' if m[1] == 'display' else 'inline')
        except Exception: return m[0]  # TeX latex2mathml cannot read stays as written
    return _KATEX.sub('', _MATH.sub(_one, html))

_QUARTO_ONLY = ('format commonmark is not built', 'format.html.keep-md is ignored', 'output-file is not read')

def render_docs(proc=None, dest=None, quiet:bool=True):
    "Render the processed notebooks in `proc` (default `_proc`) into `dest` (default `doc_path`); returns the `Site`"
    cfg = get_config() if proc is None or dest is None else None
    proj = load(proc or cfg.config_path/'_proc')
    proj.config.setdefault('project', {})['output-dir'] = str(Path(dest or cfg.doc_path).resolve())
    site = NbdevSite(proj, quiet=quiet)
    site.build()
    for page in site.pages.values():
        f = site.out/page.out
        html, files = extract_images(mathml(f.read_text()), f.stem)
        f.write_text(html)
        write_files(f.parent, files)
    site.warnings = [w for w in site.warnings if not any(q in w for q in _QUARTO_ONLY)]
    return site

_RAW_MD = re.compile(r'^[ \t]*(#{1,6}\s|```|\|?[ \t]*:?-{3,}:?[ \t]*(\||$)|!\[|:::|\{=html\}).*$', re.M)
_VOID = {'area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'link', 'meta', 'source', 'track', 'wbr'}
_INLINE = {'a', 'abbr', 'b', 'code', 'em', 'i', 'img', 'kbd', 'small', 'span', 'strong', 'sub', 'sup'}

class _Facts(HTMLParser):
    "Collect headings, code blocks, `show_doc` blocks, tables, pictures and visible text of a page"
    def __init__(self):
        super().__init__()
        self.stack, self.text, self.h = [], [], None
        self.facts = dict(title='', headings=[], code=0, api=0, tables=0, images=[])
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls, f = a.get('class') or '', self.facts
        if tag == 'img': f['images'].append(a.get('src') or '')
        if tag == 'table': f['tables'] += 1
        if tag == 'pre': f['code'] += 1
        if re.fullmatch(r'h[1-4]', tag):
            self.h = [tag, '']
            f['api'] += any('cell-output-markdown' in c for c in self.stack)  # nbdev's show_doc heading
        if tag not in _VOID: self.stack.append(cls + ' ' + tag)
        if tag not in _INLINE: self.text.append('\n')  # a block starts a new line of text
    def handle_endtag(self, tag):
        if tag in _VOID: return
        while self.stack and not self.stack.pop().endswith(' ' + tag): pass
        if self.h and tag == self.h[0]:
            self.facts['headings'].append((tag, ' '.join(self.h[1].split()))); self.h = None
    def handle_data(self, data):
        if self.h: self.h[1] += data
        if not any(s.endswith((' pre', ' code', ' script', ' style', ' title')) for s in self.stack):
            self.text.append(data)

def page_facts(html:str) -> dict:
    "Headings, code blocks, `show_doc` blocks (`api`), tables, pictures and raw Markdown lines of a page's `html`"
    p = _Facts()
    p.feed(html)
    f = p.facts
    f['title'] = next((t for h, t in f['headings'] if h == 'h1'), '')
    f['raw_markdown'] = [m.group(0).strip() for m in _RAW_MD.finditer(''.join(p.text))]
    return f

_MAGIC = (b'\x89PNG', b'\xff\xd8\xff', b'GIF8', b'<svg', b'<?xml')

def missing_images(srcs, page) -> list:
    "The picture sources in `srcs` that are not image files relative to the HTML file `page`"
    def _ok(src):
        if re.match(r'[a-z]+:', src): return False  # data: or remote pictures are not files of the site
        f = Path(page).parent/unquote(src.split('#')[0].split('?')[0])
        return f.is_file() and f.read_bytes()[:8].lstrip().startswith(_MAGIC)
    return [s for s in srcs if not _ok(s)]

def site_report(site) -> dict:
    "Count the pages and pictures of a rendered `site`, with the missing pictures and raw Markdown of each page"
    rep = dict(pages=0, images=0, missing={}, raw_markdown={}, warnings=list(site.warnings))
    for page in site.pages.values():
        f = site.out/page.out
        facts = page_facts(f.read_text())
        rep['pages'] += 1
        rep['images'] += len(facts['images'])
        if (miss := missing_images(facts['images'], f)): rep['missing'][str(page.out)] = miss
        if facts['raw_markdown']: rep['raw_markdown'][str(page.out)] = facts['raw_markdown']
    return rep

def rebase_link(href:str, base:str, stem:str='index'):
    "`href` of notebook `stem` as seen from README.md, for notebooks in the folder `base` (relative to the README)"
    if not base or re.match(r'[a-zA-Z][\w+.-]*:|[#/]', href) or href.startswith(f'{stem}_files/'): return href
    return f'{base}/{href}'

def readme_markdown(text:str, stem:str='index', base:str=''):
    "README Markdown for the processed notebook `text` in folder `base`; returns `(markdown, {picture path: bytes})`"
    nb = json.loads(text)
    first = nb['cells'][0] if nb['cells'] else {}
    front = split_front_matter(''.join(first.get('source', '')))[0] if first.get('cell_type') == 'raw' else {}
    body, files = notebook(text, {}, stem, Prose(lambda href: rebase_link(href, base, stem), {}), lambda s: s)
    head = [f"# {front['title']}"] if front.get('title') else []
    head += [f"> {' '.join(str(front['description']).split())}"] if front.get('description') else []
    return '\n\n'.join(head + [body.strip()]) + '\n', files

def make_readme(dest=None, nb=None):
    "Process `nb` (default `nbs/index.ipynb`) as nbdev does; write README.md and its pictures in `dest` (default: repo)"
    cfg = get_config()
    nb, dest = Path(nb or cfg.nbs_path/cfg.readme_nb).resolve(), Path(dest or cfg.config_path)
    with tempfile.TemporaryDirectory() as d:
        nbdev.serve_drv.main((nb, Path(d)/nb.name, FilterDefaults))  # front matter, hidden cells, show_doc
        base = nb.parent.relative_to(cfg.config_path).as_posix()  # links are relative to the README, not the notebook
        md, files = readme_markdown((Path(d)/nb.name).read_text(), nb.stem, base)
    (dest/'README.md').write_text(md)
    write_files(dest, files)
    return dest/'README.md'

def main(argv=None):
    "`python tools/docs.py [site|readme]`: render the site into `doc_path`, or write README.md; returns the exit status"
    p = argparse.ArgumentParser(prog='python tools/docs.py', description='Render the docs or README.md without Quarto')
    p.add_argument('what', nargs='?', default='site', choices=['site', 'readme'])
    what = p.parse_args(argv).what
    if what == 'readme':
        print(f'wrote {make_readme()}')
        return 0
    try: proc = proc_docs()
    except Exception as e:  # nbdev names the notebook and the cell
        print(f'nbdev could not process the notebooks: {e}\nIt runs the imports and show_doc cells of each notebook '
              '(and any cell that mixes imports with other code).', file=sys.stderr)
        return 1
    site = render_docs(proc)
    rep = site_report(site)
    for w in rep['warnings']: print(f'warning: {w}')
    print(f"{rep['pages']} pages, {rep['images']} images -> {site.out}")
    for k in ('missing', 'raw_markdown'):
        for page, v in rep[k].items(): print(f'{page}: {k.replace("_", " ")}: {v}')
    return int(bool(rep['missing'] or rep['raw_markdown']))

if __name__ == '__main__': raise SystemExit(main())
