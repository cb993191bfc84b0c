# Two commands, each setting up first (see README):
#   make demo   install into .venv, then train the hierarchical model with the cpu preset
#               for about ten minutes (--time-budget 10m: the steps fit this machine's speed)
#   make test   install into .venv (with test tools), then run the quick tier of the
#               tests (everything not marked slow: minutes; docs/testing.md)
#   make test-all  the same, then every test (what CI runs, .ci/run)
#
# TORCH is installed before the package so that pip keeps it: the default pin is the
# release this project is tested with; on a GPU machine pass the build you want, e.g.
#   make demo TORCH="torch --index-url <your CUDA wheel index>"
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: setup demo test test-all lint clean gpu-wheels

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[dev,tensorboard,video]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/stvae train --preset cpu --model hierarchical --data bouncing-mnist --time-budget 10m --out runs/demo-$$(date +%Y%m%d-%H%M%S)

# The tests run on every core at once, one pytest worker a core (pytest-xdist), each on one
# thread: two multi-threaded torch processes on the same cores slow each other several-fold.
# The tests that need the sprites judge share a worker, which trains it once.
# TEST_WORKERS=0 runs them all in one process (still one thread).
TEST_WORKERS ?= auto
PYTEST := OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup

test: setup
	$(PYTEST) -m "not slow" --durations=10

test-all: setup
	$(PYTEST) --durations=15

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

# The wheels bench/gpu_grid.sh needs on a lent GPU machine, which has no mlxtend (the
# digits) and reaches no index: downloaded here into .whl/ (ignored), carried by the call.
gpu-wheels: setup
	$(BIN)/python -m pip download --quiet --no-deps --only-binary=:all: -d .whl \
		mlxtend==$$($(BIN)/python -c "import importlib.metadata as m; print(m.version('mlxtend'))")

clean:
	rm -rf $(VENV) runs
