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
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from . import migrations
from .audit_writer import AuditWriter
from .errors import ServiceUnavailable

log = logging.getLogger("spine_cds.persistence")

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

_AUDIT_COLUMNS = frozenset(column.name for column in audit.columns if column.name != "id")
_AUDIT_REQUIRED = frozenset(column.name for column in audit.columns if not column.nullable and column.name != "id")
_AUDIT_LENGTHS = {column.name: column.type.length for column in audit.columns if getattr(column.type, "length", None)}


def _fit(column: str, value):
    limit = _AUDIT_LENGTHS.get(column)
    return value[:limit] if limit and isinstance(value, str) else value

jwt_replay = sa.Table(
    "jwt_replay",
    metadata,
    sa.Column("iss", sa.String(255), nullable=False),
    sa.Column("jti", sa.String(255), nullable=False),
    sa.Column("exp", sa.BigInteger, nullable=False),  # the token's exp, epoch seconds
    sa.PrimaryKeyConstraint("iss", "jti", name="pk_jwt_replay"),
    sa.Index("ix_jwt_replay_exp", "exp"),
)


DB_TIMEOUT = 3.0        # seconds one database operation of a request may take, connecting included
RETRY_AFTER = 5         # seconds a client is told to wait after a database fault (Retry-After)
_FAIL_FAST_FOR = 1.0    # seconds after a fault during which calls fail at once instead of waiting again


class Store:
    """Every operation is bounded by DB_TIMEOUT and fails as ServiceUnavailable (503 + Retry-After), never
    a driver exception: a stopped database refuses at once, a frozen one answers nothing, and neither
    may hang a request, the readiness probe, or turn into a 500. Operations run on a small thread pool
    and the request waits at most DB_TIMEOUT: PostgreSQL's statement_timeout is enforced by the server,
    which does nothing while frozen. A write that finishes after its request gave up is harmless:
    feedback is keyed (stored once when the client posts it again) and only acknowledged once committed.
    """

    def __init__(self, url: str, *, migrate: bool = True, timeout: float = DB_TIMEOUT):
        backend = sa.make_url(url).get_backend_name()
        self.timeout = timeout
        if backend == "sqlite":
            kwargs = {"connect_args": {"timeout": timeout}}
        else:
            kwargs = {"pool_pre_ping": True, "pool_timeout": timeout}
            if backend == "postgresql":
                ms = int(timeout * 1000)
                kwargs["connect_args"] = {"connect_timeout": max(1, int(timeout)),
                                          "options": f"-c statement_timeout={ms} -c lock_timeout={ms}"}
        self.engine = sa.create_engine(url, future=True, **kwargs)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid: int | None = None
        self._down_until = 0.0
        self._last_fault: BaseException | None = None
        self._audit = AuditWriter(lambda rows: self._bounded(self._add_audits, rows), self._add_audits)
        if backend == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        if migrate:
            migrations.upgrade(self.engine)
            # The serve command opens the store in the gunicorn master: no pooled connection may be
            # inherited by the forked workers (two processes on one socket corrupt the session).
            self.engine.dispose()

    def _bounded(self, operation, *args, **kwargs):
        """operation(*args, **kwargs) within self.timeout; ServiceUnavailable on any database fault."""
        now = time.monotonic()
        if now < self._down_until:
            raise _unavailable() from self._last_fault
        if self._pool is None or self._pool_pid != os.getpid():  # threads do not survive gunicorn's fork
            self._pool, self._pool_pid = ThreadPoolExecutor(max_workers=8, thread_name_prefix="db"), os.getpid()
        future = self._pool.submit(operation, *args, **kwargs)
        try:
            return future.result(timeout=self.timeout)
        except (FutureTimeout, SQLAlchemyError, OSError) as exc:
            self._down_until, self._last_fault = time.monotonic() + _FAIL_FAST_FOR, exc
            log.warning("database unavailable (%s)", type(exc).__name__)  # the type only: messages hold SQL and values
            raise _unavailable() from exc  # the cause names the fault for /readyz; never sent to a client

    def ping(self) -> None:
        """Raises if the database does not answer a trivial query (readiness)."""
        self._bounded(self._ping)

    def _ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def add_feedback(self, service_id: str, items: list[dict]) -> tuple[int, int]:
        """Store each item once; returns (stored, duplicates) once committed."""
        return self._bounded(self._add_feedback, service_id, items)

    def _add_feedback(self, service_id: str, items: list[dict]) -> tuple[int, int]:
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
        """Hand the row to this process's audit writer and return at once (cds_service/audit_writer.py)."""
        row.setdefault("at", datetime.now(timezone.utc))
        if isinstance(row.get("topics"), (list, tuple)):
            row["topics"] = json.dumps(list(row["topics"]))
        # A caller's mistake is said where it is made, not later in the writer's thread; a value the
        # database would refuse (a string over its column's length: a caller's service id from the URL)
        # is cut to fit, so no row can stop the rows queued behind it.
        unknown, missing = row.keys() - _AUDIT_COLUMNS, {c for c in _AUDIT_REQUIRED if row.get(c) is None}
        if unknown or missing:
            raise TypeError(f"audit row: unknown {sorted(unknown)}, missing {sorted(missing)}")
        self._audit.put({column: _fit(column, row.get(column)) for column in _AUDIT_COLUMNS})

    def _add_audits(self, rows: list[dict]) -> None:
        # One transaction; every row has every column (an executemany binds the first row's keys).
        with self.engine.begin() as conn:
            conn.execute(audit.insert(), rows)   # parameters, not .values(): the compiled statement is cached

    def audit_rows(self, kind: str | None = None) -> list[dict]:
        """Every row handed over in this process before the call included (they are written first)."""
        self._audit.flush(self.timeout)
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
        return self._bounded(self._remember_jti, iss, jti, exp, forget_before)

    def _remember_jti(self, iss: str, jti: str, exp: int, forget_before: int) -> bool:
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
        self._audit.close(self.timeout)
        if self._pool is not None and self._pool_pid == os.getpid():
            self._pool.shutdown(wait=False)
        self.engine.dispose()


def _unavailable() -> ServiceUnavailable:
    return ServiceUnavailable("the database did not answer in time; nothing was stored, try again",
                              retry_after=RETRY_AFTER)


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
