"""Prepared statements on the raw pooled connection: prepared once per connection, SQLAlchemy's
exceptions on failure, and a connection the server dropped replaced, statements prepared again."""

from __future__ import annotations

import pytest
from sqlalchemy import exc, text

from extensions import db
from services.store import prepared
from services.store.prepared import Prepared

pytestmark = pytest.mark.postgres

DOUBLE = Prepared(
    "test_double", "SELECT %(value)s * 2, %(label)s", {"value": "int", "label": "text"}
)
PREPARED_HERE = Prepared(
    "test_prepared_here",
    "SELECT count(*) FROM pg_prepared_statements WHERE name = %(name)s",
    {"name": "text"},
)
BACKEND = Prepared("test_backend", "SELECT pg_backend_pid()", {})


def test_a_statement_is_prepared_once_per_connection(app):
    engine = app.extensions["telegive.store"].autocommit
    assert prepared.fetch_one(engine, DOUBLE, {"value": 21, "label": "a"}) == (42, "a")
    assert prepared.fetch_one(engine, DOUBLE, {"value": 2, "label": "b"}) == (4, "b")
    assert prepared.fetch_one(engine, PREPARED_HERE, {"name": "test_double"}) == (1,)


def test_a_connection_the_server_dropped_is_replaced_and_statements_prepared_again(app):
    engine = app.extensions["telegive.store"].autocommit
    (pid,) = prepared.fetch_one(engine, BACKEND, {})
    with app.app_context():
        db.session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        db.session.commit()
    with pytest.raises(exc.OperationalError) as raised:  # answered with a 503 by the app
        prepared.fetch_one(engine, DOUBLE, {"value": 1, "label": "x"})
    assert raised.value.connection_invalidated
    assert prepared.fetch_one(engine, DOUBLE, {"value": 5, "label": "c"}) == (10, "c")
    assert prepared.fetch_one(engine, BACKEND, {}) != (pid,)


def test_a_failing_statement_raises_sqlalchemys_error_and_leaves_the_connection_usable(app):
    engine = app.extensions["telegive.store"].autocommit
    divide = Prepared("test_divide", "SELECT 1 / %(value)s", {"value": "int"})
    with pytest.raises(exc.DataError):
        prepared.fetch_one(engine, divide, {"value": 0})
    assert prepared.fetch_one(engine, divide, {"value": 1}) == (1,)


def test_a_parameter_without_a_type_is_refused_before_reaching_the_database():
    with pytest.raises(ValueError, match="no type for"):
        Prepared("test_bad", "SELECT %(a)s + %(b)s", {"a": "int"}).definition()


def test_the_first_statement_runs_in_the_same_transaction(app):
    engine = app.extensions["telegive.store"].autocommit
    setting = Prepared("test_setting", "SELECT current_setting('statement_timeout')", {})
    inside = prepared.fetch_one(engine, setting, {}, first="SET LOCAL statement_timeout = 1234")
    assert inside == ("1234ms",)
    assert prepared.fetch_one(engine, setting, {}) != ("1234ms",)
