"""temrf stacked-training benchmark: `python benchmarks/stack.py [--device cuda]` trains K networks of one architecture
as one stack (`temrf.stack`) and one network alone, with temrf's `Learner`, on random 512 px (GPU) or 256 px (CPU)
patches, and prints the images per second per model and their ratio. On a GPU it times each of the study's nine N=2
pooling sequences of the HR 5 nm sweep as a stack of 5 seeds (batch 32, mixed precision) and extrapolates the whole
sweep: 9 sequences x 5 seeds x 100 epochs x 1,208 training images (and the validation set, 1/7 of it) at 512 px."""
import argparse, json, sys, tempfile, time
import numpy as np, torch

SEQS = [(2, (a, b)) for a in (2, 4, 8) for b in (2, 4, 8)]  # the HR 5 nm pooling sweep at N=2: 9 sequences

def epoch_s(n_blocks, pools, k, size, bs, n_train, device, epochs=2):
    "Seconds of the last of `epochs` epochs of a stack of `k` models (or one model when `k` is 1) on `n_train` patches"
    from temrf.stack import ResUNetStack, StackLoss, stack_dls, stack_metrics
    from temrf.model import Arch
    from temrf.train import build_model, get_dls, get_learner
    from fastai.callback.core import Callback
    rng = np.random.default_rng(0)
    n_valid = max(bs, n_train//7)
    X = rng.normal(size=(n_train + n_valid, size, size)).astype(np.float32)
    Y = (rng.random(X.shape) > 0.7).astype(np.uint8)
    split = ((X[n_valid:], Y[n_valid:]), (X[:n_valid], Y[:n_valid]))
    path = tempfile.mkdtemp()
    if k == 1:
        learn = get_learner(get_dls(split, bs, 0, device), build_model(Arch(pools, n_blocks=n_blocks)), 1e-3, path, cbs=[])
    else:
        dls = stack_dls([split]*k, bs, list(range(k)), device)
        net = ResUNetStack([build_model(Arch(pools, n_blocks=n_blocks), seed=s) for s in range(k)]).to(dls.device)
        learn = get_learner(dls, net, 1e-3, path, loss_func=StackLoss(k), metrics=stack_metrics(k), cbs=[])
    with learn.no_bar(), learn.no_logging():
        for _ in range(epochs):
            if device == 'cuda': torch.cuda.synchronize()
            t = time.perf_counter(); learn.fit(1)
            if device == 'cuda': torch.cuda.synchronize()
            dt = time.perf_counter() - t
    return dt

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--device', default='cpu'); p.add_argument('--k', type=int, default=None)
    p.add_argument('--n_train', type=int, default=None); p.add_argument('--out', default=None)
    a = p.parse_args()
    gpu = a.device == 'cuda'
    if not gpu: torch.set_num_threads(2)
    size, bs, k = (512, 32, a.k or 5) if gpu else (256, 8, a.k or 4)
    n = a.n_train or (320 if gpu else 32)
    seqs = SEQS if gpu else [(2, (2, 2)), (2, (8, 8))]
    rows, lines = [], [f"## Stacked training on {torch.cuda.get_device_name() if gpu else 'the CPU'}: {size} px, batch {bs}, "
                       f"{n} training patches per model per epoch\n",
                       f"| network | alone img/s | stack of {k}: img/s per model | x{k} models | ratio (all models) | peak GPU GB |",
                       "|---|---|---|---|---|---|"]
    print('\n'.join(lines), flush=True)
    for nb, pools in seqs:
        if gpu: torch.cuda.reset_peak_memory_stats()
        t1 = epoch_s(nb, pools, 1, size, bs, n, a.device)
        tk = epoch_s(nb, pools, k, size, bs, n, a.device)
        mem = torch.cuda.max_memory_allocated()/1e9 if gpu else float('nan')
        one, per = n/t1, n/tk
        rows.append(dict(arch=f"m{''.join(map(str, pools))}", alone=one, per_model=per, total=k*per, mem=mem))
        line = f"| N={nb} m{''.join(map(str, pools))} | {one:.1f} | {per:.1f} | {k*per:.1f} | {k*per/one:.2f}x | {f'{mem:.1f}' if gpu else 'n/a'} |"
        lines.append(line); print(line, flush=True)
    if gpu:  # the study's HR 5 nm pooling sweep: 5 seeds per sequence, one stack each
        imgs = 100*1208*(1 + 1/7)  # per model: 100 epochs of training and validation images
        total = sum(imgs/r['per_model'] for r in rows)
        alone = sum(5*imgs/r['alone'] for r in rows)
        line = (f"\nThe HR 5 nm pooling sweep (9 sequences x 5 seeds x 100 epochs x 1,208 images): {total/3600:.2f} h stacked "
                f"(one stack of 5 seeds per sequence, one after another), {alone/3600:.2f} h one by one")
        lines.append(line); print(line)
    if a.out: open(a.out, 'w').write('\n'.join(lines) + '\n')

if __name__ == '__main__': main()
