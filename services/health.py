"""Readiness: can this instance serve? The database (at the expected schema) and Redis if used."""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar
from dataclasses import dataclass

import redis
from alembic.runtime.migration import MigrationContext
from flask import current_app
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from extensions import VERSION_TABLE, db, get_redis

_alembic_log = logging.getLogger("alembic.runtime.migration")
_probing: ContextVar[bool] = ContextVar("telegive_schema_probe", default=False)


@dataclass(frozen=True)
class Check:
    """One dependency's state."""

    name: str
    ok: bool
    detail: str
    duration_ms: float


def readiness() -> list[Check]:
    """Check every dependency the service cannot work without."""
    checks = [_database()]
    if get_redis() is not None:
        checks.append(_redis())
    return checks


def _timed(name: str, probe) -> Check:
    started = time.perf_counter()
    try:
        ok, detail = probe()
    except (SQLAlchemyError, redis.RedisError, OSError) as error:
        ok, detail = False, f"unavailable ({type(error).__name__})"
    finally:
        elapsed = round((time.perf_counter() - started) * 1000, 1)
    return Check(name=name, ok=ok, detail=detail, duration_ms=elapsed)


def _database() -> Check:
    expected = current_app.extensions.get("telegive.schema_head")

    def probe() -> tuple[bool, str]:
        with db.engine.connect() as connection:
            version = _schema_version(connection)
        if version is None:
            return False, "schema not migrated: run `flask db upgrade`"
        if expected and version != expected:
            return False, f"schema at {version}, code expects {expected}: run `flask db upgrade`"
        return True, "ok"

    return _timed("database", probe)


def _schema_version(connection: Connection) -> str | None:
    """The revision the database is at; None when the version table is missing or empty."""
    # Alembic logs "Context impl ..." and "Will assume ... DDL" at INFO for every context it
    # makes; a readiness probe is no migration, so those lines are kept out of the log.
    _alembic_log.addFilter(_outside_probe)  # once: a filter is added only if not there yet
    token = _probing.set(True)
    try:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    finally:
        _probing.reset(token)
    return context.get_current_revision()


def _outside_probe(_record: logging.LogRecord) -> bool:
    return not _probing.get()


def _redis() -> Check:
    client = get_redis()

    def probe() -> tuple[bool, str]:
        if client is None:
            return False, "not configured"
        client.ping()
        return True, "ok"

    return _timed("redis", probe)
