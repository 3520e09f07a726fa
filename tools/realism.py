"""Real against simulated HRTEM images, where segmentation depends on it: `python tools/realism.py` draws the figures
and table of the docs' realism page (nbs/16b_realism.ipynb) into nbs/images/ and nbs/results/realism.csv.

Compared: the real Au renders of realdata/ (0.0776 nm/px), temrf's earlier training physics (the study's presets
hr-contrast-3 and hr-contrast-6) and the transfer physics the shipped hr-au is now trained on (temrf.recipes
hr_knobs), every simulated field downsampled to the renders' pixel size first. For each: the ring-averaged power
spectrum of the carbon alone (particles masked with a 1 nm margin), where its speckle peaks, how much of the power lies
in the Au fringes' band, and the Fig. 3 particle contrast."""
from pathlib import Path
import numpy as np
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]
PX = 0.0776  # nm per pixel of the real Au renders


def carbon_spectrum(img, lbl, px, margin_nm=1.0):
    "Ring-averaged power (per cycles/nm bin) of the carbon of `img` (particles of `lbl` masked with a margin)"
    x = (img - img.mean())/img.std()
    carbon = ~ndimage.binary_dilation(lbl > 0, iterations=max(1, round(margin_nm/px)))
    if carbon.mean() < 0.2: return None
    x = np.where(carbon, x - x[carbon].mean(), 0)
    n = min(x.shape); x = x[:n, :n]*np.outer(np.hanning(n), np.hanning(n))
    P = np.abs(np.fft.fftshift(np.fft.fft2(x)))**2
    y, xx = np.indices(P.shape) - n//2
    k = np.hypot(y, xx)/(n*px)                      # cycles/nm
    bins = np.linspace(0.2, 0.5/px, 60)
    idx = np.digitize(k.ravel(), bins)
    prof = np.bincount(idx, P.ravel(), len(bins) + 1)[1:len(bins)]/np.maximum(np.bincount(idx, minlength=len(bins) + 1)[1:len(bins)], 1)
    return (bins[:-1] + bins[1:])/2, prof/prof.sum()


def down(img, lbl, px_from):
    "`img`, `lbl` resampled from `px_from` to the renders' pixel size"
    from skimage.transform import resize
    shape = [round(s*px_from/PX) for s in img.shape]
    return resize(img.astype(np.float32), shape, order=1, anti_aliasing=True), resize(lbl.astype(float), shape, order=0) > 0.5


def groups():
    "name -> list of (image, label) at the renders' pixel size"
    from temrf.realdata import load_real
    from temrf.sim import simulate_dataset, sim_params, simulate_field, CONTRAST_LEVELS
    from temrf.recipes import hr_knobs
    g = {}
    for s in ('Au 2.2 nm', 'Au 5 nm', 'Au 10 nm'):
        g[f'real {s}'] = [(r['image'], r['mask']) for r in load_real(REPO/'realdata', [s])]
    for lvl in (3, 6):
        support, dose, kw = CONTRAST_LEVELS[lvl-1]
        ims, lbs, _ = simulate_dataset('hr', 5., n_images=3, size=512, seed=40 + lvl, support_nm=support, dose=dose, coverage=0.3, **kw)
        g[f'earlier sim, contrast level {lvl}'] = [down(i, l, 0.0215) for i, l in zip(ims, lbs)]
    fields = []
    for seed in range(6):
        rng = np.random.default_rng([30000 + seed, 78])
        d, kw = hr_knobs(rng); d = min(d, 4.); kw['coverage'] = max(kw['coverage'], .1)
        img, lbl, _ = simulate_field(sim_params('hr', d, 1, 512, seed=30000 + seed, patch=512, **kw), 0)
        fields.append(down(img, lbl, 0.0215))
    g['transfer sim (hr-au training physics)'] = fields
    return g


def main():
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt, pandas as pd
    from temrf.contrast import contrast_figure
    g = groups()
    rows, fig, ax = [], *plt.subplots(1, 2, figsize=(11, 3.8))
    au_band = (10/2.355*0.93, 10/2.039*1.07)       # cycles/nm of Au(111)-(200) with the margins fringe_score uses
    for name, items in g.items():
        sp = [s for s in (carbon_spectrum(i, l, PX) for i, l in items) if s is not None]
        k, prof = sp[0][0], np.mean([s[1] for s in sp], 0)
        sm = ndimage.uniform_filter1d(prof, 3)
        peak = float(k[np.argmax(np.where(k > 0.8, sm, 0))])
        rows.append(dict(set=name, n=len(items), speckle_peak_per_nm=round(peak, 2),
                         power_1_3_per_nm=round(float(prof[(k >= 1) & (k <= 3)].sum()), 3),
                         power_above_4_5_per_nm=round(float(prof[k > 4.5].sum()), 3),
                         power_au_band=round(float(prof[(k >= au_band[0]) & (k <= au_band[1])].sum()), 3),
                         contrast=round(float(np.mean([contrast_figure(i[None], l[None].astype(np.uint8)) for i, l in items if 0 < l.mean() < 1])), 3)))
        ax[0].plot(k, prof, label=name, lw=2 if name.startswith('real') else 1, ls='-' if name.startswith('real') else '--')
    ax[0].axvspan(*au_band, color='gold', alpha=.3, label='Au(111)-(200) fringes')
    ax[0].set(xlabel='spatial frequency (cycles/nm)', ylabel='share of carbon power', title='carbon speckle: power spectrum'); ax[0].legend(fontsize=6)
    for name, items in g.items():
        x = np.concatenate([((i - i.mean())/i.std())[~ndimage.binary_dilation(l > 0, iterations=13)].ravel() for i, l in items])
        ax[1].hist(x, bins=80, range=(-4, 4), density=True, histtype='step', label=name, lw=2 if name.startswith('real') else 1)
    ax[1].set(xlabel='standardized intensity of carbon', title='carbon intensity'); fig.tight_layout()
    fig.savefig(REPO/'nbs/images/realism_spectra.png', dpi=70); plt.close(fig)
    fig, axs = plt.subplots(1, 5, figsize=(13, 2.9))
    picks = [('real Au 5 nm', 2), ('real Au 10 nm', 0), ('earlier sim, contrast level 3', 0), ('earlier sim, contrast level 6', 0),
             ('transfer sim (hr-au training physics)', 1)]
    for a, (name, i) in zip(axs, picks):
        im, lb = g[name][i]; im = im[:132, :132]; lb = lb[:132, :132]
        a.imshow(im, cmap='gray', vmin=np.percentile(im, 1), vmax=np.percentile(im, 99)); a.contour(lb, [.5], colors='gold', linewidths=.7)
        a.set_title(name, fontsize=8); a.axis('off')
    fig.tight_layout(); fig.savefig(REPO/'nbs/images/realism_side_by_side.jpg', dpi=70, pil_kwargs=dict(quality=80)); plt.close(fig)
    df = pd.DataFrame(rows); df.to_csv(REPO/'nbs/results/realism.csv', index=False)
    print(df.to_string(index=False))


if __name__ == '__main__': main()
