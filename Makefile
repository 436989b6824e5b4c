# The two commands a newcomer needs: `make run` and `make test`. Both set everything up first.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
DEPS := $(VENV)/.deps-installed

.PHONY: install run test lint format migrate standin demo load chaos fuzz bench bench-smoke clean

$(DEPS): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(DEPS)

install: $(DEPS)  ## create the virtualenv and install pinned dependencies

run: $(DEPS)  ## migrate and serve on :8004 (SQLite, no Redis, the development stand-in)
	VENV=$(VENV) devtools/run-dev.sh

test: $(DEPS)  ## the test suite (SQLite; PostgreSQL/Redis when TEST_DATABASE_URL/TEST_REDIS_URL are set)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(DEPS)  ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(DEPS)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrate: $(DEPS)  ## apply migrations to DATABASE_URL (or the SQLite default)
	APP_ENV=$${APP_ENV:-development} REQUIRE_SERVICE_AUTH=$${REQUIRE_SERVICE_AUTH:-false} $(BIN)/flask db upgrade

standin: $(DEPS)  ## only the development stand-in for the siblings and Telegram, on :8090
	$(BIN)/python devtools/standin.py --port 8090

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache

demo: $(DEPS)  ## a scripted giveaway on the defaults and the stand-in, verified at the end
	VENV=$(VENV) $(BIN)/python devtools/demo.py

load: $(DEPS)  ## minutes of mixed traffic on two instances, then integrity checks (private PostgreSQL/Redis)
	$(BIN)/python devtools/load.py $(LOAD_ARGS)

chaos: $(DEPS)  ## PostgreSQL and Redis stopped and restarted under load, then hostile clients beside registrations on two instances (private servers), then integrity checks
	$(BIN)/python devtools/chaos.py $(CHAOS_ARGS)

FUZZ_ARGS ?= --examples 200
fuzz: $(DEPS)  ## schemathesis on every operation (FUZZ_ARGS: --strict, --url URL --token T, --database-url, --redis)
	$(BIN)/python devtools/fuzz.py $(FUZZ_ARGS)

bench: $(DEPS)  ## benchmarks with targets against the ceiling app: bench/REPORT.md, bench/results.json
	@command -v wrk >/dev/null || { echo "make bench needs wrk: apt-get install wrk"; exit 1; }
	$(BIN)/python bench/run.py $(BENCH_ARGS)

bench-smoke: $(DEPS)  ## every benchmark at tiny scale (about 90 s: each draw waits up to 3 s for its beacon round); fails only if one cannot run
	@command -v wrk >/dev/null || { echo "make bench-smoke needs wrk: apt-get install wrk"; exit 1; }
	$(BIN)/python bench/run.py --smoke
