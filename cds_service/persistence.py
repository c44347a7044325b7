"""Feedback storage through SQLAlchemy Core: SQLite under var/ by default, PostgreSQL by URL.

A feedback item is identified by (service, card, outcome, outcomeTimestamp): CDS clients
may post the same feedback again, and it must be stored once.

`jwt_replay` remembers the (iss, jti) of every accepted client JWT until it expires, so a replayed
token is refused by whichever gunicorn worker receives it (the unique key does the check).

The schema is made by the Alembic migrations in cds_service/migrations/, applied when a Store opens
the database; `metadata` below must describe the same schema (tests/test_migrations.py checks it).
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from . import migrations

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
    # A digest of the override reason ('' for none): another reason for the same card at the same time is kept.
    sa.Column("reason_key", sa.String(64), nullable=False, server_default=""),
    sa.UniqueConstraint("service_id", "card_uuid", "outcome", "outcome_timestamp", "reason_key", name="uq_feedback_item"),
)

# One row per CDS call and per feedback post (CRD found-37: log every invocation and answer).
# Ids only: no clinical content, no tokens.
audit = sa.Table(
    "audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),             # call | feedback
    sa.Column("service_id", sa.String(128), nullable=False),
    sa.Column("hook_instance", sa.String(256), nullable=True),
    sa.Column("patient_ref", sa.String(128), nullable=True),      # Patient/<id>
    sa.Column("topics", sa.Text, nullable=True),                  # JSON list of card topics returned
    sa.Column("status", sa.Integer, nullable=False),              # HTTP status answered
    sa.Column("outcome", sa.String(64), nullable=False),          # ok | client-error | data-unavailable | ...
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("detail", sa.Text, nullable=True),                  # feedback: counts; errors: the field named
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
    def __init__(self, url: str, *, migrate: bool = True):
        backend = sa.make_url(url).get_backend_name()
        if backend == "sqlite":
            kwargs = {"connect_args": {"timeout": 15}}
        else:
            kwargs = {"pool_pre_ping": True}
            if backend == "postgresql":
                # A database that does not answer must fail a readiness probe quickly, not hang a worker.
                kwargs["connect_args"] = {"connect_timeout": 5}
        self.engine = sa.create_engine(url, future=True, **kwargs)
        if backend == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        if migrate:
            migrations.upgrade(self.engine)
            # The serve command opens the store in the gunicorn master: no pooled connection may be
            # inherited by the forked workers (two processes on one socket corrupt the session).
            self.engine.dispose()

    def ping(self) -> None:
        """Raises if the database does not answer a trivial query (readiness)."""
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

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
                    "reason_key": _reason_key(item.get("overrideReason")),
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

    def add_audit(self, **row) -> None:
        row.setdefault("at", datetime.now(timezone.utc))
        if isinstance(row.get("topics"), (list, tuple)):
            row["topics"] = json.dumps(list(row["topics"]))
        with self.engine.begin() as conn:
            conn.execute(audit.insert().values(**row))

    def audit_rows(self, kind: str | None = None) -> list[dict]:
        return self._rows(audit, audit.c.kind, kind)

    def feedback_rows(self, service_id: str | None = None) -> list[dict]:
        return self._rows(feedback, feedback.c.service_id, service_id)

    def _rows(self, table: sa.Table, column, value) -> list[dict]:
        """All rows in insertion order, or those whose column equals value."""
        query = sa.select(table).order_by(table.c.id)
        if value:
            query = query.where(column == value)
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


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # Every call writes an audit row: WAL lets gunicorn workers write without blocking readers,
    # and synchronous=NORMAL drops the fsync per commit that WAL makes unnecessary for durability
    # against process crashes (only a power loss can lose the last commits).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _reason_key(reason) -> str:
    return hashlib.sha256(json.dumps(reason, sort_keys=True).encode()).hexdigest() if reason else ""


def _json_or_none(value) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)
