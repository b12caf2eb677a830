# Thin wrapper: one tool per line. A fresh machine needs only Python 3.11 and pip.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.amlfw-installed

.PHONY: install run test lint bench clean refresh-reference lock

install: $(STAMP)

# Exact versions with hashes from the lock (reproducible CI); the project itself goes in editable, without deps.
$(STAMP): pyproject.toml requirements-test.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-test.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
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

# Regenerate the lock files from pyproject.toml's ranges (pip-tools; exact versions with hashes):
# requirements-test.lock for `make install` and CI, deploy/requirements.lock for the image and VM installs.
LOCK_FLAGS := --quiet --generate-hashes --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links --upgrade
lock: install
	$(BIN)/python -m pip install --quiet --disable-pip-version-check 'pip-tools>=7.4,<8'
	$(BIN)/pip-compile $(LOCK_FLAGS) --extra lease --extra test --output-file requirements-test.lock pyproject.toml
	$(BIN)/pip-compile $(LOCK_FLAGS) --extra lease --output-file deploy/requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .amlfw-run

# Long soak (issue 9): 300 passes, 1-5 s operations, 20 % random faults; prints the figures (docs/reliability.md);
# then the full generated bad-input suite.
.PHONY: soak
soak: install
	$(BIN)/python -m tests.soak $(SOAK_ARGS)
	AMLFW_FUZZ_FULL=1 $(BIN)/python -m pytest -q tests/test_fuzz.py

# the full generated bad-input suite (1,400 cases, about 2.5 minutes); `make test` runs a sample
.PHONY: fuzz
fuzz: install
	AMLFW_FUZZ_FULL=1 $(BIN)/python -m pytest -q tests/test_fuzz.py
