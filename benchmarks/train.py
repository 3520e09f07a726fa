"""temrf training benchmark: `python benchmarks/train.py` trains the study's networks (N=2 m22 and m88, N=3, N=4) on
256 and 512 px patches, batch 8, with temrf's fastai `Learner` and with a plain PyTorch loop written like the study's
(NCHW, a `DataLoader` over a `TensorDataset`, `.item()` of the loss and dice after every batch), each case in a fresh
process so that its peak memory (max RSS) is its own. Then each speed-up alone on top of the plain loop, as a ratio:
channels-last (with batch norm in NCHW, `temrf.model`), glibc's heap held (`temrf.train.hold_heap`), `torch.compile`,
bf16 autocast (where the CPU has it), batches indexed from in-memory tensors, and no host sync per batch. Last, the
bound: the bytes an N=2 step must move against this machine's measured memory bandwidth.
Images/s count training images of the second epoch (the first warms up; its validation of 8 images is included in
both). Threads: $OMP_NUM_THREADS (default 2, this machine's cores)."""
import json, os, resource, subprocess, sys, tempfile, time

ARCHS = {'N=2 m22': 'm22', 'N=2 m88': 'm88', 'N=3 m222': 'm222', 'N=4 m2222': 'm2222'}
N_TRAIN = {256: 64, 512: 32}
SPEEDUPS = ('channels_last', 'heap', 'compile', 'bf16', 'tensors', 'nosync')

def _data(size):
    "Random standardized images and 0/1 labels: `N_TRAIN[size]` to train, 8 to validate"
    import numpy as np
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N_TRAIN[size] + 8, size, size)).astype(np.float32)
    Y = (rng.random(X.shape) > 0.7).astype(np.uint8)
    return (X[8:], Y[8:]), (X[:8], Y[:8])

def _dice(out, y):
    "The study's per-batch hard dice of class 1"
    p = out.argmax(1).float(); y = y.float()
    return (2*(p*y).sum() + 1)/(p.sum() + y.sum() + 1)

def plain(arch, size, epochs, opts=()):
    "Seconds of the last epoch of the study-like loop, with the speed-ups named in `opts`"
    import torch, torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset
    from temrf.model import ResUNet
    from temrf.train import hold_heap
    if 'heap' in opts: hold_heap()
    (Xt, Yt), (Xv, Yv) = _data(size)
    torch.manual_seed(0)
    model = ResUNet(ARCHS[arch])
    cl = torch.channels_last if 'channels_last' in opts else torch.contiguous_format
    model = model.to(memory_format=cl)
    f = torch.compile(model) if 'compile' in opts else model
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    bf16 = 'bf16' in opts
    Xt_, Yt_ = torch.from_numpy(Xt)[:, None], torch.from_numpy(Yt).long()
    if 'tensors' in opts:
        def batches():
            idx = torch.randperm(len(Xt_))
            return ((Xt_[i], Yt_[i]) for i in idx.split(8))
    else:
        dl = DataLoader(TensorDataset(Xt_, Yt_), batch_size=8, shuffle=True)
        batches = lambda: dl
    valid = DataLoader(TensorDataset(torch.from_numpy(Xv)[:, None], torch.from_numpy(Yv).long()), batch_size=8)
    sync = 'nosync' not in opts
    for _ in range(epochs):
        t = time.perf_counter()
        model.train(); tot_loss, tot_dice = 0., 0.
        for xb, yb in batches():
            xb = xb.contiguous(memory_format=cl)
            opt.zero_grad()
            with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16): out = f(xb)
            loss = F.cross_entropy(out.float(), yb)
            loss.backward(); opt.step()
            if sync: tot_loss += loss.item(); tot_dice += _dice(out.detach(), yb).item()
            else: tot_loss += loss.detach(); tot_dice += _dice(out.detach(), yb)
        model.eval()
        with torch.no_grad():
            for xb, yb in valid: out = f(xb.contiguous(memory_format=cl)); vl = F.cross_entropy(out.float(), yb).item(); vd = _dice(out, yb).item()
        float(tot_loss)
        dt = time.perf_counter() - t
    return dt

def temrf_fit(arch, size, epochs):
    "Seconds of the last of `epochs` one-epoch fits of temrf's `Learner` (its defaults: channels-last, heap held)"
    import torch
    from temrf.model import Arch
    from temrf.train import build_model, get_dls, get_learner
    splits = _data(size)
    learn = get_learner(get_dls(splits, bs=8, seed=0, device='cpu'), build_model(Arch.parse(ARCHS[arch]), seed=0), 1e-3,
                        path=tempfile.mkdtemp())
    with learn.no_bar(), learn.no_logging():
        for _ in range(epochs):
            t = time.perf_counter(); learn.fit(1); dt = time.perf_counter() - t
    return dt

def child(kind, arch, size, opts):
    import torch
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', 2)))
    import temrf.train  # imports before the memory baseline
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024
    t0 = time.perf_counter()
    dt = plain(arch, size, 2, opts) if kind == 'plain' else temrf_fit(arch, size, 2)
    print(json.dumps(dict(s=dt, total_s=time.perf_counter() - t0, peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024,
                          base_mb=base)))

def run(kind, arch, size, opts=()):
    "One case in a fresh Python process: its JSON result"
    out = subprocess.run([sys.executable, __file__, kind, arch, str(size), ','.join(opts)], capture_output=True, text=True)
    if out.returncode: return dict(error=(out.stderr.strip().splitlines() or ['?'])[-1])
    return json.loads(out.stdout.strip().splitlines()[-1])

def bandwidth_gbs(mb=512, n=5):
    "Memory bandwidth (GB/s, bytes read + written) of a large numpy copy"
    import numpy as np
    a = np.ones(mb << 18, np.float32); b = np.empty_like(a)
    ts = []
    for _ in range(n): t = time.perf_counter(); np.copyto(b, a); ts.append(time.perf_counter() - t)
    return 2*a.nbytes/min(ts)/1e9

def step_bytes(arch, size, bs=8):
    "Bytes a training step must move at least: every activation written and read forward, read again, and its gradient written and read backward"
    import torch
    from temrf.model import ResUNet
    model, total = ResUNet(ARCHS[arch]), [0]
    def hook(m, i, o): total[0] += o.numel()*o.element_size()
    for m in model.modules():
        if not list(m.children()): m.register_forward_hook(hook)
    with torch.no_grad(): model(torch.zeros(bs, 1, size, size))
    return 5*total[0]

def main():
    threads = os.environ.get('OMP_NUM_THREADS', 2)
    print(f"## Training: images/s of the second epoch, batch 8 (threads: {threads})\n")
    print("| network | px | plain loop img/s | temrf img/s | temrf / plain | plain peak MB | temrf peak MB |")
    print("|---|---|---|---|---|---|---|")
    m22 = {}
    for size in (256, 512):
        for arch in ARCHS:
            p, t = run('plain', arch, size), run('temrf', arch, size)
            if 'error' in p or 'error' in t: print(f"| {arch} | {size} | failed: {p.get('error') or t.get('error')} |"); continue
            ip, it = N_TRAIN[size]/p['s'], N_TRAIN[size]/t['s']
            if arch == 'N=2 m22': m22[size] = (p, t)
            print(f"| {arch} | {size} | {ip:.1f} | {it:.1f} | **{it/ip:.2f}x** | {p['peak_mb']:.0f} | {t['peak_mb']:.0f} |", flush=True)
    print("\n## Each speed-up alone on the plain loop (N=2 m22), ratio of images/s\n")
    print("| speed-up | 256 px | 512 px | note |")
    print("|---|---|---|---|")
    for o in SPEEDUPS:
        cells, note = [], ''
        for size in (256, 512):
            r = run('plain', 'N=2 m22', size, (o,))
            if 'error' in r: cells.append('n/a'); note = r['error'][:80]; continue
            cells.append(f"{m22[size][0]['s']/r['s']:.2f}x")
            if o == 'compile': note = f"compiling took {r['total_s'] - 2*r['s']:.0f} s at {size} px"
        print(f"| {o} | {cells[0]} | {cells[1]} | {note} |", flush=True)
    print("\n## On top of temrf's defaults (channels_last + heap), ratio of images/s\n")
    print("| speed-up | 256 px | 512 px | note |")
    print("|---|---|---|---|")
    base = {size: run('plain', 'N=2 m22', size, ('channels_last', 'heap')) for size in (256, 512)}
    for o in ('compile', 'bf16'):
        rs = {size: run('plain', 'N=2 m22', size, ('channels_last', 'heap', o)) for size in (256, 512)}
        if any('error' in r for r in rs.values()): print(f"| {o} | n/a | n/a | {next(r['error'] for r in rs.values() if 'error' in r)[:80]} |"); continue
        note = f"compiling took {rs[512]['total_s'] - 2*rs[512]['s']:.0f} s at 512 px" if o == 'compile' else 'changes the arithmetic: off by default'
        print(f"| {o} | {base[256]['s']/rs[256]['s']:.2f}x | {base[512]['s']/rs[512]['s']:.2f}x | {note} |", flush=True)
    bw = bandwidth_gbs()
    print(f"\n## The bound: memory traffic of an N=2 m22 step (batch 8) at {bw:.1f} GB/s (a 512 MB copy)\n")
    print("| px | bytes a step must move | time at bandwidth s | temrf step s | temrf / bound |")
    print("|---|---|---|---|---|")
    for size in (256, 512):
        b, step = step_bytes('N=2 m22', size), m22[size][1]['s']/(N_TRAIN[size]/8 + 1)  # + the validation batch
        print(f"| {size} | {b/1e6:.0f} MB | {b/bw/1e9:.3f} | {step:.3f} | {step/(b/bw/1e9):.1f}x |")

if __name__ == '__main__':
    if len(sys.argv) > 1:
        child(sys.argv[1], sys.argv[2], int(sys.argv[3]), tuple(o for o in sys.argv[4].split(',') if o)); sys.exit()
    main()
