"""Gunicorn settings for every environment; each value can be changed from the environment.

Workers fork after the application is imported but before it is created (no ``preload_app``),
so every worker builds its own database pool and Redis client. With ``gevent`` workers,
psycopg2 is made cooperative right after the fork (psycogreen), before any connection exists;
requests, redis-py and the standard library are patched by gunicorn's gevent worker itself.

Metrics: every worker writes its Prometheus samples under PROMETHEUS_MULTIPROC_DIR (set here,
before the fork), and ``/metrics`` adds them up. METRICS_PORT additionally serves them from the
master process on an internal port (METRICS_BIND, default 127.0.0.1).
"""

import gc
import os
import shutil
import sys
import tempfile
from pathlib import Path

if Path(".env").exists():  # local work only; deployments set real environment variables
    from dotenv import load_dotenv

    load_dotenv(".env")

_OWN_METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="telegive-metrics-"))

bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8004')}")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# gevent with PostgreSQL: one worker holds hundreds of requests waiting on Telegram or a sibling
# (bench/REPORT.md compares the worker classes; and /health stays fast while a sibling hangs).
# gthread with the SQLite default: sqlite3 is not cooperative, and a greenlet waiting on its lock
# would block the whole worker.
_postgres = os.environ.get("DATABASE_URL", "").startswith("postgres")
worker_class = os.environ.get("GUNICORN_WORKER_CLASS") or ("gevent" if _postgres else "gthread")
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "1000"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
backlog = 2048
accesslog = None  # the service writes its own JSON access line per request
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()


def on_starting(server):
    """Refuse to start with a bad configuration: one sentence naming the variable, no traceback."""
    from config import ConfigError, Settings

    try:
        Settings.from_env()
    except ConfigError as error:
        sys.stderr.write(f"telegive-participant cannot start: {error}\n")
        sys.exit(1)
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    shutil.rmtree(directory, ignore_errors=True)  # samples of a previous run are not ours
    directory.mkdir(parents=True, exist_ok=True)


def when_ready(server):
    port = os.environ.get("METRICS_PORT")
    if port:
        from prometheus_client import CollectorRegistry, multiprocess, start_http_server

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        start_http_server(
            int(port), addr=os.environ.get("METRICS_BIND", "127.0.0.1"), registry=registry
        )


def post_fork(server, worker):
    """Make psycopg2 cooperative in gevent workers, before the app opens any connection."""
    if worker_class == "gevent":
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()


def post_worker_init(worker):
    """The application is built: move everything alive now out of the garbage collector's sight.

    The app, its models and its libraries never become garbage; left in view, every full
    collection walks all of them (a pause in the worker that stalls every request it holds:
    bench/findings.md).
    """
    gc.collect()
    gc.freeze()


def on_exit(server):
    """Remove the samples directory this configuration created for itself."""
    if _OWN_METRICS_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def child_exit(server, worker):
    """A dead worker's live samples (gauges) must not be summed any more."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
