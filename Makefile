# tripletlab: the one entry point.  `make notes` builds the course, `make test` checks it,
# `make help` lists every target.
# Every target creates .venv first if it is missing (and reinstalls only when
# pyproject.toml or constraints.txt changed).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# TORCH_CPU=1 (Linux without an NVIDIA GPU): PyTorch's CPU-only wheel from PyTorch's own
# index, as PyTorch's install page does it, instead of PyPI's CUDA build (several GB of
# nvidia-* wheels). Takes effect when .venv is made: `rm -rf .venv` before switching.
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
PIP_INSTALL := $(BIN)/python -m pip install -e '.[all]' -c constraints.txt \
	$(if $(filter 1 yes true,$(TORCH_CPU)),--extra-index-url $(TORCH_CPU_INDEX))
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.py))
# The notebooks that train or time: their outputs depend on the hardware, so `make test`
# also runs them on other CPU kernels and on one core (target other-cpus).
HARDWARE_NOTEBOOKS := $(addprefix notebooks/,02_similarity_matrices.ipynb 04_siamese_losses.ipynb \
	05_online_mining.ipynb 07_training.ipynb 08_distributed.ipynb 09_softmax_losses.ipynb)
NBVAL = $(BIN)/python -m pytest --nbval --nbval-current-env \
	--nbval-sanitize-with notebooks/nbval_sanitize.cfg -p no:cacheprovider

# Quiet, deterministic TensorFlow (no oneDNN reordering, no start-up chatter on stderr).
export TF_CPP_MIN_LOG_LEVEL := 3
export TF_ENABLE_ONEDNN_OPTS := 0
export PYTHONHASHSEED := 0

.PHONY: help setup test lint pytest pairs nbval other-cpus notes lab sync bench spread learner \
	platforms clean

## setup: check the Python version (3.11 to 3.13), create .venv, install the pinned
## dependencies into it with pip's progress shown (TORCH_CPU=1: PyTorch's CPU wheel)
setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@if [ -x $(BIN)/python ]; then $(BIN)/python tools/check_python.py; \
	elif command -v $(PYTHON) >/dev/null; then $(PYTHON) tools/check_python.py; \
	else echo "setup: $(PYTHON) not found; install Python 3.11-3.13, or make PYTHON=..." >&2; \
	    exit 1; fi
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "setup: installing tripletlab and its pinned dependencies into $(VENV)"
	@echo "setup: (PyTorch, TensorFlow, JupyterLab, Sphinx: minutes, and 2-3 GB on a CPU wheel)"
	$(PIP_INSTALL)
	touch $@

## help: this list of targets
help:
	@awk '/^## / { sub(/^## /, ""); if (!more) { name = $$0; sub(/:.*/, "", name); \
	    sub(/^[^:]*: /, ""); printf "  make %-10s %s\n", name, $$0 } \
	    else printf "  %-15s %s\n", "", $$0; more = 1; next } { more = 0 }' $(MAKEFILE_LIST)

## test: ruff, pytest on tests/, the jupytext pair check, strict nbval on every notebook,
## and nbval again on the notebooks that train or time, as another CPU would run them
test: setup lint pytest pairs nbval other-cpus

## lint: ruff check and ruff format --check
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## pytest: the tests in tests/ (includes building the site and the browser test)
pytest: setup
	$(BIN)/python -m pytest tests

## pairs: every notebooks/NN_topic.py agrees with its executed .ipynb
pairs: setup
	$(BIN)/python tools/check_pairs.py notebooks

## nbval: re-run every notebook and compare its outputs with the committed ones
nbval: setup
	$(NBVAL) $(NOTEBOOKS:.py=.ipynb)

## other-cpus: nbval on the notebooks that train or time, with the kernels of an AVX2 CPU
## (oneDNN and PyTorch's portable ATen kernels), then of an SSE4.1 CPU on one core
other-cpus: setup
	ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=default $(NBVAL) $(HARDWARE_NOTEBOOKS)
	ONEDNN_MAX_CPU_ISA=SSE41 ATEN_CPU_CAPABILITY=default \
	    $(BIN)/python tools/one_core.py $(NBVAL) $(HARDWARE_NOTEBOOKS)

## notes: the lecture-notes site in build/notes/ from the committed outputs;
## EXECUTE=1 re-executes every notebook in a fresh kernel first
notes: setup
	$(BIN)/python tools/build_notes.py --out build/notes $(if $(EXECUTE),--execute) $(NOTEBOOKS)

## lab: JupyterLab on 127.0.0.1, on the notebooks folder (token auth stays on);
## LEARNER=1: on the learner copies in learner/ (made or refreshed first, edits kept)
lab: setup $(if $(filter 1 yes true,$(LEARNER)),learner)
	$(BIN)/jupyter lab --ip=127.0.0.1 --no-browser \
	    --notebook-dir=$(if $(filter 1 yes true,$(LEARNER)),learner,notebooks)

## sync: regenerate every .ipynb from its .py source and execute it in place
sync: setup
	$(BIN)/python tools/sync_notebooks.py $(NOTEBOOKS)

## learner: learner copies in learner/ (kept by make clean), solutions replaced by
## placeholders; a copy you changed is never overwritten (the update goes beside it)
learner: setup
	$(BIN)/python tools/make_learner.py --out learner $(NOTEBOOKS)

## bench: speed of the distance core, as ratios against peers measured in the same run
bench: setup
	$(BIN)/python tools/bench.py

## spread: how far the trained numbers of 04, 07 and 09 move with the seed and the CPU kernels
## (tools/spread.py; about an hour on 2 cores); writes build/spread/
spread: setup
	$(BIN)/python tools/spread.py notebooks/04_siamese_losses.py --collect acc false_same \
	    --out build/spread/04_siamese_losses.json
	$(BIN)/python tools/spread.py notebooks/07_training.py --seeds 0 5 \
	    --variants native avx2+aten-default sse41+aten-default \
	    --collect runs chosen one_shot versus_raw versus_random cosine_vs_euclidean \
	    keras_vs_torch pairs_apart fractions raw_val --out build/spread/07_training.json
	$(BIN)/python tools/spread.py notebooks/09_softmax_losses.py --seeds 0 5 \
	    --variants native avx2+aten-default sse41+aten-default \
	    --collect chosen summaries versus_raw supcon_vs_triplet raw_test raw_val \
	    --out build/spread/09_softmax_losses.json

## platforms: resolve the pinned install for Linux x86-64 and aarch64, macOS arm64
## and Windows x86-64, Python 3.11-3.13, and print a table (pip --dry-run: nothing
## is installed; needs the package index, so not part of make test)
platforms: setup
	$(BIN)/python tools/platforms.py

## clean: delete build/ (the site, make bench's results); learner/ is kept
clean:
	rm -rf build
