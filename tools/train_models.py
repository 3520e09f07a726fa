"""Build and measure temrf's shipped models (a developer's tool; the recipes themselves are in temrf.recipes).

    python tools/train_models.py lr --root DIR          # lr-au's training set and training (temrf.recipes.train_lr)
    python tools/train_models.py hr --root DIR          # hr-au's four stages of fields and three training steps (train_hr)
    python tools/train_models.py ship hr-au=RUN lr-au=RUN --root DIR   # copy run folders into temrf/models/, records to models.json
    python tools/train_models.py compare MODEL... --root DIR           # HR models on the real sets (and hr-indep, if simulated)
    python tools/train_models.py indep --root DIR       # simulate hr-indep, the independent held-out HR set
    python tools/train_models.py heldout --root DIR     # the model card's held-out fields (each size at each contrast level)
    python tools/train_models.py card --root DIR        # dice on them -> nbs/results/model_card.csv
    python tools/train_models.py card2 --root DIR       # real_card.csv (and indep_card.csv), real_overlays.jpg
"""
import argparse, json, time
from pathlib import Path
import numpy as np
from temrf.io import PIXEL_NM
from temrf.sim import sim_params, simulate_field, CONTRAST_LEVELS
from temrf.contrast import contrast_figure
from temrf.files import save_h5_pair, load_h5_pair, read_h5_attrs
from temrf.model import load_weights, save_weights

REPO = Path(__file__).resolve().parents[1]
SIZE = 1024
KINDS = {'hr-au': 'hr', 'lr-au': 'lr'}
# The model card's held-out fields: each particle size at each contrast level, with the earlier (study-like) physics
HELD_OUT = {'hr': dict(diameters=(2.2, 5., 9.), levels=range(1, 7), n=2),
            'lr': dict(diameters=(8., 15., 25.), levels=range(1, 4), n=2)}
LR_LEVELS = ((10., 40.), (20., 16.), (40., 6.))  # (support_nm, dose): lr contrast levels 1 (high) .. 3 (low)

def hr_knobs_v1(rng, level=None, diameter=None):
    "Physics of one varied HR field: contrast level (support, dose, zone knobs), optics, structures."
    level = level or int(rng.integers(1, 7))
    support, dose, kw = CONTRAST_LEVELS[level-1]
    return level, dict(diameter_nm=diameter or float(np.exp(rng.uniform(np.log(2), np.log(10)))),
        support_nm=support, dose=dose*rng.uniform(.7, 1.4), defocus_nm=rng.uniform(-16, 0), focal_spread_nm=rng.uniform(1, 4),
        image_spread_nm=rng.uniform(.02, .06), mtf_px=rng.uniform(.3, .8), carbon_density=rng.uniform(1.8, 2.2),
        coverage=rng.uniform(.2, .45), **{'zone_fraction': rng.uniform(.3, 1), 'tilt_deg': rng.uniform(2, 8), **kw})

def lr_knobs(rng, level=None, diameter=None):
    "Physics of one varied low-res field: support thickness and dose level, blur, particle size."
    level = level or int(rng.integers(1, 4))
    support, dose = LR_LEVELS[level-1]
    return level, dict(diameter_nm=diameter or float(rng.uniform(5, 30)), support_nm=support*rng.uniform(.8, 1.25),
        dose=dose*rng.uniform(.7, 1.4), blur_px=rng.uniform(1, 2), mtf_px=rng.uniform(.3, .8), coverage=rng.uniform(.15, .35))

def field(kind, seed, level=None, diameter=None):
    "One simulated field: (image, label, info with the knobs)."
    rng = np.random.default_rng([seed, 77])
    level, kw = (hr_knobs_v1 if kind == 'hr' else lr_knobs)(rng, level, diameter)
    d = kw.pop('diameter_nm')
    p = sim_params(kind, d, 1, SIZE, seed=seed, patch=512, **kw)
    img, lbl, info = simulate_field(p, 0)
    return img, lbl, dict(info, level=level, diameter_nm=d, **{k: v for k, v in kw.items() if not isinstance(v, dict)})

INDEP = dict(dose=423., defocus_nm=0., defocus_spread_nm=5., cs_um=-15., support_nm=3., carbon_density=2.4, focal_spread_nm=10.,
             zone_fraction=0.6, tilt_deg=4., coverage=0.3)  # density and focal spread outside the training ranges

def indep(root):
    "hr-indep: 12 fields of 1024 px, four per size, with settings outside hr-au's training ranges (INDEP)"
    from multiprocessing import Pool
    folder = root/'hr-indep'
    if folder.exists(): return
    with Pool(2) as pool: fields = pool.map(_indep, [(d, i) for d in (2.2, 5., 10.) for i in range(4)], chunksize=1)
    imgs, lbls, infos = map(list, zip(*fields))
    save_h5_pair(np.stack(imgs), np.stack(lbls), folder/'Au_hr_indep_Images.h5', folder/'Au_hr_indep_Labels.h5',
                 attrs=dict(kind='hr', pixel_nm=PIXEL_NM['hr'], images=infos), overwrite=True)

def _indep(args):
    d, i = args
    img, lbl, info = simulate_field(sim_params('hr', d, 1, 1024, seed=90000 + 10*int(d*10) + i, patch=512, **INDEP), 0)
    return img, lbl, dict(diameter_nm=d, defocus_nm=info['defocus_nm'])

def write_set(folder, kind, fields):
    "Save `fields` as a study-layout HDF5 pair in `folder`."
    imgs, lbls, infos = map(list, zip(*fields))
    imgs, lbls = np.stack(imgs), np.stack(lbls)
    attrs = dict(kind=kind, pixel_nm=PIXEL_NM[kind], contrast=round(contrast_figure(imgs, lbls), 4), images=infos)
    save_h5_pair(imgs, lbls, folder/f'Au_{kind}_varied_Images.h5', folder/f'Au_{kind}_varied_Labels.h5', attrs=attrs, overwrite=True)

def _held(args): return field(*args)

def heldout(root):
    "Only the held-out fields of the model card (every particle size at every contrast level), two processes"
    from multiprocessing import Pool
    for kind in ('hr', 'lr'):
        h = HELD_OUT[kind]
        if (root/f'{kind}-heldout').exists(): continue
        jobs = [(kind, 5000 + 100*j + i, lvl, d) for j, (d, lvl) in enumerate((d, l) for d in h['diameters'] for l in h['levels']) for i in range(h['n'])]
        with Pool(2) as pool: write_set(root/f'{kind}-heldout', kind, pool.map(_held, jobs, chunksize=1))

def card(root):
    import pandas as pd
    from temrf.infer import pretrained, segment
    from temrf.metrics import dice_from_probs
    from temrf.fft import fft_baseline_dice, band_from_spacings, AU_SPACINGS_A
    from temrf.preprocess import standardize
    import torch
    rows = []
    for name, kind in KINDS.items():
        imgs, lbls = load_h5_pair(*sorted((root/f'{kind}-heldout').glob('*.h5')))
        infos = read_h5_attrs(next((root/f'{kind}-heldout').glob('*_Images.h5')))['images']
        probs = segment(pretrained(name), imgs, progress=False)
        dice = dice_from_probs(torch.as_tensor(probs), torch.as_tensor(lbls), hard=True).numpy()
        if kind == 'hr':
            X = np.stack([standardize(i) for i in imgs])
            fft = fft_baseline_dice(X, lbls, *band_from_spacings(AU_SPACINGS_A, PIXEL_NM[kind], SIZE))
        else: fft = np.full(len(imgs), np.nan)
        for i, info in enumerate(infos):
            rows.append(dict(model=name, diameter_nm=info['diameter_nm'], level=info['level'],
                             contrast=round(contrast_figure(imgs[i:i+1], lbls[i:i+1]), 4), dice=float(dice[i]), fft_dice=float(fft[i])))
    df = pd.DataFrame(rows)
    df.to_csv(REPO/'nbs/results/model_card.csv', index=False)
    print(df.groupby(['model', 'diameter_nm', 'level'])[['contrast', 'dice', 'fft_dice']].mean().round(3).to_string())

def indep_scores(root, model):
    "Hard dice of `model` and of the FFT baseline on each field of the independent held-out set hr-indep"
    import torch
    from temrf.infer import pretrained, segment
    from temrf.metrics import mask_dice
    from temrf.fft import fft_baseline_dice, band_from_spacings
    from temrf.preprocess import standardize
    imgs, lbls = load_h5_pair(*sorted((root/'hr-indep').glob('*.h5')))
    infos = read_h5_attrs(next((root/'hr-indep').glob('*_Images.h5')))['images']
    m = pretrained(model, 'cpu')
    dice = mask_dice(segment(m, imgs, progress=False) > 0.5, lbls)
    fft = fft_baseline_dice(np.stack([standardize(i) for i in imgs]), lbls, *band_from_spacings(pixel_nm='hr', size=imgs.shape[-1]))
    return [dict(model=str(model), set=f"indep {info['diameter_nm']:g} nm", dice=float(d), fft_dice=float(f)) for info, d, f in zip(infos, dice, fft)]

def compare(root, models):
    "Pooled dice per real set and mean dice per independent held-out size of each HR model in `models` (names or run folders)"
    import pandas as pd, torch
    from temrf.infer import pretrained
    from temrf.realdata import real_predictions, real_table, REAL_SETS
    torch.set_num_threads(2)
    rows = []
    for m in models:
        df = real_table(real_predictions({'hr': pretrained(m, 'cpu')}, REPO/'realdata', [k for k, v in REAL_SETS.items() if v[3] == 'hr']))
        rows += [dict(model=m, set=s, dice=r.pooled_dice, fft_dice=r.get('base_pooled_dice'), called=r.called) for s, r in df.iterrows()]
        if (root/'hr-indep').exists(): rows += indep_scores(root, m)
    t = pd.DataFrame(rows).groupby(['model', 'set'], sort=False)[['dice', 'fft_dice', 'called']].mean().round(3)
    print(t.to_string())
    return t

RECIPE = {'hr-au': 'temrf.recipes.train_hr', 'lr-au': 'temrf.recipes.train_lr'}
ABOUT = {'hr-au': 'high-resolution TEM of Au (fcc) particles on amorphous carbon, ~0.02 nm/px',
         'lr-au': 'low-resolution (amplitude contrast) TEM of Au particles on carbon, ~0.12 nm/px'}

def ship(root, runs):
    "Copy the run folders `runs` ('hr-au=FOLDER', 'lr-au=FOLDER') into temrf/models/ and their records into models.json"
    recs = json.loads((REPO/'nbs/results/models.json').read_text())
    for item in runs:
        name, folder = item.split('=', 1)
        rec = json.loads((Path(folder)/'record.json').read_text())
        m = load_weights(Path(folder)/'model.pth')  # the file says its kind, pixel size and preparation; add its recipe
        m.info.update(recipe=RECIPE[name], about=ABOUT[name])
        save_weights(m, REPO/'temrf/models'/f'{name}.pth')
        recs[name] = {k: v for k, v in rec.items() if k not in ('run_dir', 'dataset')}
        print(name, '<-', folder, {k: rec[k] for k in ('arch', 'n_params', 'test_hard_dice', 'n_train', 'train_time_s')})
    (REPO/'nbs/results/models.json').write_text(json.dumps(recs, indent=1))

def card2(root):
    "The model card's real-data table (and, where hr-indep was simulated, the independent one) and the real overlays"
    import pandas as pd, torch, subprocess, sys
    from temrf.infer import pretrained
    from temrf.realdata import real_report
    torch.set_num_threads(2)
    tab = real_report({'hr': pretrained('hr-au', 'cpu'), 'lr': pretrained('lr-au', 'cpu')}, REPO/'realdata')
    tab.drop(columns='model').round(4).to_csv(REPO/'nbs/results/real_card.csv', index_label='set')
    if (root/'hr-indep').exists(): pd.DataFrame(indep_scores(root, 'hr-au')).round(4).to_csv(REPO/'nbs/results/indep_card.csv', index=False)
    subprocess.run([sys.executable, str(REPO/'benchmarks/real.py'), '--figures', str(REPO/'nbs/images')], check=True)

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('step', choices=('lr', 'hr', 'ship', 'compare', 'indep', 'heldout', 'card', 'card2'))
    ap.add_argument('names', nargs='*', help="run folders to ship ('hr-au=RUN') or models to compare")
    ap.add_argument('--root', default=str(Path('~/.cache/temrf/models').expanduser()))
    a = ap.parse_args()
    root = Path(a.root); root.mkdir(parents=True, exist_ok=True)
    from temrf.recipes import train_hr, train_lr
    if a.step in ('lr', 'hr'): print((train_lr if a.step == 'lr' else train_hr)(root))
    elif a.step == 'compare': compare(root, a.names)
    elif a.step == 'ship': ship(root, a.names)
    else: dict(indep=indep, heldout=heldout, card=card, card2=card2)[a.step](root)
