"""Readiness: a database without our schema, or with an older one, is not ready."""

from __future__ import annotations

import logging

from sqlalchemy import create_engine, text

from extensions import VERSION_TABLE
from services.health import readiness


def database_check(app):
    with app.app_context():
        [check] = [c for c in readiness() if c.name == "database"]
    return check


def test_a_database_without_our_schema_is_not_ready(make_app, tmp_path):
    app = make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'empty.db'}")
    check = database_check(app)
    assert check.ok is False
    assert check.detail == "schema not migrated: run `flask db upgrade`"


def test_a_database_at_an_older_revision_is_not_ready(make_app, tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f"CREATE TABLE {VERSION_TABLE} (version_num VARCHAR(32))"))
        connection.execute(text(f"INSERT INTO {VERSION_TABLE} VALUES ('0001')"))
    engine.dispose()
    app = make_app(DATABASE_URL=url)
    head = app.extensions["telegive.schema_head"]
    check = database_check(app)
    assert check.ok is False
    assert check.detail == f"schema at 0001, code expects {head}: run `flask db upgrade`"


def test_the_migrated_database_is_ready_and_the_probe_writes_no_migration_log_lines(app, caplog):
    caplog.set_level(logging.INFO)
    response = app.test_client().get("/health/ready")
    assert response.status_code == 200
    assert database_check(app).detail == "ok"
    loggers = {record.name for record in caplog.records}
    assert "telegive.access" in loggers  # the request was logged...
    assert not any(name.startswith("alembic") for name in loggers)  # ...and nothing else about it
