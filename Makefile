# rtcohort: the two commands of the README, plus lint and benchmarks.
# Each target creates its own virtual environment (.venv) from nothing when missing.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
DEMO_DIR ?= ./rtcohort-data
# Test processes (pytest-xdist); each runs whole files and starts its own PostgreSQL.
TEST_WORKERS ?= 2

.PHONY: demo test lint typecheck bench clean help

help:
	@echo "make demo   # synthetic multi-centre cohort, then the web app (Ctrl-C stops it)"
	@echo "make test   # the whole test suite (SQLite and a real PostgreSQL server)"
	@echo "make lint   # ruff and mypy"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	RTCOHORT_DATA_DIR=$(DEMO_DIR) $(VENV)/bin/rtcohort demo --no-serve
	RTCOHORT_DATA_DIR=$(DEMO_DIR) $(VENV)/bin/rtcohort db check
	RTCOHORT_DATA_DIR=$(DEMO_DIR) $(VENV)/bin/rtcohort serve --key-dir $(DEMO_DIR)/keys

test: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy omop etl cohort instruments ntcp dashboards rtcohort

bench: $(STAMP)
	$(PY) benchmarks/bulk_load.py
	$(PY) benchmarks/db_upgrade.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
