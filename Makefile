# Two commands: `make run` and `make test`. Everything they need, they install.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
DATA := $(or $(PRIZMED_DATA_DIR),var)
# The services run of `make test`; PRIZMED_REQUIRE_SERVICES=1 (CI) makes their absence fatal.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/prizmed
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

# The dashboard's viewer: OHIF's prebuilt dist/ from the npm registry (npm caches the package).
OHIF_VERSION := 3.12.10
VIEWER_ROOT := $(or $(PRIZMED_VIEWER_ROOT),build/ohif)

.PHONY: run test lint viewer check-services clean

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

# Embedded defaults (SQLite, in-process cache, channel layer and tasks) unless DATABASE_URL /
# REDIS_URL are set. DEBUG stays off; the secret key is generated once into var/ (where
# manage.py finds it too). Links in answers name this PORT unless PRIZMED_PUBLIC_URL is set.
run: $(VENV)/.runtime viewer
	@mkdir -p $(DATA) && test -s $(DATA)/secret_key || $(PY) -c "import secrets; print(secrets.token_urlsafe(50))" > $(DATA)/secret_key
	@export SECRET_KEY="$${SECRET_KEY:-$$(cat $(DATA)/secret_key)}" && \
	export PRIZMED_PUBLIC_URL="$${PRIZMED_PUBLIC_URL:-http://127.0.0.1:$(PORT)}" && \
	$(PY) manage.py migrate -v0 && \
	$(PY) manage.py demo && \
	echo "Serving on http://127.0.0.1:$(PORT)  (API /api/v2/, docs /api/docs/, dashboard /admin/)" && \
	exec $(VENV)/bin/uvicorn prizmed.asgi:application --host 127.0.0.1 --port $(PORT) --lifespan off --no-access-log --ws-max-size 8388608 --ws-max-queue 4

viewer: $(VIEWER_ROOT)/.ohif-$(OHIF_VERSION)

$(VIEWER_ROOT)/.ohif-$(OHIF_VERSION):
	rm -rf $(VIEWER_ROOT) && mkdir -p $(VIEWER_ROOT)
	cd $(VIEWER_ROOT) && npm pack --silent @ohif/app@$(OHIF_VERSION) >/dev/null && \
		tar -xzf ohif-app-$(OHIF_VERSION).tgz --strip-components=2 package/dist && rm ohif-app-$(OHIF_VERSION).tgz
	$(PYTHON) -m dashboard.viewer_install $(VIEWER_ROOT)
	touch $@

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	# The django-stubs plugin loads the settings, which refuse to start without a secret key.
	SECRET_KEY=mypy-only-not-a-secret $(VENV)/bin/mypy .
	# The layers and the no-cycle rule of pyproject.toml [tool.importlinter] (docs/decisions.md).
	$(VENV)/bin/lint-imports --no-cache

check-services:
	@$(PY) -c "import psycopg, redis; psycopg.connect('$(TEST_DATABASE_URL)'.rsplit('/', 1)[0] + '/postgres').close(); redis.Redis.from_url('$(TEST_REDIS_URL)').ping()"

# The suite runs twice: embedded (what `make run` uses), then against PostgreSQL and Redis.
test: lint viewer
	env -u DATABASE_URL -u REDIS_URL $(VENV)/bin/pytest
	@if $(MAKE) -s check-services 2>/dev/null; then \
		DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(VENV)/bin/pytest; \
	elif [ "$$PRIZMED_REQUIRE_SERVICES" = 1 ]; then \
		echo "PostgreSQL or Redis is unreachable and PRIZMED_REQUIRE_SERVICES=1" >&2; exit 1; \
	else \
		echo "PostgreSQL or Redis unreachable: skipped the services run (CI requires it)"; \
	fi

clean:
	rm -rf $(VENV) var build

# Issue 14: the OpenAPI contract. docs/openapi.json is the schema /api/schema/ serves, committed so
# every contract change shows as a diff; tests/test_openapi_contract.py fails when they differ.
# Needs no database or secret of its own: the schema is built from the code alone.
.PHONY: openapi
openapi: $(VENV)/.runtime
	@tmp=$$(mktemp -d) && env -u DATABASE_URL -u REDIS_URL SECRET_KEY=openapi-only-not-a-secret PRIZMED_DATA_DIR=$$tmp \
		$(PY) manage.py spectacular --format openapi-json --validate --fail-on-warn --file docs/openapi.json; \
		status=$$?; rm -rf $$tmp; exit $$status
