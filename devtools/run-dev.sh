#!/usr/bin/env bash
# DEVELOPMENT: what `make run` does after installing. Applies migrations, starts the stand-in for
# the sibling services, Telegram and drand when no sibling URL is configured, and serves on 8004.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export APP_ENV=${APP_ENV:-development}
export PORT=${PORT:-8004}
export PUBLIC_BASE_URL=${PUBLIC_BASE_URL:-http://127.0.0.1:$PORT}  # the draw page links to itself
export GUNICORN_BIND=${GUNICORN_BIND:-127.0.0.1:$PORT}
# Local defaults only; a real deployment sets these explicitly.
export REQUIRE_SERVICE_AUTH=${REQUIRE_SERVICE_AUTH:-false}
STANDIN_PORT=${STANDIN_PORT:-8090}

standin_pid=""
cleanup() { [ -n "$standin_pid" ] && kill "$standin_pid" 2>/dev/null || true; }
trap cleanup EXIT INT TERM

if [ -z "${TELEGIVE_GIVEAWAY_URL:-}${TELEGIVE_CHANNEL_URL:-}${TELEGIVE_AUTH_URL:-}" ]; then
  export SERVICE_TO_SERVICE_SECRET=${SERVICE_TO_SERVICE_SECRET:-dev-service-secret-not-for-production}
  "$VENV/bin/python" devtools/standin.py --port "$STANDIN_PORT" --service-secret "$SERVICE_TO_SERVICE_SECRET" &
  standin_pid=$!
  base="http://127.0.0.1:$STANDIN_PORT"
  export TELEGIVE_GIVEAWAY_URL=$base TELEGIVE_CHANNEL_URL=$base TELEGIVE_AUTH_URL=$base TELEGRAM_API_BASE=$base
  # The stand-in's Telegram has no flood limit (a real bot's budget: TELEGRAM_CALLS_PER_SECOND).
  export TELEGRAM_CALLS_PER_SECOND=${TELEGRAM_CALLS_PER_SECOND:-100000}
  # The stand-in is also the drand relay of a development chain (its key is public: never draw on
  # it for real), so draws work offline; DRAND_URLS set by hand keeps the real relays instead.
  if [ -z "${DRAND_URLS:-}" ]; then
    eval "$("$VENV/bin/python" devtools/drand_chain.py env "$base")"
  fi
  echo "make run: no sibling URLs configured; using the DEVELOPMENT stand-in at $base"
fi

"$VENV/bin/flask" db upgrade
"$VENV/bin/gunicorn" -c gunicorn.conf.py "app:create_app()" &
web_pid=$!
wait "$web_pid"
