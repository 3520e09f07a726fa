"Every notebook has a docs page of its own: nbdev names a page after the notebook's file name without its number"
import re
from collections import Counter
from pathlib import Path

NBS = Path(__file__).resolve().parents[1]/'nbs'


def page_name(nb):
    "The page nbdev makes of notebook `nb`: its stem without the leading number and underscore"
    return re.sub(r'^\d+[a-z]?_', '', nb.stem)


def test_page_names_differ():
    names = Counter(page_name(nb) for nb in NBS.rglob('*.ipynb') if '.ipynb_checkpoints' not in nb.parts)
    assert [n for n, k in names.items() if k > 1] == []


def test_page_name():
    assert [page_name(Path(p)) for p in ('02_sim_hr.ipynb', '02c_sim.ipynb', '16c_recipes.ipynb', 'index.ipynb')] == ['sim_hr', 'sim', 'recipes', 'index']
