"""bf16 training benchmark: `python benchmarks/bf16.py [epochs]` trains an N=2 m22 network on the `hr-small` preset's
256 px patches (simulated once, then cached), in float32 and with bfloat16 autocast (`get_learner(bf16=True)`), for
two seeds each, the runs interleaved, and prints seconds per epoch and the validation hard dice of each run, evaluated
in float32. Threads: $OMP_NUM_THREADS (default 2)."""
import os, sys, tempfile, time
import torch

def run(splits, seed, bf16, epochs):
    "(seconds per epoch, mean validation hard dice) of one short run"
    from temrf.model import Arch
    from temrf.train import build_model, get_dls, get_learner, predict_dice
    learn = get_learner(get_dls(splits, 8, seed), build_model(Arch((2, 2)), seed), 1e-3, tempfile.mkdtemp(), cbs=[], bf16=bf16)
    t = time.perf_counter()
    with learn.no_bar(), learn.no_logging(): learn.fit(epochs)
    secs = (time.perf_counter() - t)/epochs
    return secs, float(predict_dice(learn.model.eval(), *splits[1])[0].mean())

if __name__ == '__main__':
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', 2)))
    if not torch.ops.mkldnn._is_mkldnn_bf16_supported(): sys.exit("no bfloat16 arithmetic on this CPU: nothing to measure")
    from temrf.datasets import resolve_dataset, splits_of
    epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    splits = splits_of(resolve_dataset('hr-small'), 256)
    print(f"N=2 m22 on hr-small, 256 px patches ({len(splits[0][0])} training, {len(splits[1][0])} validation), batch 8, "
          f"{epochs} epochs, Adam 1e-3\n")
    print("| seed | float32 s/epoch | bf16 s/epoch | speed-up | float32 dice | bf16 dice | difference |")
    print("|---|---|---|---|---|---|---|")
    for seed in (752, 2245):
        (t32, d32), (t16, d16) = run(splits, seed, False, epochs), run(splits, seed, True, epochs)
        print(f"| {seed} | {t32:.2f} | {t16:.2f} | {t32/t16:.2f}x | {d32:.3f} | {d16:.3f} | {d16 - d32:+.3f} |", flush=True)
