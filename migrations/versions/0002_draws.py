"""Draws: the append-only draw records, the winners' index, the giveaway's account; the
users' names from their captcha-passing registration; unbounded remembered wrong answers.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

Reviewed by hand. On PostgreSQL, triggers make the draw records append-only: UPDATE and DELETE
are refused (the hash chain would show tampering anyway; the trigger stops accidents).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

APPEND_ONLY_FUNCTION = """
CREATE OR REPLACE FUNCTION participant_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END;
$$ LANGUAGE plpgsql
"""


def upgrade():
    op.create_table(
        "participant_draws",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("giveaway_id", sa.BigInteger(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("requested_count", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=True),
        sa.Column("request_fingerprint", sa.String(64), nullable=True),
        sa.Column("record", JSON_DOCUMENT, nullable=False),
        sa.Column("record_hash", sa.String(64), nullable=False),
        sa.Column("previous_hash", sa.String(64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("actor", sa.String(64), nullable=True),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_participant_draws"),
        sa.UniqueConstraint(
            "giveaway_id", "sequence", name="uq_participant_draws_giveaway_id_sequence"
        ),
        sa.UniqueConstraint(
            "giveaway_id",
            "idempotency_key",
            name="uq_participant_draws_giveaway_id_idempotency_key",
        ),
    )
    op.add_column("participant_giveaways", sa.Column("account_id", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("participant_users") as batch:
        batch.add_column(sa.Column("username", sa.String(256), nullable=True))
        batch.add_column(sa.Column("first_name", sa.String(256), nullable=True))
        batch.add_column(sa.Column("last_name", sa.String(256), nullable=True))
    # Up to CAPTCHA_MAX_ATTEMPTS (at most 100) remembered wrong answers: no fixed width.
    with op.batch_alter_table("participant_captcha_challenges") as batch:
        batch.alter_column("wrong_answers", type_=sa.Text(), existing_type=sa.String(128))
    op.create_index(
        "ix_participant_entries_winners",
        "participant_entries",
        ["giveaway_id", "winner_position"],
        postgresql_where=sa.text("is_winner"),
        sqlite_where=sa.text("is_winner"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(APPEND_ONLY_FUNCTION)
        op.execute(
            "CREATE TRIGGER participant_draws_append_only BEFORE UPDATE OR DELETE "
            "ON participant_draws FOR EACH ROW EXECUTE FUNCTION participant_refuse_change()"
        )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS participant_draws_append_only ON participant_draws")
        op.execute("DROP FUNCTION IF EXISTS participant_refuse_change()")
    op.drop_index("ix_participant_entries_winners", table_name="participant_entries")
    with op.batch_alter_table("participant_captcha_challenges") as batch:
        batch.alter_column("wrong_answers", type_=sa.String(128), existing_type=sa.Text())
    with op.batch_alter_table("participant_users") as batch:
        batch.drop_column("last_name")
        batch.drop_column("first_name")
        batch.drop_column("username")
    with op.batch_alter_table("participant_giveaways") as batch:
        batch.drop_column("account_id")
    op.drop_table("participant_draws")
