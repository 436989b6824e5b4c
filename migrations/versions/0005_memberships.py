"""Telegram's recent "subscribed" answers, so a registration can rely on one.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26

Reviewed by hand. One row per (channel, user): when Telegram last said the user is in the
channel. A registration within SUBSCRIPTION_CACHE_SECONDS of it needs no getChatMember; a
"not subscribed" answer deletes the row; `flask clean-captcha` removes the expired ones.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "participant_memberships",
        sa.Column("channel_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel_id", "user_id", name="pk_participant_memberships"),
    )


def downgrade():
    op.drop_table("participant_memberships")
