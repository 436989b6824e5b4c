"""Read side: the index for the stats' "not active" count; the audit log becomes append-only.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

Reviewed by hand. Every read of the service is an index scan at ten million rows:
- lists and the CSV export: uq_participant_entries_giveaway_id_entry_number (range of numbers);
- history: ix_participant_entries_user_history (user_id, participated_at, id);
- winners, winner status, stats' winners/delivered: ix_participant_entries_winners (partial);
- stats' unsubscribed/active: ix_participant_entries_not_active (partial, added here);
- counts: the giveaway's state row (primary key);
- audit: the (giveaway_id, id), (user_id, id), (event_type, id) and occurred_at indexes.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        "ix_participant_entries_not_active",
        "participant_entries",
        ["giveaway_id"],
        postgresql_where=sa.text("status <> 'active'"),
        sqlite_where=sa.text("status <> 'active'"),
    )
    if op.get_bind().dialect.name == "postgresql":
        # participant_refuse_change() comes from revision 0002.
        op.execute(
            "CREATE TRIGGER participant_audit_events_append_only BEFORE UPDATE OR DELETE "
            "ON participant_audit_events FOR EACH ROW EXECUTE FUNCTION participant_refuse_change()"
        )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP TRIGGER IF EXISTS participant_audit_events_append_only ON participant_audit_events"
        )
    op.drop_index("ix_participant_entries_not_active", table_name="participant_entries")
