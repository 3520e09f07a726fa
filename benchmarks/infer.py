"""temrf inference benchmark: `python benchmarks/infer.py [--device cuda]` segments simulated-size micrographs (2048,
4096 and 8192 px) and a 100-frame 1024 px stack with `temrf.infer.segment`, each case in fresh processes so that each
peak memory (max RSS) is its own, against, measured in the same run:
- plain: a plain PyTorch forward (fp32, `no_grad`) of the same network on the same prepared frames, in 2048 px pieces
  without the halo a seamless result needs (the floor of what a naive user of the network pays);
- previous: `segment` with PyTorch's own forward of whole frames up to 2048 px and 1024 px seamless tiles beyond, the
  path temrf took before `temrf.stream`.
It counts the network's FLOPs (`torch.utils.flop_counter`) and the bytes its operators read and write unfused (a
dispatch-mode counter), measures the machine's bounds (a large copy for bandwidth, a 2048 px matmul for arithmetic)
and prints each case's distance from them. Threads: $OMP_NUM_THREADS (default 2, this machine's cores)."""
import argparse, json, os, platform, resource, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np

CASES = [('hr-au', 2048, 1), ('hr-au', 4096, 1), ('hr-au', 8192, 1), ('lr-au', 4096, 1), ('N4', 4096, 1), ('hr-au', 1024, 100)]
PIECE = 2048  # the plain forward's piece side

def network(name, device='cpu'):
    "The network a case runs: a shipped one, or an untrained N=4 one prepared as hr-au"
    from temrf.infer import pretrained
    from temrf.model import Arch, ResUNet
    if name in ('hr-au', 'lr-au'): return pretrained(name, device)
    net = ResUNet(Arch([2, 2, 2, 4])).eval().to(device)  # N=4, RF 2.7 nm
    net.info['kind'] = 'hr'
    return net

def images(size, frames):
    "Poisson counts: one micrograph (H,W) or a stack (N,H,W), drawn in rows so that no temporary outweighs them"
    rng, x = np.random.default_rng(0), np.empty((frames, size, size) if frames > 1 else (size, size), np.float32)
    rows = x.reshape(-1, size)
    for i in range(0, len(rows), 512): rows[i:i+512] = rng.poisson(400, rows[i:i+512].shape)
    return x

def plain(net, x, dev):
    "Class-1 probabilities of a plain forward on `x`'s prepared frames in PIECE px pieces; the seconds of the forward"
    import torch
    from temrf.model import class1, model_kind
    from temrf.preprocess import prepare
    frames = [prepare(f, model_kind(net), True, net.info.get('prep', 'standardize'), flatten=model_kind(net) == 'lr')
              for f in (x if x.ndim == 3 else [x])]
    out, secs = np.empty((len(frames),) + frames[0].shape, np.float32), 0.
    with torch.no_grad():
        for i, f in enumerate(frames):
            for y in range(0, f.shape[0], PIECE):
                for c in range(0, f.shape[1], PIECE):
                    t = time.perf_counter()
                    xb = torch.from_numpy(np.ascontiguousarray(f[y:y+PIECE, c:c+PIECE]))[None, None].to(dev)
                    out[i, y:y+PIECE, c:c+PIECE] = class1(net(xb)).cpu().numpy()[0]
                    secs += time.perf_counter() - t
    return out if x.ndim == 3 else out[0], secs

def peak_mb():
    "This process's peak resident memory (MB): VmHWM, which unlike ru_maxrss does not inherit the parent's peak"
    status = Path('/proc/self/status')
    if status.exists(): return next(int(l.split()[1]) for l in status.read_text().splitlines() if l.startswith('VmHWM'))/1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/(1024 if sys.platform != 'darwin' else 2**20)

def child(mode, name, size, frames, dev, save=None):
    "Run one case in this process; print a JSON line of seconds and memory"
    import torch
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', 2)))
    import temrf.infer as infer
    net, x = network(name, dev), images(size, frames)
    if mode == 'previous': infer.streams = lambda *a, **k: False  # PyTorch's own forward, whole or in tiles
    base = peak_mb()
    t = time.perf_counter()
    if mode == 'plain': p, secs = plain(net, x, dev)
    else:
        p = infer.segment(net, x, progress=False, device=dev)
        if dev == 'cuda': torch.cuda.synchronize()
        secs = time.perf_counter() - t
    peak = peak_mb()
    if save: np.save(save, p)
    again = None
    if mode == 'default':  # the same input again: a session's next frame, the kernels already compiled
        t = time.perf_counter(); infer.segment(net, x, progress=False, device=dev); again = time.perf_counter() - t
    print(json.dumps(dict(s=secs, again=again, peak_mb=peak, base_mb=base)))

def run(*args):
    "A case in a fresh Python process: its JSON result"
    out = subprocess.run([sys.executable, __file__, '--child', *map(str, args)], capture_output=True, text=True)
    if out.returncode: raise SystemExit(f"case {args} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])

def counts(name):
    "(FLOPs, unfused bytes read and written) per pixel of the network's forward, counted on a 512 px frame"
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from torch.utils._python_dispatch import TorchDispatchMode
    class Bytes(TorchDispatchMode):
        n = 0
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            flat = [a for a in torch.utils._pytree.tree_leaves((args, kwargs, out)) if isinstance(a, torch.Tensor)]
            Bytes.n += sum(a.numel()*a.element_size() for a in flat if a.numel() > 4096)  # activations, not weights
            return out
    net, x = network(name), torch.zeros(1, 1, 512, 512)
    with torch.no_grad():
        with FlopCounterMode(display=False) as fc: net(x)
        with Bytes(): net(x)
    return fc.get_total_flops()/512**2, Bytes.n/512**2

def machine(threads):
    "(bytes/s of a 512 MB copy, FLOP/s of a 2048 px float32 matmul), best of 5"
    import torch
    torch.set_num_threads(threads)
    a, b = np.ones(2**27, np.float32), np.empty(2**27, np.float32)
    m = torch.randn(2048, 2048)
    def timed(f):
        f(); ts = []
        for _ in range(5): t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
        return min(ts)
    return 2*a.nbytes/timed(lambda: np.copyto(b, a)), 2*2048**3/timed(lambda: torch.mm(m, m))

KERNEL = ("import time, numpy as np, temrf.stream as s; t = time.perf_counter(); x, w, b = np.zeros((2, 4, 4), np.float32), "
          "np.zeros((2, 2, 3, 3), np.float32), np.zeros(2, np.float32); s._conv3(x, w, b, np.empty_like(x)); "
          "s._conv3(x[..., :3], w, b, np.empty((2, 4, 3), np.float32)); print(time.perf_counter() - t)")

def kernel_seconds(cache=None):
    "Seconds a fresh process takes to ready temrf's numba kernel: compiled into `cache`, or loaded from numba's cache"
    env = dict(os.environ, **({'NUMBA_CACHE_DIR': cache} if cache else {}))
    return float(subprocess.run([sys.executable, '-c', KERNEL], env=env, capture_output=True, text=True, check=True).stdout)

def cpu_name():
    "The CPU's model name and its vector extensions"
    info = Path('/proc/cpuinfo').read_text() if Path('/proc/cpuinfo').exists() else ''
    name = next((l.split(':', 1)[1].strip() for l in info.splitlines() if l.startswith('model name')), platform.processor())
    flags = set(next((l.split(':', 1)[1].split() for l in info.splitlines() if l.startswith('flags')), []))
    ext = [f for f in ('avx2', 'avx512f', 'avx512_bf16', 'amx_bf16') if f in flags]
    return f"{name} ({os.cpu_count()} logical CPUs; {', '.join(ext) or 'no AVX2'})"

def table(dev):
    "Print the benchmark's table"
    threads = int(os.environ.get('OMP_NUM_THREADS', 2))
    bw, peak = machine(threads)
    print(f"CPU: {cpu_name()}. Threads: {threads}. Device: {dev}. Measured bounds: {bw/1e9:.1f} GB/s (a 512 MB copy), "
          f"{peak/1e9:.0f} GFLOP/s (a 2048 px float32 matmul).\n")
    print("| model | frames | px | plain s | temrf s | temrf / plain | again s | plain / again | previous s | "
          "peak MB temrf / previous / plain | GFLOP | unfused GB | bound s (compute, memory) | temrf / bound | plain / bound |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    per = {}
    with tempfile.TemporaryDirectory() as tmp:
        fresh, _ = kernel_seconds(tmp), kernel_seconds()  # the second fills numba's own cache for the cases
        kernel = f"temrf's numba kernel compiles once per machine in {fresh:.1f} s and loads from numba's cache in {kernel_seconds():.2f} s"
        for name, size, frames in CASES:
            fpp, bpp = per.setdefault(name, counts(name))
            save = size == 2048 and frames == 1
            pl = run('plain', name, size, frames, dev, *([f'{tmp}/plain.npy'] if save else []))
            de = run('default', name, size, frames, dev, *([f'{tmp}/temrf.npy'] if save else []))
            pr = run('previous', name, size, frames, dev)
            px = size**2*frames
            bounds = (fpp*px/peak, bpp*px/bw)
            print(f"| {name} | {frames} | {size} | {pl['s']:.2f} | {de['s']:.2f} | **{pl['s']/de['s']:.2f}x** | {de['again']:.2f} | "
                  f"{pl['s']/de['again']:.2f}x | {pr['s']:.2f} | "
                  f"{de['peak_mb']:.0f} / {pr['peak_mb']:.0f} / {pl['peak_mb']:.0f} | {fpp*px/1e9:.0f} | {bpp*px/1e9:.1f} | "
                  f"{bounds[0]:.2f}, {bounds[1]:.2f} | {de['s']/max(bounds):.1f}x | {pl['s']/max(bounds):.1f}x |", flush=True)
            if save:
                a, b = np.load(f'{tmp}/plain.npy'), np.load(f'{tmp}/temrf.npy')
                agree = f"probabilities within {np.abs(a - b).max():.1e}, masks differ in {((a > .5) != (b > .5)).mean():.4%} of pixels"
    print(f"\nOn the 2048 px frame, temrf against the plain forward: {agree}. Peak memory is each process's maximum resident "
          "set, imports included; plain times the forward alone, temrf and previous the whole of `segment` (preparation, "
          "X-ray removal and the graphite check included), each the first call in its process; again is temrf's second call "
          f"on the same input, as a session's next frame; {kernel} (inside the temrf column).")

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--child', nargs='+')
    a = ap.parse_args()
    if a.child:
        mode, name, size, frames, dev, *save = a.child
        child(mode, name, int(size), int(frames), dev, *save)
    elif a.device == 'cuda' and not __import__('torch').cuda.is_available(): print("no GPU: this torch sees no CUDA device")
    else: table(a.device)
