# tripletlab: the one entry point.  `make notes` builds the course, `make test` checks it.
# Every target creates .venv first if it is missing (and reinstalls only when
# pyproject.toml or constraints.txt changed).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.py))

# Quiet, deterministic TensorFlow (no oneDNN reordering, no start-up chatter on stderr).
export TF_CPP_MIN_LOG_LEVEL := 3
export TF_ENABLE_ONEDNN_OPTS := 0
export PYTHONHASHSEED := 0

.PHONY: setup test lint pytest pairs nbval notes lab sync bench learner clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[all]' -c constraints.txt
	touch $@

## test: ruff, pytest on tests/, the jupytext pair check, strict nbval on every notebook
test: setup lint pytest pairs nbval

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

pytest: setup
	$(BIN)/python -m pytest tests

pairs: setup
	$(BIN)/python tools/check_pairs.py notebooks

nbval: setup
	$(BIN)/python -m pytest --nbval --nbval-current-env \
	    --nbval-sanitize-with notebooks/nbval_sanitize.cfg -p no:cacheprovider \
	    $(NOTEBOOKS:.py=.ipynb)

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

clean:
	rm -rf build
