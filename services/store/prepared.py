"""Server-side prepared statements for the registration's hot path on PostgreSQL.

Parsing and planning the registration's write cost the database more than running it (the
figures are in bench/findings.md). Each statement is prepared on a connection the first time that
connection runs it; the set of prepared names lives in the pooled connection's ``info``, which
SQLAlchemy empties when it replaces the connection. (A pooler in transaction mode, such as
PgBouncer's, would break this: the service expects a session per connection, as Railway's
PostgreSQL gives it.)
"""

from __future__ import annotations

import re
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


@dataclass(frozen=True)
class Prepared:
    """A statement written with ``%(name)s`` placeholders, and each parameter's type."""

    name: str
    sql: str
    types: dict[str, str]

    def definition(self) -> str:
        order = list(self.types)
        missing = set(_PLACEHOLDER.findall(self.sql)) - set(order)
        if missing:
            raise ValueError(f"{self.name}: no type for {sorted(missing)}")
        body = _PLACEHOLDER.sub(lambda match: f"${order.index(match.group(1)) + 1}", self.sql)
        types = f" ({', '.join(self.types.values())})" if self.types else ""
        return f"PREPARE {self.name}{types} AS {body}"

    def call(self) -> str:
        arguments = ", ".join(f"%({name})s" for name in self.types)
        return f"EXECUTE {self.name} ({arguments})" if arguments else f"EXECUTE {self.name}"


def fetch_one(
    engine: Engine, statement: Prepared, parameters: dict[str, Any], *, first: str = ""
) -> tuple | None:
    """Run ``statement`` (after ``first``, a statement sent in the same string, if given) on one
    of ``engine``'s pooled connections, and return its first row.

    Straight on the DBAPI connection: SQLAlchemy's Connection and result objects were a large part
    of a registration's CPU (bench/findings.md). What SQLAlchemy would do is kept: errors are raised
    as its exceptions (``OperationalError`` and the like, answered with a 503), and a connection
    found broken is dropped from the pool.
    """
    sql = f"{first};\n{statement.call()}" if first else statement.call()
    dbapi_error = engine.dialect.loaded_dbapi.Error
    try:
        connection = engine.raw_connection()
    except dbapi_error as error:  # the database cannot be reached: as Engine.connect() says it
        raise DBAPIError.instance(
            None, None, error, dbapi_error, connection_invalidated=True
        ) from error
    cursor = None
    try:
        cursor = connection.cursor()
        prepared = connection.info.setdefault("telegive.prepared", set())
        if statement.name not in prepared:
            cursor.execute(statement.definition())
            prepared.add(statement.name)
        cursor.execute(sql, parameters)
        return cursor.fetchone()
    except dbapi_error as error:
        broken = engine.dialect.is_disconnect(error, connection.dbapi_connection, cursor)
        if broken:
            connection.invalidate(error)
        raise DBAPIError.instance(
            sql, parameters, error, dbapi_error, connection_invalidated=broken
        ) from error
    finally:
        if cursor is not None and not cursor.closed:
            with suppress(dbapi_error):  # a broken connection's cursor: already reported above
                cursor.close()
        connection.close()
