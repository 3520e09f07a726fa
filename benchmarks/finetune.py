"""Fine-tuning on real micrographs: `python benchmarks/finetune.py` fine-tunes the shipped model of each real
development set (realdata/) on k of its labelled images at `temrf finetune`'s defaults and scores the set's other
images (pooled dice) before and after, with the time each fine-tune took: the few-shot curve of the model card.
With k=1 every image (or `--choices` of them) takes its turn as the labelled one; the table gives the mean, the worst
change and the share of fine-tunes the guard kept."""
import argparse, os, sys, time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SETS = ('BF sintering', 'Au 2.2 nm', 'Au 5 nm', 'Au 10 nm')


def pooled(model, recs):
    from temrf.infer import segment
    from temrf.metrics import set_scores
    return set_scores([segment(model, r['image'], r['pixel_nm'], progress=False, max_rescale=25) > .5 for r in recs], [r['mask'] for r in recs])['pooled_dice']


def run(data, sets, ks, choices, steps):
    import numpy as np
    from temrf.finetune import finetune
    from temrf.realdata import load_real
    from temrf.shipped import pretrained
    rows = []
    for s in sets:
        recs = load_real(data, [s])
        name = 'lr-au' if recs[0]['kind'] == 'lr' else 'hr-au'
        for k in ks:
            if k >= len(recs): continue
            starts = range(len(recs)) if k == 1 else [0]
            starts = list(starts)[::max(1, len(starts)//choices)][:choices]
            for i in starts:
                lab = [recs[(i + j) % len(recs)] for j in range(k)]
                rest = [r for r in recs if all(r is not l for l in lab)]
                base = pooled(pretrained(name, 'cpu'), rest)
                t = time.time()
                m, rec = finetune([r['image'] for r in lab], [r['mask'] for r in lab], name, lab[0]['pixel_nm'], steps=steps, progress=False, device='cpu', max_rescale=25)
                rows.append(dict(set=s, k=k, first=i, before=base, after=pooled(m, rest), kept=rec['kept'], secs=time.time() - t))
                print(rows[-1], file=sys.stderr, flush=True)
    return rows


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', default=os.environ.get('TEMRF_REALDATA', str(REPO/'realdata')), help='folder of the real micrographs')
    ap.add_argument('--sets', nargs='+', default=list(SETS), help='real sets to fine-tune on')
    ap.add_argument('--k', nargs='+', type=int, default=[1, 2, 4], help='numbers of labelled images')
    ap.add_argument('--choices', type=int, default=4, help='labelled images tried in turn at k=1')
    ap.add_argument('--steps', type=int, default=150, help='fine-tuning steps (temrf finetune --steps)')
    a = ap.parse_args()
    import pandas as pd, torch
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', 2)))
    df = pd.DataFrame(run(a.data, a.sets, a.k, a.choices, a.steps))
    df['change'] = df.after - df.before
    g = df.groupby(['set', 'k'], sort=False).agg(runs=('after', 'size'), before=('before', 'mean'), after=('after', 'mean'),
                                                 worst=('change', 'min'), kept=('kept', lambda v: (v == 'fine-tuned').mean()), secs=('secs', 'mean'))
    print(f"Fine-tuning on k labelled real images ({a.data}), pooled dice on the set's other images: the starting (shipped) model,\n"
          f"after `temrf finetune` ({a.steps} steps), the worst change over the runs, the share of runs whose fine-tuned model "
          f"the held-out guard kept, and the mean time of one fine-tune on {torch.get_num_threads()} threads.\n")
    print('| set | k | runs | before | after | worst change | fine-tuned kept | s per fine-tune |\n|---|---|---|---|---|---|---|---|')
    for (s, k), r in g.iterrows():
        print(f"| {s} | {k} | {int(r.runs)} | {r.before:.3f} | {r.after:.3f} | {r.worst:+.3f} | {r.kept:.0%} | {r.secs:.0f} |")
