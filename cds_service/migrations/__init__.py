"""Alembic migrations of the service's database, applied when a Store opens the database.

`upgrade(engine)` brings the database to the newest revision; at head it changes nothing, so
every start may call it. Several processes may start at once against one database (two replicas
on one PostgreSQL, a second `serve` on the same SQLite file), so the upgrade runs under a lock:
- PostgreSQL: a transaction-level advisory lock. The whole upgrade is one transaction (PostgreSQL
  DDL is transactional), so the second process waits, then finds the database at head.
- SQLite: an exclusive flock on a file next to the database (SQLite only serves one host).
Other backends get no lock: start one process first there.

The scripts are found through importlib.resources, not a path relative to the working directory,
so they work from an installed wheel (they are package data, see pyproject.toml).
"""
from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

# Names this lock among all PostgreSQL advisory locks of the database ("spinecds" as a bigint).
PG_LOCK_KEY = int.from_bytes(b"spinecds", "big")


def alembic_config(connection: sa.Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files(__package__)))
    cfg.attributes["connection"] = connection  # env.py migrates this connection when set
    return cfg


def upgrade(engine: sa.Engine) -> None:
    with _sqlite_file_lock(engine.url), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Released at commit, i.e. once the schema is at head for everybody.
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
        command.upgrade(alembic_config(connection), "head")


@contextmanager
def _sqlite_file_lock(url: sa.URL) -> Iterator[None]:
    database = url.database if url.get_backend_name() == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        yield  # not SQLite, or a database no other process can open
        return
    # A separate file: flock on the database file itself could meet SQLite's own fcntl locks on NFS.
    with open(f"{database}.migrate-lock", "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)
