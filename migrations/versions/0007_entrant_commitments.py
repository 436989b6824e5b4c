"""Entrant commitments (telegive-draw v2): the Merkle root of the entrant list fixed when entries
close, with the beacon round it fixes; the reroll's reserved beacon round.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29

Reviewed by hand. One row per giveaway, created with its secret salt key and written once with
the root; on PostgreSQL a trigger refuses any UPDATE once the root is set, and any DELETE or
TRUNCATE (the function participant_refuse_change() comes from revision 0002). Existing rows of
participant_giveaways get NULL reservations.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TABLE = "participant_entrant_commitments"

WRITE_ONCE_FUNCTION = """
CREATE OR REPLACE FUNCTION participant_commitment_write_once() RETURNS trigger AS $$
BEGIN
    IF OLD.entrant_root IS NOT NULL THEN
        RAISE EXCEPTION '% is fixed once its root is set: % refused', TG_TABLE_NAME, TG_OP;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql
"""


def upgrade():
    op.create_table(
        TABLE,
        sa.Column("giveaway_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("salt_key", sa.String(64), nullable=False),
        sa.Column("entrant_root", sa.String(64), nullable=True),
        sa.Column("entrant_count", sa.BigInteger(), nullable=True),
        sa.Column("entrants_hash", sa.String(64), nullable=True),
        sa.Column("chunk_first_ids", JSON_DOCUMENT, nullable=True),
        sa.Column("chunk_roots", JSON_DOCUMENT, nullable=True),
        sa.Column("committed_at", TIMESTAMP, nullable=True),
        sa.Column("beacon_round", sa.BigInteger(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("giveaway_id", name=f"pk_{TABLE}"),
    )
    with op.batch_alter_table("participant_giveaways") as batch:
        batch.add_column(sa.Column("reroll_round", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("reroll_round_fixed_at", TIMESTAMP, nullable=True))
        batch.add_column(sa.Column("reroll_round_key", sa.String(128), nullable=True))
        batch.add_column(sa.Column("reroll_round_fingerprint", sa.String(64), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(WRITE_ONCE_FUNCTION)
        op.execute(
            f"CREATE TRIGGER {TABLE}_write_once BEFORE UPDATE ON {TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION participant_commitment_write_once()"
        )
        op.execute(
            f"CREATE TRIGGER {TABLE}_no_delete BEFORE DELETE ON {TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION participant_refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE} "
            "FOR EACH STATEMENT EXECUTE FUNCTION participant_refuse_change()"
        )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for trigger in ("write_once", "no_delete", "no_truncate"):
            op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_{trigger} ON {TABLE}")
        op.execute("DROP FUNCTION IF EXISTS participant_commitment_write_once()")
    with op.batch_alter_table("participant_giveaways") as batch:
        batch.drop_column("reroll_round_fingerprint")
        batch.drop_column("reroll_round_key")
        batch.drop_column("reroll_round_fixed_at")
        batch.drop_column("reroll_round")
    op.drop_table(TABLE)
