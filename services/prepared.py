"""Server-side prepared statements for the registration's hot path on PostgreSQL.

Parsing and planning the registration's write cost the database more than running it (measured
with bench/run.py's CPU meter and a loop of the bare statement: 0.83 ms a statement as text,
0.5 ms prepared). Each statement is prepared on a connection the first time that connection runs
it; the set of prepared names lives in the pooled connection's ``info``, which SQLAlchemy empties
when it replaces the connection. (A pooler in transaction mode, such as PgBouncer's, would break
this: the service expects a session per connection, as Railway's PostgreSQL gives it.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, CursorResult

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


def execute(
    connection: Connection, statement: Prepared, parameters: dict[str, Any], *, first: str = ""
) -> CursorResult:
    """Run ``statement`` (after ``first``, a statement sent in the same string, if given)."""
    prepared = connection.connection.info.setdefault("telegive.prepared", set())
    if statement.name not in prepared:
        connection.exec_driver_sql(statement.definition())
        prepared.add(statement.name)
    sql = f"{first};\n{statement.call()}" if first else statement.call()
    return connection.exec_driver_sql(sql, parameters)
