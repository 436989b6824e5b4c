"""The audit log and the draw records are append-only in PostgreSQL itself: no UPDATE, DELETE
or TRUNCATE gets past the database, whoever sends it (nor past a committed entrant list:
tests/routes/test_draw_trust.py)."""

from __future__ import annotations

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import func, select, text

from app import MIGRATIONS_DIR
from extensions import db
from models import AuditEvent, DrawRecord
from tests.conftest import GIVEAWAY
from tests.factories import add_entries

pytestmark = pytest.mark.postgres
APPEND_ONLY = {"participant_audit_events": AuditEvent, "participant_draws": DrawRecord}
# Revision 0007 guards the committed entrant lists against TRUNCATE too.
TRUNCATE_GUARDED = {*APPEND_ONLY, "participant_entrant_commitments"}


@pytest.fixture
def drawn(app, client, peers):
    """A giveaway with entries and a draw: audit events and a draw record to protect."""
    peers.standard()
    add_entries(app, 1, range(1, 11))
    response = client.post(
        "/api/participants/1/select-winners", json={"winner_count": 2}, headers=GIVEAWAY
    )
    assert response.status_code == 200, response.get_json()
    return app


def rows(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize("table", sorted(APPEND_ONLY))
@pytest.mark.parametrize(
    "statement",
    [
        "TRUNCATE {table}",
        "TRUNCATE {table} RESTART IDENTITY CASCADE",
        "TRUNCATE participant_entries, {table}",
        "UPDATE {table} SET actor = 'me'",
        "DELETE FROM {table}",
    ],
)
def test_the_database_refuses_to_empty_or_change_an_append_only_table(drawn, table, statement):
    model = APPEND_ONLY[table]
    with drawn.app_context():
        before = rows(model)
        assert before > 0
        with pytest.raises(Exception, match="append-only"):
            db.session.execute(text(statement.format(table=table)))
        db.session.rollback()
        assert rows(model) == before


def test_the_truncate_guard_comes_and_goes_with_its_migration(app):
    def guarded() -> set[str]:
        return set(
            db.session.scalars(
                text(
                    "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                    "WHERE NOT t.tgisinternal AND t.tgtype & 32 <> 0"  # 32: a TRUNCATE trigger
                )
            )
        )

    with app.app_context():
        assert guarded() == TRUNCATE_GUARDED
        db.session.remove()
        downgrade(directory=str(MIGRATIONS_DIR), revision="0006")
        assert guarded() == set(APPEND_ONLY)
        db.session.remove()
        downgrade(directory=str(MIGRATIONS_DIR), revision="0005")
        assert guarded() == set()
        db.session.remove()
        upgrade(directory=str(MIGRATIONS_DIR))
        assert guarded() == TRUNCATE_GUARDED
