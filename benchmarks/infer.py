"""temrf inference benchmark: `python benchmarks/infer.py` segments simulated-size micrographs (2048, 4096, 8192 px) with
N=2 and N=4 networks, whole or in seamless tiles, each in a fresh process so that its peak memory (max RSS) is its own,
and a 100-frame 1024 px stack; ratios are against the same process's memory after imports and, for time, against a
plain whole-image forward pass (`temrf.model.predict`) of a 2048 px image measured in the same run.
Threads: $OMP_NUM_THREADS (default 2, this machine's cores)."""
import json, os, resource, subprocess, sys, time

CASES = [('hr-au', 2048, None), ('hr-au', 2048, 512), ('hr-au', 4096, None), ('hr-au', 4096, 2048), ('hr-au', 8192, None),
         ('lr-au', 4096, None), ('N4', 2048, None), ('N4', 4096, None), ('N4', 8192, None)]  # tile None: whole frames up to 2048 px, else 1024 px tiles

def child(model, size, tile, frames=1):
    "Run one case in this process; print a JSON line of seconds and memory"
    import numpy as np, torch
    from temrf.infer import pretrained, segment
    from temrf.model import Arch, ResUNet, predict
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', 2)))
    net = pretrained('lr-au' if model == 'lr-au' else 'hr-au', 'cpu') if model in ('hr-au', 'lr-au', 'plain', 'patches') else ResUNet(Arch([2, 2, 2, 4])).eval()  # N=4, RF 2.7 nm
    if not net.info.get('kind'): net.info['kind'] = 'hr'  # the untrained N=4 network: prepared as the hr-au one
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024
    rng = np.random.default_rng(0)
    x = rng.poisson(400, (frames, size, size) if frames > 1 else (size, size)).astype(np.float32)
    t = time.perf_counter()
    if model == 'plain': p = predict(net, (x - x.mean())/x.std())
    elif model == 'patches': p = predict(net, (x - x.mean())/x.std(), bs=8)  # a stack of 512 px patches, as in training
    else: p = segment(net, x, tile=tile, progress=False, xrays=False)
    dt = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024
    print(json.dumps(dict(s=dt, peak_mb=peak, base_mb=base)))

def run(*args):
    "A case in a fresh Python process: its JSON result"
    out = subprocess.run([sys.executable, __file__, *map(str, args)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])

if __name__ == '__main__':
    if len(sys.argv) > 1:
        m, size, tile, frames = sys.argv[1], int(sys.argv[2]), None if sys.argv[3] == 'None' else int(sys.argv[3]), int(sys.argv[4])
        child(m, size, tile, frames); sys.exit()
    base = run('plain', 2048, None, 1)
    px_s = 2048**2/base['s']
    print(f"Threads: {os.environ.get('OMP_NUM_THREADS', 2)}. Baseline: N=2 hr-au `predict()` on one 2048 px image, "
          f"{base['s']:.2f} s = {px_s/1e6:.2f} Mpx/s, peak {base['peak_mb']:.0f} MB.\n")
    print("| model | px | mode | seconds | px rate / baseline | peak MB | above imports MB |")
    print("|---|---|---|---|---|---|---|")
    def row(model, size, mode, r, n=1):
        print(f"| {model} | {size} | {mode} | {r['s']:.2f} | {n*size**2/r['s']/px_s:.2f}x | {r['peak_mb']:.0f} | "
              f"{r['peak_mb'] - r['base_mb']:.0f} |", flush=True)
    for model, size, tile in CASES:
        row(model, size, 'whole' if tile is None and size <= 2048 else f"tiles {tile or 1024}", run(model, size, tile, 1))
    row('hr-au', 512, '64 patches, `predict` batch 8', run('patches', 512, None, 64), 64)
    row('hr-au', 1024, 'stack of 100 frames', run('hr-au', 1024, None, 100), 100)
