"""House rules, checked on the source (AST): modules import only from notebooks before their own and no private
names of another module; one-line docstrings of at most 75 characters; functions of at most 35 lines; lines of at
most 140 characters; notebook summaries (the `>` line that becomes a module's docstring) of at most 100 characters."""
import ast, inspect, json, re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(p for p in (ROOT/'temrf').glob('*.py') if p.name not in ('__init__.py', '_modidx.py'))


def notebook_of(py):
    "The notebook `py` is exported from, by its header"
    m = re.search(r'File to edit: \.\./nbs/(\S+\.ipynb)', py.read_text())
    return m and Path(m[1])


def order(py):
    "Where module `py` stands in the story: its notebook's number and letter"
    return re.match(r'(\d+[a-z]?)_', notebook_of(py).name)[1]


def temrf_imports(tree):
    "(line, module, names) of each import of a temrf module in `tree`"
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom) and (n.level == 1 or (n.module or '').startswith('temrf.')):
            mod = (n.module or '').removeprefix('temrf.')
            if mod and mod != 'temrf': yield n.lineno, mod.split('.')[0], [a.name for a in n.names]


@pytest.mark.parametrize('py', MODULES, ids=lambda p: p.name)
def test_no_upward_or_private_import(py):
    bad = []
    for line, mod, names in temrf_imports(ast.parse(py.read_text())):
        target = ROOT/'temrf'/f'{mod}.py'
        if not target.exists(): continue
        if order(target) > order(py): bad.append(f'{py.name}:{line} imports {mod} (notebook {notebook_of(target)}), which comes later')
        bad += [f'{py.name}:{line} imports private {mod}.{n}' for n in names if n.startswith('_')]
    assert bad == []


def functions(tree):
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)): yield n


@pytest.mark.parametrize('py', MODULES, ids=lambda p: p.name)
def test_short_functions_and_docstrings(py):
    src = py.read_text()
    bad = [f'{py.name}:{i} is {len(l)} characters' for i, l in enumerate(src.splitlines(), 1) if len(l) > 140]
    for n in functions(ast.parse(src)):
        if not isinstance(n, ast.ClassDef) and n.end_lineno - n.lineno + 1 > 35: bad.append(f'{py.name}:{n.lineno} {n.name} has {n.end_lineno - n.lineno + 1} lines')
        d = ast.get_docstring(n, clean=False)
        if d and ('\n' in d or len(d) > 75): bad.append(f'{py.name}:{n.lineno} {n.name} docstring: {len(d)} characters or several lines')
    assert bad == []


NOTEBOOKS = sorted((ROOT/'nbs').rglob('*.ipynb'))


@pytest.mark.parametrize('nb', NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT/'nbs')))
def test_notebook_summary(nb):
    first = ''.join(json.loads(nb.read_text())['cells'][0]['source'])
    summary = next((l[1:].strip() for l in first.splitlines() if l.startswith('>')), None)
    assert summary and len(summary) <= 100, f'{nb.name}: summary of {len(summary or "")} characters: {summary!r}'


def test_the_rules_catch(tmp_path):
    "The checks find what they look for"
    tree = ast.parse('def f():\n    "' + 'x'*80 + '"\n' + '    pass\n'*40)
    n = next(functions(tree))
    assert n.end_lineno - n.lineno + 1 > 35 and len(ast.get_docstring(n)) > 75
    assert list(temrf_imports(ast.parse('from .io import _TMP\nfrom temrf.files import read_micrograph'))) == [(1, 'io', ['_TMP']), (2, 'files', ['read_micrograph'])]


USER_FUNCTIONS = ('temrf.infer:segment', 'temrf.particles:measure', 'temrf.advice:suggest_rf', 'temrf.shipped:pretrained',
                  'temrf.files:read_micrograph', 'temrf.sim:simulate_dataset', 'temrf.rf:rf_table', 'temrf.rf:nearest_architectures',
                  'temrf.finetune:finetune')


@pytest.mark.parametrize('target', USER_FUNCTIONS)
def test_user_functions_document_every_parameter(target):
    "The functions a user calls first say what each parameter is (docments, shown by show_doc and help)"
    import importlib
    from fastcore.docments import docments
    mod, name = target.split(':')
    f = getattr(importlib.import_module(mod), name)
    params = [k for k, q in inspect.signature(f).parameters.items() if q.kind is not q.VAR_KEYWORD]  # docments skips **kwargs
    d = docments(f, full=True)
    assert [k for k in params if not d[k]['docment']] == []
