"""Train temrf's shipped models on widely varied simulated fields, then measure them on held-out fields.

    python tools/train_models.py data  [--root DIR]   # simulate the training and held-out fields
    python tools/train_models.py train [--root DIR]   # train 'hr-au' and 'lr-au', copy weights into temrf/models/
    python tools/train_models.py card  [--root DIR]   # dice per particle size and contrast level -> nbs/results/model_card.csv

The shipped models of 2026-12-05 come from the transfer recipe, built for real micrographs:
    python tools/train_models.py data2 --root DIR       # lr-transfer, hr-transfer (widely varied physics, file artefacts), hr-indep
    python tools/train_models.py data3 --root DIR       # hr-transfer2: hr-transfer and fields whose support has holes
    python tools/train_models.py data4 --root DIR       # hr-transfer3: hr-transfer2 and fields with carbon onions (soot)
    python tools/train_models.py data5 --root DIR       # hr-transfer4: hr-transfer3 and fields where thick carbon absorbs
    python tools/train_models.py train2 hr2-n3 lr-n2 --root DIR   # candidates (one thread each: run several side by side)
    python tools/train_models.py compare hr-au RUN... --root DIR  # real sets (realdata/) and hr-indep, per model
    python tools/train_models.py train2 hr3-n3 --root DIR  # then hr4-n3: fine-tuned from hr2-n3, then from hr3-n3
    python tools/train_models.py ship hr-au=RUN lr-au=RUN --root DIR
    python tools/train_models.py card2 --root DIR       # real_card.csv, indep_card.csv, real_overlays.png
"""
import argparse, json, shutil, time
from pathlib import Path
import numpy as np
from temrf.io import PIXEL_NM
from temrf.sim import sim_params, simulate_field, CONTRAST_LEVELS
from temrf.contrast import contrast_figure
from temrf.io import save_h5_pair, load_h5_pair, read_h5_attrs

REPO = Path(__file__).resolve().parents[1]
SIZE = 1024
# Architectures chosen from the contrast experiment: N=2 with RF 5.0 nm (m84) is best at low HR contrast; low-res data
# is flat in RF, so the lr model takes N=2 m44 (RF 120 px = 14.9 nm), already beyond the particle edge.
MODELS = {'hr-au': dict(kind='hr', n_blocks=2, pools=(8, 4)), 'lr-au': dict(kind='lr', n_blocks=2, pools=(4, 4))}
TRAIN = dict(epochs=4, bs=8, lr=1e-2, one_cycle=True, patch=512, seed=752)
N_TRAIN = {'hr': 40, 'lr': 48}
HELD_OUT = {'hr': dict(diameters=(2.2, 5., 9.), levels=range(1, 7), n=2),
            'lr': dict(diameters=(8., 15., 25.), levels=range(1, 4), n=2)}
LR_LEVELS = ((10., 40.), (20., 16.), (40., 6.))  # (support_nm, dose): lr contrast levels 1 (high) .. 3 (low)

def hr_knobs(rng, level=None, diameter=None):
    "Physics of one varied HR field, drawn from ranges wider than any one microscope's (level: an index of the draw)"
    if level is not None or diameter is not None: return hr_knobs_v1(rng, level, diameter)
    corrected = rng.random() < 0.7
    kw = dict(diameter_nm=float(np.exp(rng.uniform(np.log(1.8), np.log(11)))),
        support_nm=float(np.exp(rng.uniform(np.log(1.5), np.log(12)))), carbon_density=rng.uniform(1.6, 2.3),
        dose=float(np.exp(rng.uniform(np.log(30), np.log(4000)))),
        defocus_nm=rng.uniform(-90, 25), defocus_spread_nm=0., focal_spread_nm=rng.uniform(2, 8),
        cs_um=rng.uniform(-30, 30) if corrected else rng.uniform(500, 1300),
        astigmatism_nm=rng.uniform(0, 5), astigmatism_deg=rng.uniform(0, 180),
        coma_nm=rng.uniform(0, 150), coma_deg=rng.uniform(0, 360),
        image_spread_nm=rng.uniform(.02, .08), mtf_px=rng.uniform(.3, 1.), coverage=rng.uniform(.1, .45),
        zone_fraction=rng.uniform(.1, .8), tilt_deg=rng.uniform(2, 15))
    if rng.random() < 0.12: kw['coverage'] = 0.  # hard negatives: carbon alone
    return 0, kw

def hr_knobs_v1(rng, level=None, diameter=None):
    "Physics of one varied HR field: contrast level (support, dose, zone knobs), optics, structures."
    level = level or int(rng.integers(1, 7))
    support, dose, kw = CONTRAST_LEVELS[level-1]
    return level, dict(diameter_nm=diameter or float(np.exp(rng.uniform(np.log(2), np.log(10)))),
        support_nm=support, dose=dose*rng.uniform(.7, 1.4), defocus_nm=rng.uniform(-16, 0), focal_spread_nm=rng.uniform(1, 4),
        image_spread_nm=rng.uniform(.02, .06), mtf_px=rng.uniform(.3, .8), carbon_density=rng.uniform(1.8, 2.2),
        coverage=rng.uniform(.2, .45), **{'zone_fraction': rng.uniform(.3, 1), 'tilt_deg': rng.uniform(2, 8), **kw})

def lr_knobs_v2(rng):
    "Physics of one varied low-res field: particles from 2.5 nm, thin to thick support, low to moderate dose"
    return 0, dict(diameter_nm=float(np.exp(rng.uniform(np.log(2.5), np.log(30)))), support_nm=float(np.exp(rng.uniform(np.log(5), np.log(50)))),
        dose=float(np.exp(rng.uniform(np.log(4), np.log(80)))), blur_px=rng.uniform(.5, 2.5), mtf_px=rng.uniform(.3, 1.),
        coverage=rng.uniform(.05, .4) if rng.random() > .1 else 0.)

def lr_knobs(rng, level=None, diameter=None):
    "Physics of one varied low-res field: support thickness and dose level, blur, particle size."
    level = level or int(rng.integers(1, 4))
    support, dose = LR_LEVELS[level-1]
    return level, dict(diameter_nm=diameter or float(rng.uniform(5, 30)), support_nm=support*rng.uniform(.8, 1.25),
        dose=dose*rng.uniform(.7, 1.4), blur_px=rng.uniform(1, 2), mtf_px=rng.uniform(.3, .8), coverage=rng.uniform(.15, .35))

def field(kind, seed, level=None, diameter=None):
    "One simulated field: (image, label, info with the knobs)."
    rng = np.random.default_rng([seed, 77])
    level, kw = (hr_knobs if kind == 'hr' else lr_knobs)(rng, level, diameter)
    d = kw.pop('diameter_nm')
    p = sim_params(kind, d, 1, SIZE, seed=seed, patch=512, **kw)
    img, lbl, info = simulate_field(p, 0)
    return img, lbl, dict(info, level=level, diameter_nm=d, **{k: v for k, v in kw.items() if not isinstance(v, dict)})

def transfer_field(kind, seed, holes=False, onions=False, absorb=False):
    "512 px patches of one widely varied field (1024 px for particles of 5 nm and more), half of them as a user's file"
    from temrf.preprocess import file_artifacts
    rng = np.random.default_rng([seed, 78])
    _, kw = hr_knobs(rng) if kind == 'hr' else lr_knobs_v2(rng)
    if holes: kw.update(holes=rng.uniform(.15, .5), **({'coverage': 0.} if rng.random() < .25 else {}))  # vacuum in the support
    if onions:  # soot: carbon onions, alone (40%) or beside particles, on carbon or over holes
        kw.update(onions=rng.uniform(.25, .8), holes=rng.uniform(0, .5) if rng.random() < .5 else 0., **({'coverage': 0.} if rng.random() < .4 else {}))
    if absorb: kw['absorption_nm'] = float(np.exp(rng.uniform(np.log(30), np.log(200))))  # thick carbon darker than vacuum
    d = kw.pop('diameter_nm')
    size = 1024 if kind == 'hr' and d >= 5 else 512
    if kw['coverage'] == 0: d = min(d, 4.)
    img, lbl, info = simulate_field(sim_params(kind, d, 1, size, seed=seed, patch=512, **kw), 0)
    out = []
    for y in range(0, size, 512):
        for x in range(0, size, 512):
            im, lb = img[y:y+512, x:x+512], lbl[y:y+512, x:x+512]
            if im.std() == 0: continue
            if rng.random() < 0.5: im = file_artifacts(im, rng, 4.5 if kind == 'hr' else 2.5)
            out.append((im.astype(np.float32), lb, dict(diameter_nm=d, **{k: float(v) for k, v in kw.items() if not isinstance(v, dict)})))
    return out

def _transfer(args): return transfer_field(*args)

def extend_set(root, src, dst, jobs):
    "`dst`: the HR transfer set `src` and the patches of the fields `jobs` (`transfer_field` arguments), simulated two at a time"
    from multiprocessing import Pool
    folder = root/dst
    if folder.exists(): return
    t = time.time()
    with Pool(2) as pool: fields = [f for fs in pool.map(_transfer, jobs, chunksize=1) for f in fs]
    imgs, lbls, infos = map(list, zip(*fields))
    old = load_h5_pair(*sorted((root/src).glob('*.h5')))
    infos = read_h5_attrs(next((root/src).glob('*_Images.h5')))['images'] + infos
    stem = dst.replace('-', '_')
    save_h5_pair(np.concatenate([old[0], np.stack(imgs)]), np.concatenate([old[1], np.stack(lbls)]), folder/f'Au_{stem}_Images.h5',
                 folder/f'Au_{stem}_Labels.h5', attrs=dict(kind='hr', pixel_nm=PIXEL_NM['hr'], keep_background=True, images=infos), overwrite=True)
    print(dst, len(imgs), 'new patches', round(time.time() - t, 1), 's', flush=True)

def data3(root, n=70):
    "hr-transfer2: hr-transfer and `n` more fields whose support has holes (vacuum), a quarter of them without particles"
    extend_set(root, 'hr-transfer', 'hr-transfer2', [('hr', 40000 + i, True) for i in range(n)])

def data4(root, n=60):
    "hr-transfer3: hr-transfer2 and `n` more fields with carbon onions (soot), hard negatives with graphitic fringes"
    extend_set(root, 'hr-transfer2', 'hr-transfer3', [('hr', 60000 + i, False, True) for i in range(n)])

def data5(root, n=90):
    "hr-transfer4: hr-transfer3 and `n` more fields with absorption: soot and holes (two thirds), particles over holes"
    extend_set(root, 'hr-transfer3', 'hr-transfer4', [('hr', 70000 + i, True, i % 3 != 2, True) for i in range(n)])

def data2(root, n_hr=110, n_lr=160):
    "The transfer training sets (hr-transfer, lr-transfer) and the independent held-out HR set (hr-indep)"
    from multiprocessing import Pool
    for kind, n in (('lr', n_lr), ('hr', n_hr)):
        folder = root/f'{kind}-transfer'
        if folder.exists(): continue
        t = time.time()
        with Pool(2) as pool: fields = [f for fs in pool.map(_transfer, [(kind, 20000 + i) for i in range(n)], chunksize=1) for f in fs]
        imgs, lbls, infos = map(list, zip(*fields))
        save_h5_pair(np.stack(imgs), np.stack(lbls), folder/f'Au_{kind}_transfer_Images.h5', folder/f'Au_{kind}_transfer_Labels.h5',
                     attrs=dict(kind=kind, pixel_nm=PIXEL_NM[kind], keep_background=True, images=infos), overwrite=True)
        print(kind, 'transfer', len(imgs), 'patches', round(time.time() - t, 1), 's', flush=True)
    folder = root/'hr-indep'
    if not folder.exists():
        t = time.time()
        with Pool(2) as pool: fields = pool.map(_indep, [(d, i) for d in (2.2, 5., 10.) for i in range(4)], chunksize=1)
        imgs, lbls, infos = map(list, zip(*fields))
        save_h5_pair(np.stack(imgs), np.stack(lbls), folder/'Au_hr_indep_Images.h5', folder/'Au_hr_indep_Labels.h5',
                     attrs=dict(kind='hr', pixel_nm=PIXEL_NM['hr'], images=infos), overwrite=True)
        print('hr indep', round(time.time() - t, 1), 's', flush=True)

INDEP = dict(dose=423., defocus_nm=0., defocus_spread_nm=5., cs_um=-15., support_nm=3., carbon_density=2.4, focal_spread_nm=10.,
             zone_fraction=0.6, tilt_deg=4., coverage=0.3)  # density and focal spread outside the training ranges

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

def data(root):
    for kind in ('hr', 'lr'):
        t = time.time()
        if not (root/f'{kind}-train').exists():
            write_set(root/f'{kind}-train', kind, [field(kind, 1000 + i) for i in range(N_TRAIN[kind])])
        h = HELD_OUT[kind]
        if not (root/f'{kind}-heldout').exists():
            fs = [field(kind, 5000 + 100*j + i, lvl, d) for j, (d, lvl) in enumerate((d, l) for d in h['diameters'] for l in h['levels'])
                  for i in range(h['n'])]
            write_set(root/f'{kind}-heldout', kind, fs)
        print(kind, 'data', round(time.time() - t, 1), 's', flush=True)

def train(root):
    from temrf.runs import RunSpec
    from temrf.train import fit_run
    recs = {}
    for name, m in MODELS.items():
        spec = RunSpec(dataset=str(root/f"{m['kind']}-train"), n_blocks=m['n_blocks'], pools=m['pools'], **TRAIN)
        rec, *_ = fit_run(spec, root/'runs', progress=False, overwrite=True)
        (REPO/'temrf/models').mkdir(exist_ok=True)
        shutil.copy(Path(rec['run_dir'])/'model.pth', REPO/'temrf/models'/f'{name}.pth')
        print(name, {k: rec[k] for k in ('test_hard_dice', 'fft_dice', 'rf_nm', 'n_params', 'train_time_s')}, flush=True)
        recs[name] = {k: v for k, v in rec.items() if k not in ('run_dir', 'dataset')}
    (REPO/'nbs/results/models.json').write_text(json.dumps(recs, indent=1))

CANDIDATES = {'hr-n2': dict(kind='hr', n_blocks=2, pools=(8, 4)), 'hr-n3': dict(kind='hr', n_blocks=3, pools=(4, 4, 2)),
              'hr2-n2': dict(kind='hr', n_blocks=2, pools=(8, 4), data='hr-transfer2'),
              'hr2-n3': dict(kind='hr', n_blocks=3, pools=(4, 4, 2), data='hr-transfer2'),
              'lr-n2': dict(kind='lr', n_blocks=2, pools=(4, 4)),
              'hr3-n3': dict(kind='hr', n_blocks=3, pools=(4, 4, 2), data='hr-transfer3', epochs=2, lr=3e-3,              # + soot
                             init='{root}/runs-hr2-n3/runs/hr-transfer2_N3_m442_s752/model.pth'),
              'hr4-n3': dict(kind='hr', n_blocks=3, pools=(4, 4, 2), data='hr-transfer4', epochs=2, lr=3e-3,              # + absorption
                             init='{root}/runs-hr3-n3/runs/hr-transfer3_N3_m442_s752_from-model/model.pth')}

def train2(root, names):
    "Train the candidates `names` on the transfer sets, one thread each (run several side by side)"
    import torch
    from temrf.runs import RunSpec
    from temrf.train import fit_run
    torch.set_num_threads(1)
    for name in names:
        m = CANDIDATES[name]
        spec = RunSpec(dataset=str(root/m.get('data', f"{m['kind']}-transfer")), n_blocks=m['n_blocks'], pools=m['pools'],
                       **dict(TRAIN, epochs=3, **{k: str(m[k]).format(root=root) if k == 'init' else m[k] for k in ('epochs', 'lr', 'init') if k in m}))
        rec, *_ = fit_run(spec, root/f'runs-{name}', progress=False, overwrite=True)
        print(name, {k: rec[k] for k in ('test_hard_dice', 'fft_dice', 'rf_nm', 'n_params', 'train_time_s', 'run_dir')}, flush=True)

def card(root):
    import pandas as pd
    from temrf.infer import pretrained, segment
    from temrf.metrics import dice_from_probs
    from temrf.fft import fft_baseline_dice, band_from_spacings, AU_SPACINGS_A
    from temrf.preprocess import standardize
    import torch
    rows = []
    for name, m in MODELS.items():
        kind = m['kind']
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
    "Mean hard dice per real set and per independent held-out size of each HR model in `models` (names or run folders)"
    import pandas as pd, torch
    from temrf.infer import pretrained
    from temrf.realdata import score_real, REAL_SETS
    torch.set_num_threads(2)
    rows = []
    for m in models:
        df = score_real({'hr': pretrained(m, 'cpu')}, REPO/'realdata', [k for k, v in REAL_SETS.items() if v[3] == 'hr'])
        rows += [dict(model=m, set=r.set, dice=r.dice, fft_dice=r.fft_dice, called=r.called) for r in df.itertuples()]
        rows += indep_scores(root, m)
    t = pd.DataFrame(rows).groupby(['model', 'set'], sort=False)[['dice', 'fft_dice', 'called']].mean().round(3)
    print(t.to_string())
    return t

def ship(root, runs):
    "Copy the run folders `runs` ('hr-au=FOLDER', 'lr-au=FOLDER') into temrf/models/ and their records into models.json"
    recs = json.loads((REPO/'nbs/results/models.json').read_text())
    for item in runs:
        name, folder = item.split('=', 1)
        rec = json.loads((Path(folder)/'record.json').read_text())
        shutil.copy(Path(folder)/'model.pth', REPO/'temrf/models'/f'{name}.pth')
        recs[name] = {k: v for k, v in rec.items() if k not in ('run_dir', 'dataset')}
        print(name, '<-', folder, {k: rec[k] for k in ('arch', 'n_params', 'test_hard_dice', 'n_train', 'train_time_s')})
    (REPO/'nbs/results/models.json').write_text(json.dumps(recs, indent=1))

def card2(root):
    "The model card's real-data and independent-simulation tables, and the real overlays"
    import pandas as pd, torch, subprocess, sys
    from temrf.infer import pretrained
    from temrf.realdata import score_real
    torch.set_num_threads(2)
    df = score_real({'hr': pretrained('hr-au', 'cpu'), 'lr': pretrained('lr-au', 'cpu')}, REPO/'realdata')
    df.round(4).to_csv(REPO/'nbs/results/real_card.csv', index=False)
    pd.DataFrame(indep_scores(root, 'hr-au')).round(4).to_csv(REPO/'nbs/results/indep_card.csv', index=False)
    subprocess.run([sys.executable, str(REPO/'benchmarks/real.py'), '--figures', str(REPO/'nbs/images')], check=True)

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('step', choices=('data', 'train', 'card', 'heldout', 'data2', 'data3', 'data4', 'data5', 'train2', 'compare', 'ship', 'card2'))
    ap.add_argument('names', nargs='*', help='candidates to train (train2) or models to compare (compare)')
    ap.add_argument('--root', default=str(Path('~/.cache/temrf/models').expanduser()))
    a = ap.parse_args()
    root = Path(a.root); root.mkdir(parents=True, exist_ok=True)
    if a.step == 'train2': train2(root, a.names)
    elif a.step == 'compare': compare(root, a.names)
    elif a.step == 'ship': ship(root, a.names)
    else: dict(data=data, train=train, card=card, data2=data2, data3=data3, data4=data4, data5=data5, card2=card2, heldout=heldout)[a.step](root)
