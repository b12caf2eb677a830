# Thin wrapper: one tool per line. A fresh machine needs only Python 3.11 and pip.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.amlfw-installed

.PHONY: install run test lint bench clean refresh-reference

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
	$(BIN)/ruff check reconciler tests bench reference
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install
	$(BIN)/python -m bench

# Refresh the vendored reference data (reference/README.md): make refresh-reference SOURCE=/path/to/reference [SEED=dir]
refresh-reference: install
	@test -n "$(SOURCE)" || { echo "usage: make refresh-reference SOURCE=/path/to/reference [SEED=/path/to/seed]"; exit 1; }
	$(BIN)/python reference/refresh.py "$(SOURCE)" $(if $(SEED),--seed "$(SEED)")
	$(BIN)/python reference/generate_catalogue_data.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .amlfw-run
