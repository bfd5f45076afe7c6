# The two commands: `make serve` (install, then run the service on embedded
# defaults) and `make test` (install, then run the whole suite). Both build a
# Python 3.11 virtualenv in .venv; durable-rules compiles a C extension, so gcc
# and the Python headers must be present (they are on the CI image).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: serve test lint proto release-contract bench mutation clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# What serving needs, without the test tools (a first `make serve` is quicker by about a minute).
$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

serve: $(VENV)/.runtime
	$(BIN)/fairpath serve

test: $(VENV)/.installed
	$(BIN)/python -m pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check service clients tests proto
	$(BIN)/mypy
	cd proto && $(abspath $(BIN))/buf lint && $(abspath $(BIN))/buf breaking --against released/fairpath-v1.binpb

# On a release only: make today's contract the one `buf breaking` compares with from now on.
release-contract: $(VENV)/.installed
	cd proto && $(abspath $(BIN))/buf build -o released/fairpath-v1.binpb

proto: $(VENV)/.installed
	$(BIN)/python proto/generate.py

# bench_rpc.py also needs PostgreSQL on 127.0.0.1:5432, database test (FAIRPATH_BENCH_POSTGRES to change it).
bench: $(VENV)/.installed
	$(BIN)/python tests/benchmarks/bench_evaluate.py
	$(BIN)/python tests/benchmarks/bench_rpc.py

# Mutation testing of the hash chain, the condition language and the compiler; not run by CI
# (README, "Tests"). mutmut 3 wants the package under src/, so it runs in .mutation/, a fresh
# copy laid out that way, with the [tool.mutmut] settings of pyproject.toml.
mutation: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test,mutation]'
	rm -rf .mutation && mkdir -p .mutation/src
	cp -R service/fairpath .mutation/src/fairpath
	cp -R tests policies pyproject.toml .mutation/
	cd .mutation && nice -n 10 $(abspath $(BIN))/mutmut run --max-children 2 && $(abspath $(BIN))/mutmut results

clean:
	rm -rf $(VENV)
