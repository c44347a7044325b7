"""The throwaway PostgreSQL server of the tests: runs unprivileged, stops by PID, leaves nothing; and a
missing PostgreSQL skips on a developer machine but fails under CI."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import conftest_pg
from tests.conftest_pg import start_postgres


def test_server_runs_unprivileged_and_stop_leaves_nothing():
    server = start_postgres()
    try:
        owner = os.stat(f"/proc/{server.pid}").st_uid if os.path.exists("/proc") else None
        with server.connect() as conn:
            assert conn.execute("SELECT current_setting('listen_addresses')").fetchone() == ("127.0.0.1",)
    finally:
        server.stop()
    if owner is not None and os.geteuid() == 0:
        assert owner != 0  # postgres refuses root; the helper drops to an unprivileged user
    assert server.process.poll() is not None and not server.directory.exists()
    server.stop()  # a second stop is harmless


@pytest.mark.parametrize("ci, outcome", [("true", pytest.fail.Exception), ("", pytest.skip.Exception),
                                         ("false", pytest.skip.Exception)])
def test_missing_postgresql_fails_under_ci_and_skips_elsewhere(monkeypatch, ci, outcome):
    monkeypatch.setattr(conftest_pg, "find_bindir", lambda: None)
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome):
        start_postgres()


def test_ci_installs_postgresql_before_running_make_test():
    script = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    commands = [line.strip() for line in script.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    install = next(i for i, line in enumerate(commands) if "apt-get install" in line and "postgresql" in line.split())
    assert "apt-get update" in commands[install - 1]
    assert commands[-1] == "make test" and install < len(commands) - 1
