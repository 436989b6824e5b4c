"""Prepared statements: written once per connection, and still right after the connection is
replaced (a restarted database forgets every prepared statement)."""

from __future__ import annotations

import pytest

from services import prepared
from services.prepared import Prepared

pytestmark = pytest.mark.postgres

DOUBLE = Prepared(
    "test_double", "SELECT %(value)s * 2, %(label)s", {"value": "int", "label": "text"}
)


def test_a_statement_is_prepared_once_per_connection_and_after_a_reconnect(app):
    engine = app.extensions["telegive.autocommit_engine"]
    with app.app_context(), engine.connect() as connection:
        assert prepared.execute(connection, DOUBLE, {"value": 21, "label": "a"}).one() == (42, "a")
        assert prepared.execute(connection, DOUBLE, {"value": 2, "label": "b"}).one() == (4, "b")
        count = connection.exec_driver_sql(
            "SELECT count(*) FROM pg_prepared_statements WHERE name = 'test_double'"
        ).scalar()
        assert count == 1
        # The server forgets (as after a restart); the pool replaces the broken connection.
        connection.exec_driver_sql("DEALLOCATE test_double")
        connection.invalidate()
    with app.app_context(), engine.connect() as connection:
        assert prepared.execute(connection, DOUBLE, {"value": 5, "label": "c"}).one() == (10, "c")


def test_a_parameter_without_a_type_is_refused_before_reaching_the_database():
    with pytest.raises(ValueError, match="no type for"):
        Prepared("test_bad", "SELECT %(a)s + %(b)s", {"a": "int"}).definition()


def test_the_first_statement_runs_in_the_same_transaction(app):
    engine = app.extensions["telegive.autocommit_engine"]
    setting = Prepared("test_setting", "SELECT current_setting('statement_timeout')", {})
    with app.app_context(), engine.connect() as connection:
        inside = prepared.execute(
            connection, setting, {}, first="SET LOCAL statement_timeout = 1234"
        ).scalar()
        assert inside == "1234ms"
        after = prepared.execute(connection, setting, {}).scalar()
        assert after != "1234ms"
