"""Gunicorn settings for every environment; each value can be changed from the environment.

Workers fork after the application is imported but before it is created (no ``preload_app``),
so every worker builds its own database pool and Redis client. With ``gevent`` workers,
psycopg2 is made cooperative right after the fork (psycogreen), before any connection exists;
requests, redis-py and the standard library are patched by gunicorn's gevent worker itself.
"""

import os
from pathlib import Path

if Path(".env").exists():  # local work only; deployments set real environment variables
    from dotenv import load_dotenv

    load_dotenv(".env")

bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8004')}")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "1000"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
backlog = 2048
accesslog = None  # the service writes its own JSON access line per request
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()


def post_fork(server, worker):
    """Make psycopg2 cooperative in gevent workers, before the app opens any connection."""
    if worker_class == "gevent":
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()
