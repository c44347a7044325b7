"""Feedback: a second override of the same card at the same time with another reason is stored.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

The unique key gains `reason_key` (a digest of the override reason, '' for none): the same item
posted twice is still stored once, a different reason is a row of its own.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OLD = ("service_id", "card_uuid", "outcome", "outcome_timestamp")


def upgrade() -> None:
    # A database adopted at 0001 may have been made by a later metadata.create_all (see 0001).
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("feedback")}
    with op.batch_alter_table("feedback") as batch:
        if "reason_key" not in columns:
            batch.add_column(sa.Column("reason_key", sa.String(64), nullable=False, server_default=""))
        batch.drop_constraint("uq_feedback_item", type_="unique")
        batch.create_unique_constraint("uq_feedback_item", [*OLD, "reason_key"])


def downgrade() -> None:
    with op.batch_alter_table("feedback") as batch:
        batch.drop_constraint("uq_feedback_item", type_="unique")
        batch.create_unique_constraint("uq_feedback_item", list(OLD))
        batch.drop_column("reason_key")
