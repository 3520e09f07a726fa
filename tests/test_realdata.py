"""The shipped models on real, hand-labelled micrographs (realdata/, never trained on) stay above floors a little
below what they scored when shipped (the model card's real-data table, pooled over each set): a retrained model that
transfers worse to real images fails here, however well it does on simulations."""
from pathlib import Path

import pytest
import torch

from temrf.infer import pretrained
from temrf.realdata import real_report

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
# set: (floor of the pooled dice, measured when shipped)
FLOORS = {'Au 2.2 nm': (0.65, 0.688), 'Au 5 nm': (0.85, 0.879), 'Au 10 nm': (0.75, 0.788), 'Ag 5 nm': (0.85, 0.893),
          'BF sintering': (0.88, 0.901)}
SOOT_CALLED_MAX = 0.05  # measured 0.027 with graphitic carbon left out; the right answer is 0


@pytest.fixture(scope='module')
def scores():
    n = torch.get_num_threads(); torch.set_num_threads(2)
    try: return real_report({'hr': pretrained('hr-au', 'cpu'), 'lr': pretrained('lr-au', 'cpu')}, REPO/'realdata')
    finally: torch.set_num_threads(n)


@pytest.mark.parametrize('name', list(FLOORS))
def test_dice_floor(scores, name):
    floor, measured = FLOORS[name]
    d = scores.loc[name, 'pooled_dice']
    assert d >= floor, f"{name}: pooled dice {d:.3f}, floor {floor} (shipped: {measured})"


def test_particle_free_image(scores):
    assert scores.loc['soot, no particles', 'called'] <= SOOT_CALLED_MAX


def test_above_fft_baseline(scores):
    "Above the study's Fourier-filtering baseline on every Au set and the Ag patch"
    for s in ('Au 2.2 nm', 'Au 5 nm', 'Au 10 nm', 'Ag 5 nm'): assert scores.loc[s, 'pooled_dice'] > scores.loc[s, 'base_pooled_dice'], s


def test_brightness_ramp(scores):
    "A +-20% ramp across each bright-field frame costs at most 0.02 pooled dice (measured 0.000)"
    assert abs(scores.loc['BF sintering, ±20% ramp', 'pooled_dice'] - scores.loc['BF sintering', 'pooled_dice']) <= 0.02


def test_graphite_check_quiet_on_metal():
    "The graphitic-carbon check fires on the soot image and on none of the Au and Ag images"
    from temrf.fft import GRAPHITE_PEAK, graphite_peak
    from temrf.realdata import load_real
    for r in load_real(REPO/'realdata', ['Au 2.2 nm', 'Au 5 nm', 'Au 10 nm', 'Ag 5 nm', 'soot, no particles']):
        assert (graphite_peak(r['image'], r['pixel_nm']) > GRAPHITE_PEAK) == r['set'].startswith('soot'), r['name']
