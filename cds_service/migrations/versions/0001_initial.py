"""Initial schema: feedback, audit, jwt_replay.

Revision ID: 0001
Revises:
Create Date: 2025-11-21

The tables are spelled out here rather than taken from persistence.metadata: a migration must keep
creating the schema of its own revision when the metadata moves on. tests/test_migrations.py checks
that head still equals persistence.metadata.

Databases created before migrations existed (by metadata.create_all) already hold some or all of
these tables: tables already present are left as they are and the database is adopted at 0001.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "feedback" not in existing:
        op.create_table(
            "feedback",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("service_id", sa.String(128), nullable=False),
            sa.Column("card_uuid", sa.String(256), nullable=False),
            sa.Column("outcome", sa.String(16), nullable=False),
            sa.Column("outcome_timestamp", sa.String(64), nullable=False),
            sa.Column("accepted_suggestions", sa.Text, nullable=True),
            sa.Column("override_reason", sa.Text, nullable=True),
            sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
            sa.UniqueConstraint("service_id", "card_uuid", "outcome", "outcome_timestamp", name="uq_feedback_item"),
        )
    if "audit" not in existing:
        op.create_table(
            "audit",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("kind", sa.String(16), nullable=False),
            sa.Column("service_id", sa.String(128), nullable=False),
            sa.Column("hook_instance", sa.String(256), nullable=True),
            sa.Column("patient_ref", sa.String(128), nullable=True),
            sa.Column("topics", sa.Text, nullable=True),
            sa.Column("status", sa.Integer, nullable=False),
            sa.Column("outcome", sa.String(64), nullable=False),
            sa.Column("latency_ms", sa.Float, nullable=False),
            sa.Column("detail", sa.Text, nullable=True),
        )
    if "jwt_replay" not in existing:
        op.create_table(
            "jwt_replay",
            sa.Column("iss", sa.String(255), nullable=False),
            sa.Column("jti", sa.String(255), nullable=False),
            sa.Column("exp", sa.BigInteger, nullable=False),
            sa.PrimaryKeyConstraint("iss", "jti", name="pk_jwt_replay"),
        )
        op.create_index("ix_jwt_replay_exp", "jwt_replay", ["exp"])


def downgrade() -> None:
    op.drop_index("ix_jwt_replay_exp", table_name="jwt_replay")
    op.drop_table("jwt_replay")
    op.drop_table("audit")
    op.drop_table("feedback")
