# Set-up is part of every target: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test fuzz bench docs pip-check install dot mpi clean

demo: $(STAMP) dot
	$(VENV)/bin/minigraph demo

# The suite runs twice: as sessions run by default (graph passes on), then with the passes
# off (MINIGRAPH_OPTIMIZE=0), so every result holds on the unoptimised graph too.
test: $(STAMP) dot mpi
	$(PY) -m pytest -n 2 -q
	MINIGRAPH_OPTIMIZE=0 $(PY) -m pytest -n 2 -q -p no:cacheprovider

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

# Open MPI (mpirun and libmpi, for mpi4py and the distributed tests), through the system
# package manager when mpirun is missing. mpi4py itself comes with the dev extra.
mpi:
	@command -v mpirun >/dev/null 2>&1 || { \
	  echo "installing Open MPI (mpirun)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  if command -v apt-get >/dev/null; then $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq openmpi-bin libopenmpi-dev; \
	  elif command -v dnf >/dev/null; then $$SUDO dnf install -y openmpi openmpi-devel && \
	    echo "Fedora puts mpirun in /usr/lib64/openmpi/bin: run 'module load mpi/openmpi' (or add it to PATH) before make test"; \
	  elif command -v brew >/dev/null; then brew install open-mpi; \
	  else echo "please install Open MPI (https://www.open-mpi.org/)"; exit 1; fi; }

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .fuzz-stats
