# tripletlab: the one entry point.  `make notes` builds the course, `make test` checks it.
# Every target creates .venv first if it is missing (and reinstalls only when
# pyproject.toml or constraints.txt changed).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.py))
# The notebooks that train or time: their outputs depend on the hardware, so `make test`
# also runs them on other CPU kernels and on one core (target other-cpus).
HARDWARE_NOTEBOOKS := $(addprefix notebooks/,02_similarity_matrices.ipynb 04_siamese_losses.ipynb \
	05_online_mining.ipynb 07_training.ipynb 08_distributed.ipynb)
NBVAL = $(BIN)/python -m pytest --nbval --nbval-current-env \
	--nbval-sanitize-with notebooks/nbval_sanitize.cfg -p no:cacheprovider

# Quiet, deterministic TensorFlow (no oneDNN reordering, no start-up chatter on stderr).
export TF_CPP_MIN_LOG_LEVEL := 3
export TF_ENABLE_ONEDNN_OPTS := 0
export PYTHONHASHSEED := 0

.PHONY: setup test lint pytest pairs nbval other-cpus notes lab sync bench spread learner clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[all]' -c constraints.txt
	touch $@

## test: ruff, pytest on tests/, the jupytext pair check, strict nbval on every notebook,
## and nbval again on the notebooks that train or time, as another CPU would run them
test: setup lint pytest pairs nbval other-cpus

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

pytest: setup
	$(BIN)/python -m pytest tests

pairs: setup
	$(BIN)/python tools/check_pairs.py notebooks

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

## lab: JupyterLab on 127.0.0.1, on the notebooks folder (token auth stays on)
lab: setup
	$(BIN)/jupyter lab --ip=127.0.0.1 --no-browser --notebook-dir=notebooks

## sync: regenerate every .ipynb from its .py source and execute it in place
sync: setup
	$(BIN)/python tools/sync_notebooks.py $(NOTEBOOKS)

## learner: learner copies in build/learner/, every solution cell replaced by a placeholder
learner: setup
	$(BIN)/python tools/make_learner.py --out build/learner $(NOTEBOOKS)

## bench: speed of the distance core, as ratios against peers measured in the same run
bench: setup
	$(BIN)/python tools/bench.py

## spread: how far the trained numbers of 04 and 07 move with the seed and the CPU kernels
## (tools/spread.py; about an hour on 2 cores); writes build/spread/
spread: setup
	$(BIN)/python tools/spread.py notebooks/04_siamese_losses.py --collect acc false_same \
	    --out build/spread/04_siamese_losses.json
	$(BIN)/python tools/spread.py notebooks/07_training.py --seeds 0 5 \
	    --variants native avx2+aten-default sse41+aten-default \
	    --collect runs chosen one_shot versus_raw versus_random cosine_vs_euclidean \
	    keras_vs_torch pairs_apart fractions raw_val --out build/spread/07_training.json

clean:
	rm -rf build
