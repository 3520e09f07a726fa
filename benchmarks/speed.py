"""temrf speed benchmark: `python benchmarks/speed.py` prints seconds per step and ratios against baselines timed in
the same run (a numpy FFT of the same grid for the simulator, a plain median for x-ray removal, one forward pass for
a training step), so numbers from different machines can be compared."""
import time
import numpy as np, torch
from temrf.sim import sim_params, simulate_field
from temrf.preprocess import remove_xrays
from temrf.model import ResUNet

def best(f, n=3):
    "Best wall time of `n` calls of `f`"
    ts = []
    for _ in range(n): t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return min(ts)

def row(name, t, base, base_name): print(f"{name:<38} {t:8.3f} s   {t/base:8.1f} x {base_name}")

if __name__ == '__main__':
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    grid = rng.random((512, 512)).astype(np.complex64)
    t_fft = best(lambda: np.fft.fft2(grid), 5)
    print(f"{'baseline: numpy fft2 512x512':<38} {t_fft:8.4f} s")
    for kind in ('hr', 'lr'):
        p = sim_params(kind=kind, diameter_nm=5. if kind == 'hr' else 20., n_images=1, size=512)
        simulate_field(p, 0)  # first call compiles and plans
        row(f"{kind} field 512 px (one core)", best(lambda: simulate_field(p, 0)), t_fft, 'fft2')
    img = rng.normal(1000, 30, (4096, 4096)).astype(np.float32)
    img.flat[rng.choice(img.size, 40, replace=False)] = 9000
    t_med = best(lambda: np.median(img), 3)
    row("remove_xrays 4096 px, 40 x-rays", best(lambda: remove_xrays(img, 1500), 3), t_med, 'median')
    for n, pools in ((2, (2, 2)), (3, (2, 2, 2)), (4, (2, 2, 2, 2))):
        m, x, y = ResUNet(n, pools), torch.randn(8, 1, 256, 256), torch.randint(0, 2, (8, 256, 256))
        fwd = best(lambda: m(x), 3)
        def step():
            m.zero_grad(); torch.nn.functional.cross_entropy(m(x), y).backward()
        row(f"N={n} train step, batch 8 of 256 px", best(step, 3), fwd, 'forward')
