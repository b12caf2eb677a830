# Thin wrapper: one tool per line. A fresh machine needs only Python 3.11 and pip.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.amlfw-installed

.PHONY: install run test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: install
	$(BIN)/python -m tests.demo

test: install lint
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check reconciler tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .amlfw-run

# the full generated bad-input suite (1,400 cases, about 2.5 minutes); `make test` runs a sample
fuzz: install
	AMLFW_FUZZ_FULL=1 $(BIN)/python -m pytest -q tests/test_fuzz.py
