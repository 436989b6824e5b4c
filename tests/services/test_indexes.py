"""Every read the service makes is an index scan: the real statements, EXPLAINed on PostgreSQL.

The statements are captured while the service functions run, then explained with sequential
scans disabled: a plan that still scans one of our tables sequentially has no usable index."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, text

from extensions import db
from services import audit, draws, history, listing
from services.delivery import update_delivery_status
from services.store import postgres, store
from tests.factories import add_entries
from utils.timeutil import utcnow

pytestmark = pytest.mark.postgres


def full_scans(plan: dict, leading: dict[str, str], under_limit: bool = False) -> list[str]:
    """Scans of our tables that read everything: sequential scans, and index scans that neither
    narrow on the index's leading column nor feed a LIMIT in index order."""
    found = []
    node = plan.get("Node Type", "")
    relation = plan.get("Relation Name", "")
    if relation.startswith("participant"):
        if node == "Seq Scan":
            found.append(f"Seq Scan on {relation}")
        elif "Index" in node:
            condition = plan.get("Index Cond", "")
            column = leading.get(plan.get("Index Name", ""), "?")
            if column not in condition and not under_limit:
                found.append(f"{node} on {plan.get('Index Name')} without a condition on {column}")
    for child in plan.get("Plans", []):
        found += full_scans(child, leading, under_limit=node == "Limit")
    return found


def full_scan_offenders(connection, captured: list[tuple[str, dict]]) -> dict[str, list[str]]:
    """Each captured statement whose plan reads a whole table of ours (``full_scans``), planned
    on ``connection`` with sequential scans discouraged, so that a missing index shows."""
    leading = dict(  # each of our indexes and its leading column
        connection.execute(
            text(
                "SELECT i.relname, a.attname FROM pg_index x "
                "JOIN pg_class i ON i.oid = x.indexrelid "
                "JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0] "
                "WHERE i.relname LIKE '%participant%'"
            )
        ).all()
    )
    connection.execute(text("SET enable_seqscan = off"))
    offenders = {}
    for statement, parameters in captured:
        cursor = connection.connection.cursor()
        cursor.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
        problems = full_scans(cursor.fetchone()[0][0]["Plan"], leading)
        if problems:
            offenders[statement] = problems
    return offenders


def test_every_read_uses_an_index(app, peers):
    peers.standard()
    add_entries(app, 1, range(10, 60))
    with app.app_context():
        draws.draw_winners(giveaway_id=1, winner_count=3)
        captured: list[tuple[str, object]] = []

        def capture(_conn, _cursor, statement, parameters, _context, _executemany):
            if statement.lstrip().upper().startswith("SELECT"):
                captured.append((statement, parameters))

        engines = [db.engine, app.extensions["telegive.store"].autocommit]
        for engine in engines:
            event.listen(engine, "before_cursor_execute", capture)
        try:
            page = listing.list_page(giveaway_id=1, page=3, limit=10)
            list(page.chunks)
            list(listing.list_page(giveaway_id=1, page=1, limit=10, cursor=page.next_cursor).chunks)
            list(listing.export_csv(1))
            listing.giveaway_stats(1)
            listing.count_participants(1)
            history.user_stats(10)
            first = history.participations(user_id=10, limit=1)
            history.participations(user_id=10, limit=1, cursor=first.next_cursor)
            draws.current_winners(1)
            draws.winner_status(user_id=10, giveaway_id=1)
            draws.draw_document(1)
            store().standing(user_id=10, giveaway_id=1)
            for where in (
                audit.AuditFilter(giveaway_id=1),
                audit.AuditFilter(user_id=10),
                audit.AuditFilter(event_type="participation"),
                audit.AuditFilter(since=utcnow() - timedelta(hours=1)),
            ):
                audit.list_events(where=where, limit=5)
            update_delivery_status(participant_ids=[1, 2], delivered=True, delivered_at=None)
        finally:
            for engine in engines:
                event.remove(engine, "before_cursor_execute", capture)

        # The registration's prepared statements go straight to the DBAPI cursor (no events).
        now = utcnow()
        captured.append((postgres._STANDING.sql, {"giveaway_id": 1, "user_id": 10}))
        for verified_at in (None, now):  # a remembered answer looked up, or a fresh one written
            captured.append(
                (
                    postgres._ENTER.sql,
                    {
                        **dict.fromkeys(postgres._ENTER.types),
                        "giveaway_id": 1,
                        "user_id": 10,
                        "now": now,
                        "channel_id": -1001,
                        "status": "member",
                        "verified_at": verified_at,
                        "since": now - timedelta(minutes=5),
                    },
                )
            )
        captured.append((postgres._NUMBER_PENDING.sql, {"giveaway_id": 1, "limit": 256}))
        assert len(captured) >= 18
        offenders = full_scan_offenders(db.session.connection(), captured)
        db.session.rollback()
    assert offenders == {}
