"""The audit log and the draw records refuse TRUNCATE too.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29

Reviewed by hand. Row triggers (revisions 0002 and 0003) refuse UPDATE and DELETE on
participant_draws and participant_audit_events, but TRUNCATE fires no row trigger: a statement
trigger per table refuses it with the same function and message. PostgreSQL only (SQLite has no
TRUNCATE): a no-op elsewhere.
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

APPEND_ONLY_TABLES = ("participant_draws", "participant_audit_events")


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in APPEND_ONLY_TABLES:
        # participant_refuse_change() comes from revision 0002.
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION participant_refuse_change()"
        )


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in APPEND_ONLY_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
