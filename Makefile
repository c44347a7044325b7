# Every target creates .venv when it is missing and installs the project into it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8080
CKSUM  := $(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# `make run` installs the runtime dependencies only; `make test` adds the test tools (the `test` extra).
RUN_STAMP  := $(VENV)/.installed-run-$(CKSUM)
TEST_STAMP := $(VENV)/.installed-test-$(CKSUM)
PIP    := $(BIN)/python -m pip --quiet --disable-pip-version-check --no-input

.PHONY: run test bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

# A plain (not editable) install: setuptools' editable modes each print a boxed warning. `python -m
# cds_service` run from this folder imports the working tree anyway.
$(RUN_STAMP): $(BIN)/python pyproject.toml
	$(PIP) install .
	rm -f $(VENV)/.installed-*
	touch $(RUN_STAMP)

$(TEST_STAMP): $(RUN_STAMP)
	$(PIP) install -e '.[test]'
	touch $(TEST_STAMP)

install: $(RUN_STAMP)

run: install
	@if [ -z "$${CDS_AUTH+x}" ]; then echo "CDS_AUTH not set: starting with CDS_AUTH=off (client JWTs are not checked)"; fi
	CDS_AUTH=$${CDS_AUTH-off} $(BIN)/python -m cds_service serve --host $(HOST) --port $(PORT)

# The Medplum interop tests' Node packages (tests/test_interop_medplum.py), pinned by the lockfile.
tests/interop/node_modules: tests/interop/package-lock.json
	npm ci --prefix tests/interop --no-audit --no-fund
	touch $@

test: $(TEST_STAMP) tests/interop/node_modules
	$(BIN)/python -m pytest

# wrk drives the load (benchmarks/install-wrk installs the Debian package when missing); BENCH_QUICK=1: 2 s rows.
bench: $(TEST_STAMP)
	benchmarks/install-wrk
	$(PIP) install -e '.[test,bench]'
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) var build *.egg-info
