"""temrf data-path benchmark: `python benchmarks/speed.py` prints markdown tables of the simulator (seconds per 512 px
field, against a numpy FFT of the same grid timed in the same run), x-ray removal against the study's per-pixel loop
(`xray_pass_loop` twice, each after `np.median`) and the FFT baseline against the study's procedure
(`fourier_filter_study`: complex float64 numpy FFTs, scikit-image's `gaussian` and `threshold_otsu`) on a 4096 px
micrograph. Each fast path's output is checked against its baseline's in the same run. Best of 3 wall times."""
import os, time
import numpy as np
from temrf.sim import sim_params, simulate_field
from temrf.preprocess import remove_xrays, xray_pass_loop
from temrf.fft import fourier_filter, fourier_filter_study

def best(f, n=3):
    "Best wall time of `n` calls of `f`"
    ts = []
    for _ in range(n): t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return min(ts)

def remove_loop(img, threshold):
    "The study's x-ray removal: negatives to 0, then its per-pixel pass twice"
    out = img.astype(np.float32)
    out[out < 0] = 0
    n = xray_pass_loop(out, threshold)
    if n: n += xray_pass_loop(out, threshold)
    return out, n

def micrograph(n_xrays, size=4096, seed=0):
    "A flat noisy micrograph of `size` px with `n_xrays` single-pixel outliers"
    rng = np.random.default_rng(seed)
    img = rng.normal(1000, 30, (size, size)).astype(np.float32)
    img.flat[rng.choice(img.size, n_xrays, replace=False)] = rng.uniform(3000, 9000, n_xrays)
    return img

def disc_image(size=4096, seed=0):
    "Fringed discs on noise, so that the FFT baseline has something to find"
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size].astype(np.float32)
    img = rng.normal(0, 1, (size, size)).astype(np.float32)
    for cy, cx in rng.uniform(100, size - 100, (60, 2)):
        img += 2*((y - cy)**2 + (x - cx)**2 < 40**2)*np.cos(2*np.pi*x/8)
    return img

if __name__ == '__main__':
    print(f"## Data path (threads: {os.environ.get('OMP_NUM_THREADS', 'all')}), best of 3\n")
    grid = np.random.default_rng(0).random((512, 512)).astype(np.complex64)
    t_fft = best(lambda: np.fft.fft2(grid), 5)
    print("| step | seconds | baseline | baseline s | ratio | same output |")
    print("|---|---|---|---|---|---|")
    for kind in ('hr', 'lr'):
        p = sim_params(kind=kind, diameter_nm=5. if kind == 'hr' else 20., n_images=1, size=512)
        simulate_field(p, 0)  # the first call plans the FFTs
        t = best(lambda: simulate_field(p, 0))
        print(f"| simulate one {kind} field, 512 px | {t:.3f} | numpy fft2 of 512 px | {t_fft:.4f} | {t/t_fft:.0f}x the FFT | n/a |")
    for n_x in (40, 20000):
        img = micrograph(n_x)
        (a, n), (b, m) = remove_xrays(img, 1500), remove_loop(img, 1500)
        same = n == m and np.array_equal(a, b)
        t, t0 = best(lambda: remove_xrays(img, 1500)), best(lambda: remove_loop(img, 1500))
        print(f"| remove_xrays, 4096 px, {n_x} x-rays | {t:.3f} | the study's per-pixel loop | {t0:.3f} | **{t0/t:.1f}x** | {same} ({n} replaced) |", flush=True)
    img = disc_image()
    r_in, r_out = 400, 600
    a, b = fourier_filter(img, r_in, r_out), fourier_filter_study(img, r_in, r_out)
    t, t0 = best(lambda: fourier_filter(img, r_in, r_out)), best(lambda: fourier_filter_study(img, r_in, r_out))
    print(f"| fourier_filter, 4096 px | {t:.3f} | the study's numpy/skimage procedure | {t0:.3f} | **{t0/t:.1f}x** | "
          f"{np.array_equal(a, b)} ({np.count_nonzero(a != b)} pixels differ) |\n")
