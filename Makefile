# The two commands: `make serve` (install, then run the service on embedded
# defaults) and `make test` (install, then run the whole suite). Both build a
# Python 3.11 virtualenv in .venv; durable-rules compiles a C extension, so gcc
# and the Python headers must be present (they are on the CI image).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: serve test lint proto bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

serve: $(VENV)/.installed
	$(BIN)/fairpath serve

test: $(VENV)/.installed
	$(BIN)/python -m pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check service clients tests proto
	$(BIN)/mypy

proto: $(VENV)/.installed
	$(BIN)/python proto/generate.py

bench: $(VENV)/.installed
	$(BIN)/python tests/benchmarks/bench_evaluate.py

clean:
	rm -rf $(VENV)
