# The two commands a newcomer needs: `make run` and `make test`. Each builds .venv when missing.
PYTHON ?= python3.13
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format bench screenshot clean

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { \
	  echo "Python 3.13 was not found as '$(PYTHON)'. Install it (pyenv install 3.13) or run"; \
	  echo "make PYTHON=/path/to/python3.13 ..."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.run-deps: requirements.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.dev-deps: requirements-dev.txt requirements.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@ $(VENV)/.run-deps

# The sandbox is served by this same server: point the client at it, wherever it listens.
run: export POC_API_BASE_URL ?= http://$(HOST):$(PORT)/sandbox/api/
run: export POC_API_TOKEN_URL ?= http://$(HOST):$(PORT)/sandbox/oauth/token
run: $(VENV)/.run-deps
	$(PY) manage.py migrate --no-input
# Deployment warnings (SQLite's WAL-reset bug) are shown here, not by every command.
	$(PY) manage.py check --deploy --tag sqlite
	$(PY) manage.py ensure_admin
	$(PY) manage.py runserver $(HOST):$(PORT)

test: $(VENV)/.dev-deps
	$(PY) -m pytest

lint: $(VENV)/.dev-deps
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(VENV)/.dev-deps
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

# Each prints its results with ratios against a baseline of its own run (see BENCHMARKS.md).
bench: $(VENV)/.dev-deps
	$(PY) bench/client_overhead.py
	$(PY) bench/fan_out.py
	$(PY) bench/sqlite_ceiling.py
	$(PY) bench/web_load.py

# The README's picture of the console (needs Debian's chromium: apt-get install chromium).
screenshot: $(VENV)/.dev-deps
	$(PY) scripts/screenshot.py

clean:
	rm -rf $(VENV) staticfiles test-artifacts .pytest_cache .ruff_cache .test-db*.sqlite3*
