# The two commands of the README. Everything else is an implementation detail of these.
#   make run    set up and run the gateway on its embedded default (SQLite, local keys, demo partners)
#   make test   set up and run every check and test (SQLite and the local PostgreSQL)
#   make coverage   the same tests under coverage, failing below COVERAGE_FLOOR

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# `make coverage` fails when line coverage of gateway/ falls below this (94.5 % measured
# 2026-12-01). Not part of `make test`: on Python 3.11 (no sys.monitoring) coverage's tracer
# made the tests 45 % slower (tests/authz and tests/authzen: 53 s -> 77 s), and the suite must
# stay well under ten minutes.
COVERAGE_FLOOR := 90

.PHONY: run test coverage setup clean

$(STAMP): pyproject.toml
	$(PYTHON) scripts/check-python.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/gateway init
	$(BIN)/gateway serve

test: $(STAMP)
	scripts/ensure-services.sh
	$(BIN)/ruff check gateway tests bench scripts
	$(BIN)/ruff format --check gateway tests bench scripts
	$(BIN)/mypy
	$(BIN)/pytest -n 2 --dist loadfile

coverage: $(STAMP)
	scripts/ensure-services.sh
	$(BIN)/pytest -n 2 --dist loadfile --cov --cov-report=term --cov-fail-under=$(COVERAGE_FLOOR)

clean:
	rm -rf $(VENV) data artifacts .pytest_cache .mypy_cache .ruff_cache
