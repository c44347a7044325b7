"""Database fixtures: one throwaway PostgreSQL server per test session, and `database_url`, which
runs a test once on SQLite and once on PostgreSQL (a fresh database each time).

Without PostgreSQL binaries the PostgreSQL cases are skipped on a developer machine, but under CI
(CI=true) they fail: .ci/run installs PostgreSQL, so a missing server there is a broken CI, not a
reason to test less. Imported into tests/conftest.py.
"""
from __future__ import annotations

import itertools
import os

import pytest

from tests.support.postgres import PostgresServer, PostgresUnavailable, find_bindir

_database_numbers = itertools.count(1)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def start_postgres() -> PostgresServer:
    """A new throwaway server; skips (fails under CI) when PostgreSQL is not installed."""
    if find_bindir() is None:
        _unavailable("PostgreSQL binaries not found (apt-get install postgresql)")
    try:
        return PostgresServer.start()
    except PostgresUnavailable as exc:
        _unavailable(str(exc))


def _unavailable(message: str):
    if in_ci():
        pytest.fail(f"{message}: CI must run the PostgreSQL tests", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_server():
    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A new, empty database on the session's server."""
    return postgres_server.create_database(f"test_{next(_database_numbers)}")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """A SQLAlchemy URL of an empty database; the test runs once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'spine-cds.sqlite3'}"
    # Resolved only here, so the SQLite case never starts (or skips for) PostgreSQL.
    return request.getfixturevalue("postgres_url")
