# Two commands from a fresh clone: `make run` starts the stack, `make test` checks it.
# Both create .venv when it is missing and reinstall only when pyproject.toml changed.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# mypy covers every package that exists (some arrive with later issues) and worker.py.
MYPY_TARGETS := $(wildcard billing config store activities workflows api gateway_sim payments devstack observability bench) worker.py
PYTEST_ARGS ?=

.PHONY: run test lint pytest chaos bench replay-record demo screenshots install clean-data help
.DEFAULT_GOAL := help

help:
	@echo "make run         start Postgres, Redis, Temporal (UI :8233), worker, API (:8000), gateway sim"
	@echo "make test        lint, then every test except chaos/bench (starts its own servers)"
	@echo "make lint        ruff check, ruff format --check, mypy, import-linter contracts"
	@echo "make pytest      the tests only (PYTEST_ARGS='-k name' to narrow)"
	@echo "make chaos       the long fault tests"
	@echo "make bench       the benchmarks: writes bench-results.json and docs/benchmarks.md"
	@echo "make demo        run the six journeys against the make run stack (Web UI gets real sagas)"
	@echo "make screenshots refresh docs/*.png from the browser tests"
	@echo "make replay-record  record the replay histories afresh (a new path; never to silence a failure)"
	@echo "make clean-data  forget the dev stack's data (.devstack/)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -e '.[stack,dev]'
	touch $@

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m devstack run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(MYPY_TARGETS)
	$(BIN)/lint-imports

pytest: $(STAMP)
	$(BIN)/pytest -m "not chaos and not bench" $(PYTEST_ARGS)

# Lint first, then the tests (a recipe, not two prerequisites, so -j keeps the order).
test: lint
	$(BIN)/pytest -m "not chaos and not bench" $(PYTEST_ARGS)

chaos: $(STAMP)
	$(BIN)/pytest -m chaos tests/faults $(PYTEST_ARGS)

# Starts its own servers; 30–90 min on 2 quiet cores (by host), and profiles the batch ingest with py-spy.
# BENCH_ARGS=--quick for smaller sizes, --no-profile to skip py-spy (docs/benchmarks.md).
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# Runs every recorded path against real servers and rewrites tests/replay/histories/.
replay-record: $(STAMP)
	$(BIN)/pytest tests/replay/record_histories.py tests/replay/record_webhook_histories.py -q $(PYTEST_ARGS)

# Against a running `make run` stack (for shorter dunning, start it with
# DUNNING_SCHEDULE=30s,1m,2m BANK_TRANSFER_SETTLEMENT_DELAY=2s make run).
demo: $(STAMP)
	$(BIN)/python -m scripts.demo

screenshots: $(STAMP)
	SCREENSHOTS_DIR=docs REQUIRE_BROWSER=1 $(BIN)/pytest tests/browser -q

clean-data:
	rm -rf .devstack
