"""Participation foundation: entries, users, per-giveaway state, captcha challenges, audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Reviewed by hand. Migrations never import the models (they change; a revision must not), so the
column types are spelled out here. Timestamps are timezone-aware (timestamptz on PostgreSQL).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade():
    op.create_table(
        "participant_entries",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("giveaway_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("entry_number", sa.BigInteger(), nullable=True),
        sa.Column("username", sa.String(256), nullable=True),
        sa.Column("first_name", sa.String(256), nullable=True),
        sa.Column("last_name", sa.String(256), nullable=True),
        sa.Column("participated_at", TIMESTAMP, nullable=False),
        sa.Column("subscription_verified_at", TIMESTAMP, nullable=True),
        sa.Column("status", sa.String(16), server_default=sa.text("'active'"), nullable=False),
        sa.Column("is_winner", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("winner_selected_at", TIMESTAMP, nullable=True),
        sa.Column("winner_position", sa.Integer(), nullable=True),
        sa.Column("delivered", sa.Boolean(), nullable=True),
        sa.Column("delivered_at", TIMESTAMP, nullable=True),
        sa.Column("delivery_attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_participant_entries"),
        # One entry per user per giveaway: the database, not the code, makes it true.
        sa.UniqueConstraint(
            "giveaway_id", "user_id", name="uq_participant_entries_giveaway_id_user_id"
        ),
        sa.UniqueConstraint(
            "giveaway_id", "entry_number", name="uq_participant_entries_giveaway_id_entry_number"
        ),
    )
    op.create_index(
        "ix_participant_entries_user_history",
        "participant_entries",
        ["user_id", "participated_at", "id"],
    )

    op.create_table(
        "participant_users",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("captcha_completed_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_participant_users"),
    )

    op.create_table(
        "participant_giveaways",
        sa.Column("giveaway_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("entry_count", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("closed_at", TIMESTAMP, nullable=True),
        sa.Column("next_seed", sa.String(64), nullable=False),
        sa.Column("next_commitment", sa.String(64), nullable=False),
        sa.Column("committed_at", TIMESTAMP, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("giveaway_id", name="pk_participant_giveaways"),
    )

    op.create_table(
        "participant_captcha_challenges",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("question", sa.String(64), nullable=True),
        sa.Column("answer", sa.Integer(), nullable=True),
        sa.Column("session_id", sa.String(64), nullable=True),
        sa.Column("expires_at", TIMESTAMP, nullable=True),
        sa.Column("attempts_used", sa.Integer(), nullable=False),
        sa.Column("wrong_answers", sa.String(128), nullable=False),
        sa.Column("pending_giveaway_id", sa.BigInteger(), nullable=True),
        sa.Column("pending_username", sa.String(256), nullable=True),
        sa.Column("pending_first_name", sa.String(256), nullable=True),
        sa.Column("pending_last_name", sa.String(256), nullable=True),
        sa.Column("failed_questions", sa.Integer(), nullable=False),
        sa.Column("last_failed_at", TIMESTAMP, nullable=True),
        sa.Column("locked_until", TIMESTAMP, nullable=True),
        sa.Column("passed_at", TIMESTAMP, nullable=True),
        sa.Column("keep_until", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("user_id", name="pk_participant_captcha_challenges"),
    )
    op.create_index(
        "ix_participant_captcha_challenges_pending",
        "participant_captcha_challenges",
        ["pending_giveaway_id", "expires_at"],
    )
    op.create_index(
        "ix_participant_captcha_challenges_keep_until",
        "participant_captcha_challenges",
        ["keep_until"],
    )

    op.create_table(
        "participant_audit_events",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("occurred_at", TIMESTAMP, nullable=False),
        sa.Column("event_type", sa.String(48), nullable=False),
        sa.Column("giveaway_id", sa.BigInteger(), nullable=True),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("actor", sa.String(64), nullable=True),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("facts", JSON_DOCUMENT, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_participant_audit_events"),
    )
    op.create_index(
        "ix_participant_audit_events_giveaway", "participant_audit_events", ["giveaway_id", "id"]
    )
    op.create_index(
        "ix_participant_audit_events_user", "participant_audit_events", ["user_id", "id"]
    )
    op.create_index(
        "ix_participant_audit_events_type", "participant_audit_events", ["event_type", "id"]
    )
    op.create_index(
        "ix_participant_audit_events_occurred_at", "participant_audit_events", ["occurred_at"]
    )


def downgrade():
    op.drop_table("participant_audit_events")
    op.drop_table("participant_captcha_challenges")
    op.drop_table("participant_giveaways")
    op.drop_table("participant_users")
    op.drop_table("participant_entries")
