"""How full the database pools are, for /metrics: each pool's size and the connections it has
lent out now (SQLAlchemy's checkout and checkin events), per worker."""

from __future__ import annotations

from sqlalchemy import Engine, event

from utils.metrics import DB_POOL_IN_USE, DB_POOL_SIZE


def count_connections(pools: dict[str, Engine]) -> None:
    """Report each named engine's pool under its name (the ``pool`` label)."""
    for name, engine in pools.items():
        in_use = DB_POOL_IN_USE.labels(name)
        size = getattr(engine.pool, "size", None)  # QueuePool's; the others keep no fixed number
        DB_POOL_SIZE.labels(name).set(size() if callable(size) else 0)
        # A connection invalidated while lent out is still checked in (as None): the count
        # returns to zero whatever happened to it. dispose() keeps these listeners.
        event.listen(engine, "checkout", lambda *_args, gauge=in_use: gauge.inc())
        event.listen(engine, "checkin", lambda *_args, gauge=in_use: gauge.dec())
