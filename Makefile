# Set-up is part of every target: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench install dot clean

demo: $(STAMP) dot
	$(VENV)/bin/minigraph demo

test: $(STAMP) dot
	$(PY) -m pytest -n 2 -q

bench: $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) benchmarks/bench.py

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
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
