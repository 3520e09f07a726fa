# temrf: `make demo` runs the main job, `make test` runs every test; both set up .venv first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
OUT ?= results/demo
# Kernels that papermill and nbdev_test start resolve `python` through PATH: make it the venv's.
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: setup demo test quick docs export browser xvfb outputs bench bench-gpu

setup: $(VENV)/.temrf-installed

# A torch already importable by python3 (a CUDA build, say) is kept: the venv sees it and pins it.
$(VENV)/.temrf-installed: settings.ini setup.py
	@if [ ! -x $(PY) ]; then \
	  if python3 -c "import torch" 2>/dev/null; then python3 -m venv --system-site-packages $(VENV); \
	  else python3 -m venv $(VENV); fi; fi
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q $(TORCH)
	@$(PY) -c "import torch; print('torch==' + torch.__version__.split('+')[0])" > $(VENV)/constraints.txt
	$(PY) -m pip install -q -c $(VENV)/constraints.txt -e ".[dev,sim,files,cluster,export,napari]"
	@touch $@

# The study's finding on two CPU cores: two runs side by side, one thread each.
demo: setup
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/temrf sweep --preset demo --out $(OUT) --n_jobs 2
	$(BIN)/temrf report $(OUT)

# The docs' browser test needs Debian's chromium: installed when running as root, skipped with a message otherwise.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "chromium is not installed (and cannot be here): the browser test of the docs will be skipped"; }

# The napari plugin's viewer tests need a virtual display: Debian's xvfb and the X libraries Qt loads, installed like chromium.
xvfb:
	@{ command -v Xvfb >/dev/null 2>&1 && [ -e /usr/lib/x86_64-linux-gnu/libxcb-icccm.so.4 -o -e /usr/lib/aarch64-linux-gnu/libxcb-icccm.so.4 ]; } || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 libxcb-image0 libxcb-render-util0 libxkbcommon-x11-0 libgl1 >/dev/null; } || \
	  echo "Xvfb is not installed (and cannot be here): the napari viewer tests will be skipped"; }

# The notebook tests run twice, with the default threads and with one: a test that compares floats from differently
# split sums with exact equality fails here, not on the next machine.
test: setup browser xvfb
	$(BIN)/nbdev_test --n_workers 2
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/nbdev_test --n_workers 2
	$(BIN)/pytest -q tests

# The quick loop while editing: the notebook tests once and the tests not marked slow or network.
quick: setup
	$(BIN)/nbdev_test --n_workers 2
	$(BIN)/pytest -q -m 'not slow and not network' tests

export: setup
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean

# The site goes to _docs/: with Quarto through nbdev_docs, without it through smalldocs (tools/docs.py), from the same
# _quarto.yml. README.md is regenerated from nbs/index.ipynb either way.
docs: setup
	@if command -v quarto >/dev/null 2>&1; then $(BIN)/nbdev_docs; \
	else $(BIN)/python tools/docs.py && $(BIN)/python tools/docs.py readme; fi

# Store the figures and tables the docs show (run after `make demo`, so the figures page uses its results).
DOC_NBS ?= nbs/index.ipynb nbs/01_preprocess.ipynb nbs/02_sim_hr.ipynb nbs/02a_sim_lr.ipynb nbs/02c_sim.ipynb nbs/03_model.ipynb nbs/04_rf.ipynb nbs/06_fft.ipynb nbs/08a_contrast_law.ipynb nbs/12_contrast_experiment.ipynb nbs/13b_edges.ipynb nbs/13a_particles.ipynb nbs/14_infer.ipynb nbs/15_advice.ipynb nbs/16_models.ipynb
outputs: setup
	$(BIN)/python tools/store_outputs.py $(DOC_NBS)
	TEMRF_RESULTS=$(abspath $(OUT)) $(BIN)/python tools/store_outputs.py --slow nbs/11_figures.ipynb
	$(BIN)/nbdev_clean

# The benchmark suite (not part of the tests): simulator, x-ray removal and FFT baseline against the study's procedures,
# training against a plain study-like loop with each speed-up, stacked training, inference time and peak memory, and
# the shipped models on real micrographs beside the classical baselines, and fine-tuned on a few of them;
# every ratio against a baseline timed in the same run. The tables go to $(BENCH_OUT) as well.
BENCH_OUT ?= benchmarks/results.md
bench: setup
	@set -o pipefail; export OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2}; { echo "# temrf benchmarks, $$(date -u +%F), $$(nproc) cores"; echo; \
	  $(BIN)/python benchmarks/speed.py && $(BIN)/python benchmarks/train.py && echo && \
	  $(BIN)/python benchmarks/stack.py && echo && echo '## bf16 training' && echo && $(BIN)/python benchmarks/bf16.py && \
	  echo && echo '## Inference' && echo && $(BIN)/python benchmarks/infer.py && \
	  echo && echo '## Real micrographs' && echo && $(BIN)/python benchmarks/real.py && \
	  echo && echo '## Fine-tuning on real micrographs' && echo && $(BIN)/python benchmarks/finetune.py --choices 2; } \
	  2>&1 | grep --line-buffered -v Warning | tee $(BENCH_OUT)

# The same on a GPU machine: stacked training of the study's HR 5 nm pooling sweep, timed and extrapolated, and inference.
bench-gpu: setup
	@if $(PY) -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then \
	  $(BIN)/python benchmarks/stack.py --device cuda --out benchmarks/results-gpu.md && \
	  { echo; echo '## Inference'; echo; $(BIN)/python benchmarks/infer.py --device cuda; } >> benchmarks/results-gpu.md; \
	else echo "no GPU: make bench-gpu measures on a CUDA device, and this torch sees none; nothing was measured"; fi
