# Two commands for a fresh machine with PostgreSQL and RabbitMQ on localhost:
#   make run    installs what running needs (no test or lint tools), migrates, runs the service
#   make test   installs everything, runs the whole test suite (what CI runs)
SHELL := /bin/bash
# The ledger's two database roles (docs/operations.md, "Database roles"): the service runs as
# ledger_service, the owner migrates; the server's superuser creates both and the database
# (`migrate --create-roles`), and the tests' own databases and roles. Passwords, where the server
# checks them, go in the URLs.
export DATABASE_URL ?= postgresql://ledger_service@127.0.0.1:5432/sample_ledger
export DATABASE_OWNER_URL ?= postgresql://ledger_owner@127.0.0.1:5432/sample_ledger
export DATABASE_ADMIN_URL ?= postgresql://postgres@127.0.0.1:5432/sample_ledger
export AMQP_URL ?= amqp://guest:guest@127.0.0.1:5672/
# uv from PATH when there is one, else the copy pip installs into this Python (no PATH guessing).
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: bootstrap install install-run run demo test lint faults bench

bootstrap:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv

# Everything: the service and the development tools (pytest, ruff, mypy, ...), for `test` and `lint`.
install: bootstrap
	$(UV) sync --frozen

# Only what running needs. --inexact leaves development tools that an earlier `make test` installed;
# `uv run --no-sync` then runs without installing the dev group (plain `uv run` would).
install-run: bootstrap
	$(UV) sync --frozen --no-dev --inexact

run: install-run
	$(UV) run --no-sync sample-ledger migrate --create-roles
	$(UV) run --no-sync sample-ledger run

demo: install-run
	$(UV) run --no-sync sample-ledger migrate --create-roles
	$(UV) run --no-sync sample-ledger demo

# Tests create (and drop) their own databases and roles on the server named by DATABASE_ADMIN_URL (a
# superuser's) and their own prefixed exchanges and queues; REQUIRE_SERVICES=1 makes a missing service
# fail instead of skip.
test: install
	REQUIRE_SERVICES=1 $(UV) run pytest

lint: install
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy .
	$(UV) run lint-imports

# The fault suite's long variants (20,000-message crash loop, 10 s outages, ...): about 15 minutes.
# Writes the results table to docs/reliability-results.md. The short variants run in `make test`.
faults: install
	rm -f /tmp/sample-ledger-faults.jsonl
	FAULTS=long FAULTS_RESULTS=/tmp/sample-ledger-faults.jsonl REQUIRE_SERVICES=1 $(UV) run pytest tests/faults -q
	$(UV) run python -m tests.faults.report /tmp/sample-ledger-faults.jsonl > docs/reliability-results.md

# The performance benchmark (bench/README.md): the service against raw broker and PostgreSQL floors, on
# databases and a vhost of its own (removed afterwards); about 5 minutes on 2 cores. Prints one table and
# writes bench/results/<UTC time>.json. Options: make bench BENCH_ARGS="--quick" (or --growth, --soak 10, --help).
bench: install
	$(UV) run python -m bench $(BENCH_ARGS)
