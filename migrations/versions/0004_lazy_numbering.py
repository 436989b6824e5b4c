"""Entries are numbered in batches after they are inserted: an index on the unnumbered ones.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

Reviewed by hand. participant_giveaways.entry_count now counts the numbered entries; the few not
numbered yet are found through this partial index (services/numbering.py).
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        "ix_participant_entries_unnumbered",
        "participant_entries",
        ["giveaway_id", "id"],
        postgresql_where=sa.text("entry_number IS NULL"),
        sqlite_where=sa.text("entry_number IS NULL"),
    )


def downgrade():
    op.drop_index("ix_participant_entries_unnumbered", table_name="participant_entries")
