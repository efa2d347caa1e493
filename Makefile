# Two commands for a fresh machine with PostgreSQL and RabbitMQ on localhost:
#   make run    installs what is needed, migrates, runs the service
#   make test   installs what is needed, runs the whole test suite (what CI runs)
SHELL := /bin/bash
export DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/sample_ledger
export AMQP_URL ?= amqp://guest:guest@127.0.0.1:5672/
# uv from PATH when there is one, else the copy pip installs into this Python (no PATH guessing).
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: install run demo test lint

install:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen

run: install
	$(UV) run sample-ledger migrate
	$(UV) run sample-ledger run

demo: install
	$(UV) run sample-ledger migrate
	$(UV) run sample-ledger demo

# Tests create (and drop) their own databases on the server named by DATABASE_URL and their own
# prefixed exchanges and queues; REQUIRE_SERVICES=1 makes a missing service fail instead of skip.
test: install
	REQUIRE_SERVICES=1 $(UV) run pytest

lint: install
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy .
	$(UV) run lint-imports
