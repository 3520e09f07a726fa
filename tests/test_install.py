"temrf imports without torchvision or fastai.vision, and its console command is installed"
import os, pkgutil, shutil, subprocess, sys, textwrap
from pathlib import Path
import pytest
import temrf

import importlib.util
EXTRA = {'temrf.napari_plugin': 'napari'}  # modules of an optional extra: checked only where the extra is installed
MODULES = sorted(m.name for m in pkgutil.iter_modules(temrf.__path__, 'temrf.') if not m.name.endswith('_modidx')
                 and (m.name not in EXTRA or importlib.util.find_spec(EXTRA[m.name])))

BLOCKER = textwrap.dedent('''
    import sys, importlib.abc
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == 'torchvision' or name.startswith(('torchvision.', 'fastai.vision')):
                raise ImportError(f'{name} is blocked in this test')
    sys.meta_path.insert(0, Block())
''')

@pytest.mark.slow
def test_modules_import_without_torchvision():
    code = BLOCKER + textwrap.dedent(f'''
        import importlib
        for m in {MODULES!r}: importlib.import_module(m)
        bad = [m for m in sys.modules if m.startswith(('torchvision', 'fastai.vision'))]
        assert not bad, bad
        print(len({MODULES!r}))
    ''')
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert int(r.stdout.split()[-1]) == len(MODULES) >= 2

def test_console_command():
    exe = Path(sys.executable).parent/'temrf'
    cmd = [str(exe)] if exe.exists() else [sys.executable, '-m', 'temrf.cli']
    r = subprocess.run(cmd + ['--help'], capture_output=True, text=True)
    assert r.returncode == 0 and 'usage: temrf' in r.stdout, r.stderr
    r = subprocess.run(cmd + ['nosuch'], capture_output=True, text=True)
    assert r.returncode == 1 and "unknown command 'nosuch'" in r.stderr
