"""Entries pending verification: the queue of subscriptions still to be asked of Telegram.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29

Reviewed by hand. With SUBSCRIPTION_OVERFLOW=defer a registration that finds its bot's budget of
Telegram calls spent is entered with participant_entries.status 'pending' (the column is a
VARCHAR(16) already: 'pending' and 'excluded' need no change to it) and one row here, written in
the same transaction. `flask verify-pending` takes rows whose next_attempt_at has come (SKIP
LOCKED on PostgreSQL), asks Telegram within the bot's spare budget, and settles the entry
('active' or 'excluded') while deleting its row. participant_id is the entry's id, without a
foreign key: the row is only written in the transaction that writes its entry, entries are never
deleted, and a verifier that finds a row whose entry is no longer pending just deletes the row.

Downgrade drops the queue: entries still 'pending' or 'excluded' keep that status, which code
before this revision counts as not active but would let a draw without a subscription re-check
pick. Run `flask verify-pending` until the queue is empty before downgrading.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "participant_pending_verifications",
        sa.Column("participant_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("giveaway_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("enqueued_at", TIMESTAMP, nullable=False),
        sa.Column("next_attempt_at", TIMESTAMP, nullable=False),
        sa.Column("claims", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("failures", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("participant_id", name="pk_participant_pending_verifications"),
    )
    op.create_index(
        "ix_participant_pending_verifications_due",
        "participant_pending_verifications",
        ["next_attempt_at"],
    )


def downgrade():
    op.drop_index(
        "ix_participant_pending_verifications_due", table_name="participant_pending_verifications"
    )
    op.drop_table("participant_pending_verifications")
