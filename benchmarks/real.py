"""temrf on real micrographs: `python benchmarks/real.py` scores the shipped models (or `--hr`/`--lr` model files or run
folders) on temrf's development set of real, hand-labelled micrographs (realdata/, see its README), each set beside
the classical baseline on the same pixels (the study's Fourier filter for HRTEM, a smoothed Otsu threshold for
bright-field), and the bright-field sets again under a +-20% brightness ramp. Prints a markdown table of pooled dice,
mean dice, particle F1 and size error per set (and the fraction called particle, which on the particle-free soot
image should be near 0); `--figures DIR` also draws each image with the model's outline and the true one."""
import argparse, os, sys, time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def overlays(models, folder, out):
    "One figure per set: each image with the true outline (yellow) and the model's (cyan)"
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt, numpy as np
    from temrf.infer import segment
    from temrf.realdata import REAL_SETS, load_real
    out.mkdir(parents=True, exist_ok=True)
    recs = [r for r in load_real(folder) if r['kind'] in models and r['set'] != 'BF sintering' or r['name'] in ('images[0]', 'images[5]')]
    fig, axs = plt.subplots(3, 6, figsize=(15, 7.8))
    for ax, r in zip(axs.flat, recs):
        p = segment(models[r['kind']], r['image'], r['pixel_nm'], progress=False, max_rescale=25) > 0.5
        ax.imshow(r['image'], cmap='gray'); ax.contour(r['mask'], [.5], colors='gold', linewidths=.8)
        ax.contour(p, [.5], colors='cyan', linewidths=.8); ax.set_title(f"{r['set']}\n{r['name']}", fontsize=7); ax.axis('off')
    for ax in axs.flat[len(recs):]: ax.axis('off')
    fig.suptitle('real micrographs: true outline (yellow), model (cyan)', fontsize=10); fig.tight_layout()
    fig.savefig(out/'real_overlays.jpg', dpi=55, pil_kwargs=dict(quality=80)); plt.close(fig)
    return out/'real_overlays.jpg'


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--hr', default='hr-au', help='high-resolution model (shipped name, run folder or model file)')
    ap.add_argument('--lr', default='lr-au', help='low-resolution model')
    ap.add_argument('--data', default=os.environ.get('TEMRF_REALDATA', str(REPO/'realdata')), help='folder of the real micrographs')
    ap.add_argument('--figures', help='folder for an overlay figure')
    a = ap.parse_args()
    import numpy as np, pandas as pd, torch
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', 2)))
    from temrf.infer import pretrained
    from temrf.realdata import real_report
    models = {'hr': pretrained(a.hr, 'cpu'), 'lr': pretrained(a.lr, 'cpu')}
    t = time.time()
    tab = real_report(models, a.data)
    print(f"Real micrographs ({a.data}), {time.time() - t:.0f} s. Per set: pooled dice (every pixel of the set), mean dice "
          "of the images with >= 0.15% particle pixels, particle F1 (IoU >= 0.5) and median diameter error, each for the "
          "model and, after the slash, for the classical baseline on the same pixels (FFT: the study's Fourier filter, "
          "Au band at the set's pixel size; Otsu: Gaussian 2 px + Otsu); called/true: fraction of pixels called "
          "particle / labelled particle.\n")
    print('| set | n | model | baseline | pooled dice | mean dice | particle F1 | size error | called | true |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    f = lambda v: '-' if v != v else f'{v:.3f}'
    for s, r in tab.iterrows():
        pair = lambda k: f"{f(r[k])} / {f(r.get('base_' + k, np.nan))}"
        print(f"| {s} | {r.n} | {Path(str(r.model)).name} | {r.baseline} | {pair('pooled_dice')} | {pair('mean_dice')} | "
              f"{pair('particle_f1')} | {pair('size_error')} | {r.called:.3f} | {r.true:.3f} |")
    if a.figures: print(f"\noverlays: {overlays(models, a.data, Path(a.figures))}")
