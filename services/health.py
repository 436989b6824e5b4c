"""Readiness: can this instance serve? The database (at the expected schema) and Redis if used."""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis
from flask import current_app
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from extensions import VERSION_TABLE, db, get_redis


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
        try:
            with db.engine.connect() as connection:
                version = connection.execute(
                    text(f"SELECT version_num FROM {VERSION_TABLE}")  # noqa: S608 (constant)
                ).scalar()
        except SQLAlchemyError as error:
            if "version" in str(error.orig if hasattr(error, "orig") else error).lower():
                return False, "schema not migrated: run `flask db upgrade`"
            raise
        if expected and version != expected:
            return False, f"schema at {version}, code expects {expected}: run `flask db upgrade`"
        return True, "ok"

    return _timed("database", probe)


def _redis() -> Check:
    client = get_redis()

    def probe() -> tuple[bool, str]:
        if client is None:
            return False, "not configured"
        client.ping()
        return True, "ok"

    return _timed("redis", probe)
