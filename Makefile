# Set-up is part of every target: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test fuzz bench docs pip-check install dot clean

demo: $(STAMP) dot
	$(VENV)/bin/minigraph demo

test: $(STAMP) dot
	$(PY) -m pytest -n 2 -q

# The fuzz suite with thousands of random cases per test (`make test` runs a few dozen,
# always the same); the table at the end gives the cases per area and the escapes.
FUZZ_EXAMPLES ?= 3000
fuzz: $(STAMP)
	rm -rf .fuzz-stats
	MINIGRAPH_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) MINIGRAPH_FUZZ_STATS=.fuzz-stats $(PY) -m pytest tests/fuzz -n 2 -q

bench: $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) benchmarks/bench.py

# The HTML API reference (pdoc) in build/docs; fails on a docstring naming something that does not exist.
docs: $(STAMP)
	$(PY) docs/build_api.py --out build/docs

# What a user of `pip install .` (no extras) gets: a throwaway venv, then the main commands in a temp folder.
pip-check:
	@set -e; dir=$$(mktemp -d); trap 'rm -rf "$$dir"' EXIT; \
	$(PYTHON) -m venv "$$dir/venv"; \
	"$$dir/venv/bin/python" -m pip install -q .; \
	"$$dir/venv/bin/python" -m pip list --format=freeze; \
	cd "$$dir" && venv/bin/minigraph demo --epochs 1 --no-progress && venv/bin/minigraph train --epochs 2 --no-progress

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip "setuptools>=68" wheel
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# Graphviz's `dot` program, through the system package manager when it is missing.
dot:
	@command -v dot >/dev/null 2>&1 || { \
	  echo "installing Graphviz (the dot program)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  if command -v apt-get >/dev/null; then $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq graphviz; \
	  elif command -v dnf >/dev/null; then $$SUDO dnf install -y graphviz; \
	  elif command -v brew >/dev/null; then brew install graphviz; \
	  else echo "please install Graphviz (https://graphviz.org/download/)"; exit 1; fi; }

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .fuzz-stats
