# Logdeck: `make run` serves the console on SQLite with demo data; `make test` runs the suite.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
SCALE ?= 10k

# The first interpreter that is Python 3.12 or newer: python3.13, python3.12, pyenv's, python3.
PYTHON ?= $(shell for c in python3.13 python3.12 $$HOME/.pyenv/versions/3.13*/bin/python $$HOME/.pyenv/versions/3.12*/bin/python python3 python; do \
	command -v $$c >/dev/null 2>&1 && $$c -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { command -v $$c; break; }; done)

.PHONY: help venv run serve test test-e2e lint format bench loadtest clean

help:
	@echo "make run    the console on http://$(HOST):$(PORT)/ with demo data (SQLite)"
	@echo "make serve  production: gunicorn on $(HOST):$(PORT), settings from the environment"
	@echo "make test   the whole suite (SQLite; PostgreSQL when DATABASE_URL is set)"
	@echo "make lint   ruff and the import contracts"
	@echo "make bench  the benchmark on PostgreSQL (SCALE=10k|100k|1m|10m)"
	@echo "make loadtest  locust against make serve on PostgreSQL (SCALE=10k|100k|1m)"

$(VENV)/.installed: pyproject.toml client/pyproject.toml
	@if [ -z "$(PYTHON)" ]; then \
		echo "Logdeck needs Python 3.12 or newer (Django 6 requires it), and none was found."; \
		echo "Install one (for example: pyenv install 3.12) or run: make PYTHON=/path/to/python3.12 ..."; \
		exit 1; fi
	@echo "Creating $(VENV) with $(PYTHON)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -e '.[test]'
	@# The client package, editable: the suite tests it, and its framework adapters, against a live server.
	@$(PY) -m pip install --quiet -e ./client
	@touch $@

venv: $(VENV)/.installed

run: venv
	@DEBUG=1 $(PY) manage.py migrate --noinput
	@DEBUG=1 $(PY) manage.py seed_demo --if-empty
	@DEBUG=1 $(PY) manage.py demo_operator --url http://$(HOST):$(PORT)/
	@DEBUG=1 $(PY) manage.py runserver $(HOST):$(PORT)

# Production: refuses a database that is unreachable or not migrated (naming what is missing),
# collects the static files WhiteNoise serves, then gunicorn (config/gunicorn.py) takes over.
serve: venv
	@$(PY) manage.py preflight
	@$(MAKE) --no-print-directory staticfiles/staticfiles.json
	@HOST=$(HOST) PORT=$(PORT) exec $(VENV)/bin/gunicorn --config python:config.gunicorn config.wsgi

# Collected again only when a static file or the installed packages changed: compressing them all
# takes a minute.
staticfiles/staticfiles.json: $(VENV)/.installed $(shell find static -type f 2>/dev/null)
	@echo "Collecting static files (hashed, compressed) into staticfiles/"
	@$(PY) manage.py collectstatic --noinput --verbosity 0
	@touch $@

# The suite runs with production-like settings (DEBUG off) and a throwaway secret.
TEST_ENV := SECRET_KEY=$${SECRET_KEY:-logdeck-test-suite-only} \
	ALLOWED_HOSTS=$${ALLOWED_HOSTS:-testserver,localhost,127.0.0.1} \
	SECURE_SSL_REDIRECT=0 SESSION_COOKIE_SECURE=0 CSRF_COOKIE_SECURE=0

test: venv
	@$(TEST_ENV) $(PY) -m pytest $(PYTEST_ARGS)

test-e2e: venv
	@$(TEST_ENV) $(PY) -m pytest tests/e2e $(PYTEST_ARGS)

lint: venv
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@# The import contracts in pyproject.toml: config the ground, apps downward, no cycles.
	@$(VENV)/bin/lint-imports --no-cache

format: venv
	@$(VENV)/bin/ruff format .
	@$(VENV)/bin/ruff check --fix .

bench: venv
	@$(PY) -m bench --scale $(SCALE) $(BENCH_ARGS)

# locust, headless, against `make serve` on the benchmark's PostgreSQL dataset; see bench/loadtest.
loadtest: venv
	@$(PY) -m bench.loadtest --scale $(SCALE) $(LOADTEST_ARGS)

clean:
	rm -rf $(VENV) logdeck.sqlite3* staticfiles .pytest_cache .ruff_cache
