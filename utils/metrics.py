"""Prometheus metrics, correct under several gunicorn workers.

gunicorn.conf.py sets PROMETHEUS_MULTIPROC_DIR before the workers fork, so every worker writes its
samples to files there and a scrape adds them up (``render``). Without it (``flask run``, tests)
the metrics live in the process's default registry.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Set for gunicorn; a `flask` command inheriting it must not fail on a missing directory.
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

_PREFIX = "telegive_participant"
# Every label value that comes from a request is one of a closed set (the method one of these or
# "other"; the route the matched rule or "unmatched"; the status one the service answers), so
# nothing a client sends can add series to /metrics or samples to the multiprocess files.
HTTP_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}
)
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

HTTP_REQUESTS = Counter(
    f"{_PREFIX}_http_requests_total", "Requests served", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    f"{_PREFIX}_http_request_duration_seconds",
    "Time to answer a request (streamed bodies: until the first byte)",
    ["method", "route"],
    buckets=_LATENCY_BUCKETS,
)
REGISTRATIONS = Counter(
    f"{_PREFIX}_registrations_total",
    "Registration outcomes (entered, already_registered, captcha_required, not_subscribed, ...)",
    ["outcome"],
)
CAPTCHA_OUTCOMES = Counter(
    f"{_PREFIX}_captcha_outcomes_total",
    "Captcha transitions (issued, pending, wrong, repeated, new_question, passed, locked, ...)",
    ["outcome"],
)
CAPTCHA_LOCKOUTS = Counter(f"{_PREFIX}_captcha_lockouts_total", "Users locked out by the captcha")
SUBSCRIPTION_CHECKS = Counter(
    f"{_PREFIX}_subscription_checks_total",
    "Subscription checks: subscribed, not_subscribed, or unavailable (cannot verify)",
    ["result"],
)
DRAWS = Counter(
    f"{_PREFIX}_draws_total", "Draw requests: recorded or repeated, per kind", ["kind", "outcome"]
)
DRAW_RECHECK_WAITS = Counter(
    f"{_PREFIX}_draw_recheck_waits_total",
    "Draw re-check questions held back by Telegram's pace (the bot's budget or a flood wait) and "
    "asked again",
)
OUTGOING_REQUESTS = Counter(
    f"{_PREFIX}_outgoing_requests_total", "Calls to siblings and Telegram", ["peer", "outcome"]
)
OUTGOING_LATENCY = Histogram(
    f"{_PREFIX}_outgoing_request_duration_seconds",
    "Time of calls to siblings and Telegram",
    ["peer"],
    buckets=_LATENCY_BUCKETS,
)
# The per-bot budget of Telegram calls (services/telegram_budget.py). No bot label: bots are as
# many as accounts; the flood wait's log line names the bot.
TELEGRAM_BUDGET_WAIT = Histogram(
    f"{_PREFIX}_telegram_budget_wait_seconds",
    "Time a Telegram call waited for a slot of its bot's budget (calls that went ahead)",
    buckets=(0.001, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
TELEGRAM_BUDGET_REFUSALS = Counter(
    f"{_PREFIX}_telegram_budget_refusals_total",
    "Telegram calls not made: over_budget (no slot within the wait) or rate_limited (flood wait)",
    ["reason"],
)
TELEGRAM_FLOOD_WAITS = Counter(
    f"{_PREFIX}_telegram_flood_waits_total", "429 answers (flood waits) received from Telegram"
)
# Entries pending verification (services/pending.py). The counter is counted by the process that
# does the work (registrations in the web workers; the verifier wherever it runs: its own log
# line sums up each run). The gauges are read from the queue in the database when /metrics is
# served, so they are true whichever process verifies; "mostrecent": every worker reads the same.
PENDING_VERIFICATIONS = Counter(
    f"{_PREFIX}_pending_verifications_total",
    "Entries pending verification: enqueued (admitted while Telegram was busy), verified, "
    "excluded (not subscribed), unverifiable (cannot verify: retried later), "
    "postponed (no spare slot of the bot's budget)",
    ["outcome"],
)
PENDING_QUEUE = Gauge(
    f"{_PREFIX}_pending_verification_queue",
    "Entries still pending verification (rows in the queue)",
    multiprocess_mode="mostrecent",
)
PENDING_DUE = Gauge(
    f"{_PREFIX}_pending_verification_queue_due",
    "Pending entries a verifier may take now (not leased, not backing off)",
    multiprocess_mode="mostrecent",
)
PENDING_OLDEST = Gauge(
    f"{_PREFIX}_pending_verification_oldest_seconds",
    "Age of the oldest entry still pending verification (0 when none): growing means not draining",
    multiprocess_mode="mostrecent",
)
CACHE_LOOKUPS = Counter(
    f"{_PREFIX}_cache_requests_total", "Cache lookups by kind of entry", ["cache", "result"]
)


def method_label(method: str) -> str:
    """The request method as a label: a standard method as it is, anything invented "other"."""
    return method if method in HTTP_METHODS else "other"


def render() -> tuple[bytes, str]:
    """The exposition text of every metric, summed over all workers when there are several."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


# --- the drand beacon (services/beacon.py) -------------------------------------------------------
# outcome: valid (a relay's verified round), not_yet (the round not published there yet),
# invalid (a bad signature or another round: skipped), unavailable (no usable answer), and per
# fetch, gave_up (no valid answer by the deadline).
BEACON_FETCHES = Counter(
    f"{_PREFIX}_beacon_fetches_total",
    "Answers of drand relays by outcome (valid, not_yet, invalid, unavailable) and fetches gave_up",
    ["outcome"],
)
BEACON_FETCH_DURATION = Histogram(
    f"{_PREFIX}_beacon_fetch_duration_seconds",
    "Time from a round's publication (or the call, if later) to a relay's verified answer",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)


# --- appended for the operations dashboard and alerts (ops/) --------------------------------------
# Every error answer by its error_code (a closed set: services/errors.py and the HTTP codes of
# routes/errors.py), so an operator can tell a database outage from a refused captcha.
ERROR_RESPONSES = Counter(
    f"{_PREFIX}_error_responses_total", "Error answers by error_code", ["code"]
)
# The database pools of each worker (services/store/pools.py): "transactions" (the ORM's), and on
# PostgreSQL "autocommit" and "streams". livesum: a scrape adds up the workers alive now.
DB_POOL_IN_USE = Gauge(
    f"{_PREFIX}_db_pool_connections_in_use",
    "Database connections lent out by the pool now",
    ["pool"],
    multiprocess_mode="livesum",
)
DB_POOL_SIZE = Gauge(
    f"{_PREFIX}_db_pool_size",
    "Connections the pool keeps (DB_POOL_SIZE; no overflow on PostgreSQL)",
    ["pool"],
    multiprocess_mode="livesum",
)


def declare_series(url_map) -> None:
    """Create at zero the series of rare events: the latency of every route (``url_map``: the
    application's werkzeug Map), the draws' outcomes and the beacon's. A series that first
    appears already at 1 shows Prometheus no increase, so without this the first draw of every
    worker would be missing from the dashboard's draw panels."""
    for rule in url_map.iter_rules():
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            HTTP_LATENCY.labels(method_label(method), rule.rule)
    for kind in ("draw", "reroll"):
        for outcome in ("recorded", "repeated"):
            DRAWS.labels(kind, outcome)
    for outcome in ("valid", "not_yet", "invalid", "unavailable", "gave_up"):
        BEACON_FETCHES.labels(outcome)
