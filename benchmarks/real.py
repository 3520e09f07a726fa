"""temrf on real micrographs: `python benchmarks/real.py` scores the shipped models (or `--hr`/`--lr` model files or run
folders) on temrf's development set of real, hand-labelled micrographs (realdata/, see its README), each set beside
the study's Fourier-filtering baseline with the Au band moved to the set's pixel size. Prints a markdown table of mean
hard dice per set (and, for the particle-free soot image, the fraction called particle); `--figures DIR` also draws
each image with the model's outline and the true one."""
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
    import torch
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', 2)))
    from temrf.infer import pretrained
    from temrf.realdata import score_real
    models = {'hr': pretrained(a.hr, 'cpu'), 'lr': pretrained(a.lr, 'cpu')}
    t = time.time()
    df = score_real(models, a.data)
    g = df.groupby('set', sort=False).agg(n=('dice', 'size'), model=('model', 'first'), dice=('dice', 'mean'),
                                          fft_dice=('fft_dice', 'mean'), called=('called', 'mean'), true=('true', 'mean'))
    g['gain'] = g.dice - g.fft_dice
    print(f"Real micrographs ({a.data}), hard dice per set; FFT: the study's baseline, Au band at the set's pixel size; "
          f"called/true: fraction of pixels called particle / labelled particle. {time.time() - t:.0f} s.\n")
    print('| set | n | model | dice | FFT dice | gain | called | true |\n|---|---|---|---|---|---|---|---|')
    for s, r in g.iterrows():
        f = lambda v: '' if v != v else f'{v:.3f}'
        print(f"| {s} | {r.n} | {Path(str(r.model)).name} | {r.dice:.3f} | {f(r.fft_dice)} | {f(r.gain)} | {r.called:.3f} | {r.true:.3f} |")
    if a.figures: print(f"\noverlays: {overlays(models, a.data, Path(a.figures))}")
