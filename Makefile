# Submission Portal — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PG_URL ?= postgres://postgres@127.0.0.1:5432/portal
# The e2e pass on django-q2's Redis broker uses this database alone and flushes only it.
REDIS_E2E_URL ?= redis://127.0.0.1:6379/15
PYTEST_ARGS ?=

.PHONY: install run test test-sqlite test-postgres test-parity test-e2e-redis docs-check test-rules test-mssql lint fmt bench lock migrate check-deploy os-deps browser-deps clean

$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	touch $@

install: $(VENV)/.installed

lock:  ## regenerate requirements.lock from pyproject.toml (no index URLs recorded)
	test -x $(VENV)/bin/pip-compile || $(PY) -m pip install -q pip-tools
	$(VENV)/bin/pip-compile -q --no-emit-index-url --no-emit-find-links --extra dev --strip-extras -o requirements.lock pyproject.toml

migrate: install
	$(PY) manage.py migrate --no-input -v0

run: install  ## set up on SQLite, seed a demo, start web + workers + dispatcher + simulator
	$(PY) manage.py migrate --no-input -v0
	$(PY) manage.py collectstatic --no-input -v0
	$(PY) manage.py sync_targets
	$(PY) manage.py seed_demo
	$(PY) bin/run_all.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --strict intents gateways deadletters portal  # the application packages, strict (issue 15)
	$(VENV)/bin/lint-imports  # the dependency rule: .importlinter
	$(PY) manage.py makemigrations --check --dry-run -v1
	DJANGO_SETTINGS_MODULE=portal.settings.production DEBUG=0 SECRET_KEY=check-deploy-$$(openssl rand -hex 32) \
	  ALLOWED_HOSTS=portal.example.com AUDIT_HMAC_KEY=$$(openssl rand -hex 32) \
	  METRICS_TOKEN=$$(openssl rand -hex 16) DATABASE_URL=sqlite:///var/check.sqlite3 \
	  $(PY) manage.py check --deploy --fail-level WARNING

fmt: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Debian packages the suite needs (checked with dpkg, installed only when missing):
#   chromium   the Playwright browser tests (never `playwright install`)
#   unixodbc   libodbc.so.2, which mssql-django's pyodbc import loads (offline T-SQL checks)
#   prometheus, prometheus-alertmanager   promtool and amtool for make test-rules
#   postgresql-client   pg_dump and pg_restore for `manage.py backup` / `restore` (and their tests)
OS_PACKAGES := chromium unixodbc prometheus prometheus-alertmanager postgresql-client

os-deps:  ## install the Debian packages the suite needs
	@missing=$$(for pkg in $(OS_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$pkg 2>/dev/null | grep -q '^install ok installed' || echo $$pkg; done); \
	if [ -n "$$missing" ]; then echo "=== installing Debian packages:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; fi

browser-deps: os-deps

test: install os-deps lint docs-check test-rules test-sqlite test-postgres test-parity test-e2e-redis  ## everything CI runs

test-sqlite: install os-deps
	@echo "=== test suite on SQLite (with coverage of the test process; fails under 90 %)"
	env -u DATABASE_URL $(PY) -m pytest --cov --cov-report=term --cov-fail-under=90 $(PYTEST_ARGS)

test-postgres: install os-deps
	@if bin/require_service "$(PG_URL)"; then echo "=== test suite on PostgreSQL"; \
	  DATABASE_URL=$(PG_URL) $(PY) -m pytest $(PYTEST_ARGS); \
	  else bin/service_skipped "PostgreSQL at $(PG_URL)" "the PostgreSQL pass"; fi

test-parity: install os-deps  ## PostgreSQL with mssql-django's missing ORM features switched off
	@if bin/require_service "$(PG_URL)"; then echo "=== SQL Server parity pass on PostgreSQL"; \
	  DATABASE_URL=$(PG_URL) MSSQL_PARITY=1 $(PY) -m pytest -m "not browser and not e2e" $(PYTEST_ARGS); \
	  else bin/service_skipped "PostgreSQL at $(PG_URL)" "the SQL Server parity pass"; fi

test-e2e-redis: install  ## the end-to-end tests again, with django-q2 on the Redis broker
	@if bin/require_service "$(REDIS_E2E_URL)"; then echo "=== e2e tests on the Redis broker ($(REDIS_E2E_URL))"; \
	  env -u DATABASE_URL E2E_REDIS_URL=$(REDIS_E2E_URL) $(PY) -m pytest -m e2e tests/e2e $(PYTEST_ARGS); \
	  else bin/service_skipped "Redis at $(REDIS_E2E_URL)" "the e2e pass on the Redis broker"; fi

test-rules: os-deps  ## Prometheus rules and their unit tests (promtool), Alertmanager config (amtool)
	promtool check rules deploy/prometheus/rules.yml
	promtool test rules deploy/prometheus/tests.yml
	amtool check-config deploy/alertmanager/alertmanager.yml

docs-check: install  ## every relative link and anchor resolves; Markdown lint (pymarkdown)
	$(PY) bin/check_docs.py
	$(VENV)/bin/pymarkdown scan README.md docs/*.md

test-mssql: install  ## NOT run on this project's CI: needs a SQL Server (see docker-compose.mssql.yml)
	@test -n "$$MSSQL_DATABASE_URL" || { echo "set MSSQL_DATABASE_URL=mssql://sa:...@127.0.0.1:1433/portal?python_driver=mssql_python"; exit 2; }
	DATABASE_URL="$$MSSQL_DATABASE_URL" $(PY) -m pytest $(PYTEST_ARGS)

bench: install  ## performance figures with their ratio to the raw-SQL floor (PostgreSQL)
	$(PY) bench/run.py --database-url $(PG_URL)

check-deploy: lint

clean:
	rm -rf $(VENV) db.sqlite3* var staticfiles
