# Developer entry points. Every target works on a fresh clone with only Python 3.11.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint demo bench soak interop clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=python3"; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest -q -n 3

lint: install
	$(BIN)/ruff check kvmigrate tests examples benchmarks
	$(BIN)/ruff format --check kvmigrate tests examples benchmarks
	$(BIN)/mypy

demo: install
	$(BIN)/python examples/demo.py

# Benchmarks against the emulator in its own process (benchmarks/README.md); BENCH_QUICK=1 for a short run.
# py-spy (the profiler of case 5) goes into .venv only, never into pyproject.toml.
bench: install
	test -x $(BIN)/py-spy || $(BIN)/python -m pip install --quiet --disable-pip-version-check py-spy
	$(BIN)/python -m compileall -q kvmigrate benchmarks  # as pip does on install: start-up then reads, never compiles
	$(BIN)/python -m benchmarks.run

soak: install
	KVMIGRATE_SOAK_OBJECTS=3000 $(BIN)/python -m pytest -q -s tests/e2e/test_soak.py

# az CLI's own per-object workflow (login, backup, restore, show, list) against the emulator on port 443:
# examples/az-cli-workflow.sh. Needs root (it binds 443 on 127.0.0.2-5 and adds /etc/hosts lines it removes on exit).
# azure-cli goes into its own venv (.venv-az, ignoring itself for git), never into .venv or pyproject.toml.
interop: install
	test -x .venv-az/bin/az || { $(PYTHON) -m venv .venv-az && echo '*' > .venv-az/.gitignore \
		&& .venv-az/bin/python -m pip install --quiet --disable-pip-version-check azure-cli; }
	AZ=.venv-az/bin/az PYTHON=$(BIN)/python KVMIGRATE=$(BIN)/kvmigrate bash examples/az-cli-workflow.sh

clean:
	rm -rf $(VENV) .venv-az .pytest_cache .mypy_cache .ruff_cache
