"temrf.analysis end to end: `temrf report` on a results table, and on a sweep folder with run folders of tiny untrained models"
import json
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
import torch

import temrf.analysis as ta
from temrf.cli import main
from temrf.model import Arch, ResUNet, save_weights

FIXTURE = Path(__file__).parent/'fixtures'/'results_fixture.csv'  # fabricated numbers: mechanics only


def test_report_cli_on_table(tmp_path, capsys):
    assert main(['report', str(FIXTURE), '--out', str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ['dice_vs_rf.png', 'summary.csv', 'summary.md']
    assert str(tmp_path) in capsys.readouterr().out
    s = pd.read_csv(tmp_path/'summary.csv')
    df = pd.read_csv(FIXTURE)
    g = df[(df.dataset == 'fixture-lr') & (df.arch == 'm88')].test_hard_dice
    row = s[(s.dataset == 'fixture-lr') & (s.arch == 'm88')].iloc[0]
    assert row.dice_mean == pytest.approx(g.mean()) and row.dice_std == pytest.approx(np.std(g, ddof=1))
    assert row.n_seeds == 3 and row.rf_px == 392


def test_report_cli_errors(tmp_path, capsys):
    assert main(['report', str(tmp_path/'none.csv')]) == 1
    assert 'not found' in capsys.readouterr().err
    pd.DataFrame(dict(dataset=['a'], arch=['m22'])).to_csv(tmp_path/'results.csv', index=False)
    assert main(['report', str(tmp_path)]) == 1
    assert 'lacks column(s) n_blocks, seed, rf_nm, test_hard_dice' in capsys.readouterr().err


def _run(folder, pools, dilations=None, seed=0):
    "A run folder of an untrained ResUNet (fixture, not a result)"
    torch.manual_seed(seed)
    folder.mkdir(parents=True)
    save_weights(ResUNet(Arch(pools, dilations, n_blocks=2)), folder/'model.pth')
    rf = Arch(pools, dilations, n_blocks=2).rf
    arch = 'm' + ''.join(map(str, pools)) + ('-d' + ''.join(map(str, dilations)) if dilations else '')
    rec = dict(run_id=folder.name, dataset='fixture-hr', arch=arch, n_blocks=2, pools=pools, dilations=dilations,
               pool='max', kernel=3, seed=seed, patch=64, pixel_nm=0.0215, rf_px=rf, rf_nm=rf*0.0215, n_params=8074,
               test_hard_dice=0.5, test_soft_dice=0.5, fft_dice=0.4, run_dir=f'/elsewhere/{folder.name}')
    (folder/'record.json').write_text(json.dumps(rec))


@pytest.mark.slow
def test_report_with_run_folders(tmp_path, monkeypatch):
    "A sweep folder moved from where it ran (run_dir points elsewhere): runs are found under runs/, all figures written"
    for pools, dil in (([2, 2], None), ([4, 4], None), ([8, 8], None), ([2, 2], [1, 2, 4])):
        _run(tmp_path/'runs'/('m' + ''.join(map(str, pools)) + ('-d124' if dil else '')), pools, dil)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 64, 64)).astype(np.float32)
    Y = (np.hypot(*np.mgrid[-32:32, -32:32]) < 20)[None].repeat(3, 0).astype(np.uint8)
    monkeypatch.setattr(ta, 'run_test_data', lambda rec, n=None, unique=True, data_dir=None: (X, Y))
    df = ta.load_results(tmp_path)  # from the records: no results.csv yet
    assert df.run_path.notna().all() and sorted(df.pools) == ['2,2', '2,2', '4,4', '8,8']
    out = ta.report_cmd(str(tmp_path))
    assert out == tmp_path/'report'
    assert {p.name for p in out.iterdir()} == {'summary.csv', 'summary.md', 'dice_vs_rf.png', 'examples.png', 'missed.png',
        'missed_similarity.csv', 'erf.png', 'erf.csv', 'pool_vs_dilation.png', 'pool_vs_dilation.csv'}
    erf = pd.read_csv(out/'erf.csv')
    assert erf.arch.tolist() == ['m22', 'm44', 'm88'] and erf.rf_px.tolist() == [44, 120, 392]
    missed = pd.read_csv(out/'missed_similarity.csv')
    assert len(missed) == 3 and missed.iloc[:, 1:4].apply(lambda c: c.between(0, 1)).all().all()
