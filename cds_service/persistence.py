"""Feedback storage through SQLAlchemy Core: SQLite under var/ by default, PostgreSQL by URL.

A feedback item is identified by (service, card, outcome, outcomeTimestamp): CDS clients
may post the same feedback again, and it must be stored once.

`jwt_replay` remembers the (iss, jti) of every accepted client JWT until it expires, so a replayed
token is refused by whichever gunicorn worker receives it (the unique key does the check).
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

metadata = sa.MetaData()

feedback = sa.Table(
    "feedback",
    metadata,
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

jwt_replay = sa.Table(
    "jwt_replay",
    metadata,
    sa.Column("iss", sa.String(255), nullable=False),
    sa.Column("jti", sa.String(255), nullable=False),
    sa.Column("exp", sa.BigInteger, nullable=False),  # the token's exp, epoch seconds
    sa.PrimaryKeyConstraint("iss", "jti", name="pk_jwt_replay"),
    sa.Index("ix_jwt_replay_exp", "exp"),
)


class Store:
    def __init__(self, url: str):
        kwargs = {"connect_args": {"timeout": 15}} if url.startswith("sqlite") else {"pool_pre_ping": True}
        self.engine = sa.create_engine(url, future=True, **kwargs)
        metadata.create_all(self.engine)

    def add_feedback(self, service_id: str, items: list[dict]) -> tuple[int, int]:
        """Store each item once; returns (stored, duplicates)."""
        stored = duplicates = 0
        now = datetime.now(timezone.utc)
        with self.engine.begin() as conn:
            for item in items:
                row = {
                    "service_id": service_id,
                    "card_uuid": item["card"],
                    "outcome": item["outcome"],
                    "outcome_timestamp": item["outcomeTimestamp"],
                    "accepted_suggestions": _json_or_none(item.get("acceptedSuggestions")),
                    "override_reason": _json_or_none(item.get("overrideReason")),
                    "received_at": now,
                }
                savepoint = conn.begin_nested()
                try:
                    conn.execute(feedback.insert().values(**row))
                    savepoint.commit()
                    stored += 1
                except IntegrityError:
                    savepoint.rollback()
                    duplicates += 1
        return stored, duplicates

    def feedback_rows(self, service_id: str | None = None) -> list[dict]:
        query = sa.select(feedback).order_by(feedback.c.id)
        if service_id:
            query = query.where(feedback.c.service_id == service_id)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def remember_jti(self, iss: str, jti: str, exp: int, *, forget_before: int) -> bool:
        """Record a token id; False when (iss, jti) is already recorded, i.e. the token is a replay.

        Rows whose exp is before `forget_before` (now minus the leeway: such tokens are refused as
        expired anyway) are deleted in passing, so the table stays small without a cleanup job.
        """
        with self.engine.begin() as conn:
            conn.execute(jwt_replay.delete().where(jwt_replay.c.exp < forget_before))
            savepoint = conn.begin_nested()
            try:
                conn.execute(jwt_replay.insert().values(iss=iss, jti=jti, exp=exp))
            except IntegrityError:
                savepoint.rollback()
                return False
            savepoint.commit()
        return True

    def dispose(self) -> None:
        self.engine.dispose()


def _json_or_none(value) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)
