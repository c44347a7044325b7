# Every target creates .venv when it is missing and installs the project into it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8080
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

run: install
	@if [ -z "$${CDS_AUTH+x}" ]; then echo "CDS_AUTH not set: starting with CDS_AUTH=off (client JWTs are not checked)"; fi
	CDS_AUTH=$${CDS_AUTH-off} $(BIN)/python -m cds_service serve --host $(HOST) --port $(PORT)

# The Medplum interop tests' Node packages (tests/test_interop_medplum.py), pinned by the lockfile.
tests/interop/node_modules: tests/interop/package-lock.json
	npm ci --prefix tests/interop --no-audit --no-fund
	touch $@

test: install tests/interop/node_modules
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) var build *.egg-info
