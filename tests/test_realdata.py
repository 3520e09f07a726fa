"""The shipped models on real, hand-labelled micrographs (realdata/, never trained on) stay above floors a little
below what they scored when shipped (the model card's real-data table): a retrained model that transfers worse to real
images fails here, however well it does on simulations."""
from pathlib import Path

import pytest
import torch

from temrf.infer import pretrained
from temrf.realdata import score_real

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
# set: (floor of the mean hard dice, measured 2026-12-05)
FLOORS = {'Au 2.2 nm': (0.50, 0.528), 'Au 5 nm': (0.76, 0.808), 'Au 10 nm': (0.55, 0.592), 'Ag 5 nm': (0.85, 0.893),
          'BF sintering': (0.88, 0.901)}
SOOT_CALLED_MAX = 0.55  # measured 0.472; the right answer is 0


@pytest.fixture(scope='module')
def scores():
    n = torch.get_num_threads(); torch.set_num_threads(2)
    try: df = score_real({'hr': pretrained('hr-au', 'cpu'), 'lr': pretrained('lr-au', 'cpu')}, REPO/'realdata')
    finally: torch.set_num_threads(n)
    return df.groupby('set')[['dice', 'fft_dice', 'called']].mean()


@pytest.mark.parametrize('name', list(FLOORS))
def test_dice_floor(scores, name):
    floor, measured = FLOORS[name]
    assert scores.loc[name, 'dice'] >= floor, f"{name}: mean hard dice {scores.loc[name, 'dice']:.3f}, floor {floor} (shipped: {measured})"


def test_particle_free_image(scores):
    assert scores.loc['soot, no particles', 'called'] <= SOOT_CALLED_MAX


def test_above_fft_baseline_where_it_was(scores):
    "Above the study's Fourier-filtering baseline on the 2.2 and 5 nm Au sets and the Ag patch"
    for s in ('Au 2.2 nm', 'Au 5 nm', 'Ag 5 nm'): assert scores.loc[s, 'dice'] > scores.loc[s, 'fft_dice'], s
