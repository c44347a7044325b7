"""Audit rows written off the request path (cds_service/audit_writer.py): the answer does not wait for
the database, and no row is lost to a slow, frozen or refusing database or to a worker's exit."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from cds_service import audit_writer
from cds_service.audit_writer import AuditWriter
from cds_service.persistence import Store
from cds_service.synthetic import synthesize
from tests.conftest import SERVICE_PATH, start_service
from tests.conftest_pg import start_postgres
from tests.support.postgres import signal_cluster

ROOT = Path(__file__).resolve().parent.parent


def test_a_call_answers_while_the_database_is_frozen_and_its_audit_row_is_written_after(tmp_path):
    """Over HTTP against a real PostgreSQL: frozen (connections accepted, nothing answered), the calls
    still answer at once, where the write in the request held each for the database's 3 s bound; thawed,
    every call's row is written, in order, once the service stops."""
    postgres = start_postgres()
    try:
        url = postgres.create_database("audit_frozen")
        requests_sent = [instance.request for instance in synthesize("fusion-criteria-met", 6, seed=3)]
        with start_service(tmp_path, CDS_DATABASE_URL=url) as svc:
            with requests.Session() as http:
                assert http.post(svc.url + SERVICE_PATH, json=requests_sent[0], timeout=30).status_code == 200
                frozen = signal_cluster(postgres.pid, signal.SIGSTOP)
                try:
                    took = []
                    for body in requests_sent[1:]:
                        started = time.monotonic()
                        answer = http.post(svc.url + SERVICE_PATH, json=body, timeout=30)
                        took.append(time.monotonic() - started)
                        assert answer.status_code == 200, answer.text[:300]
                finally:
                    signal_cluster(postgres.pid, signal.SIGCONT)
        assert len(frozen) >= 2, frozen
        assert max(took) < 2.0, took        # the database's bound is 3 s: no call waited for it
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT kind, status, hook_instance FROM audit ORDER BY id")).all()
        engine.dispose()
        assert [(kind, status) for kind, status, _ in rows] == [("call", 200)] * len(requests_sent)
        assert [hook for *_, hook in rows] == [body["hookInstance"] for body in requests_sent]
    finally:
        postgres.stop()


def test_rows_wait_through_database_faults_and_are_written_in_order_batched():
    written, faults, release = [], [3], threading.Event()

    def write(rows):
        if faults[0]:
            faults[0] -= 1
            raise OSError("database down")
        release.wait(5)
        written.append([r["n"] for r in rows])

    writer = AuditWriter(write)
    for n in range(50):
        writer.put({"n": n})
    deadline = time.monotonic() + 10
    while faults[0] and time.monotonic() < deadline:
        time.sleep(0.01)
    for n in range(50, 60):
        writer.put({"n": n})      # handed over while a batch is blocked: written together afterwards
    release.set()
    assert writer.flush(10)
    assert [n for batch in written for n in batch] == list(range(60))
    assert len(written) < 60 and max(map(len, written)) > 1, written


def test_a_reader_in_the_process_sees_every_row_handed_over_before_it(database_url):
    store = Store(database_url)
    for n in range(200):
        store.add_audit(kind="call", service_id="spine-surgery-order-sign", hook_instance=f"h-{n}", status=200,
                        outcome="ok", latency_ms=1.0)
    rows = store.audit_rows()
    assert [r["hook_instance"] for r in rows] == [f"h-{n}" for n in range(200)]
    writers = [t for t in threading.enumerate() if t.name == "audit-writer"]
    store.add_audit(kind="call", service_id="s", hook_instance="last", status=200, outcome="ok", latency_ms=1.0)
    store.dispose()            # writes what waits and ends the store's writer thread
    deadline = time.monotonic() + 5
    while sum(t.is_alive() for t in threading.enumerate() if t.name == "audit-writer") >= len(writers) \
            and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sum(t.is_alive() for t in threading.enumerate() if t.name == "audit-writer") < len(writers)
    reader = Store(database_url)
    last = reader.audit_rows()[-1]
    reader.dispose()
    assert last["hook_instance"] == "last"


def test_a_process_that_exits_writes_what_waits(tmp_path):
    """A worker's graceful exit (sys.exit at the end of gunicorn's worker) runs the exit flush: 2,000 rows
    handed over just before exiting are all in the database, though the writer's thread dies with it."""
    db = tmp_path / "exit.sqlite3"
    script = (
        "import sys\n"
        "from cds_service.persistence import Store\n"
        f"store = Store('sqlite:///{db}')\n"
        "for n in range(2000):\n"
        "    store.add_audit(kind='call', service_id='s', hook_instance=str(n), status=200, outcome='ok', latency_ms=1.0)\n"
        "sys.exit(0)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    reader = Store(f"sqlite:///{db}")
    rows = reader.audit_rows()
    reader.dispose()
    assert [r["hook_instance"] for r in rows] == [str(n) for n in range(2000)]


def test_beyond_the_cap_new_rows_are_dropped_counted_and_logged(monkeypatch, caplog):
    monkeypatch.setattr(audit_writer, "MAX_PENDING", 5)
    down = [True]

    def write(rows):
        if down[0]:
            raise OSError("database down")

    writer = AuditWriter(write)
    with caplog.at_level(logging.WARNING, logger="spine_cds.persistence"):
        for n in range(8):
            writer.put({"n": n})
    assert writer.dropped == 3 and writer.pending() == 5
    assert any("3 rows dropped" in r.getMessage() or "1 rows dropped" in r.getMessage() for r in caplog.records)
    down[0] = False
    assert writer.flush(5) and writer.pending() == 0


def test_a_forked_copy_writes_its_own_rows_only_even_when_the_fork_caught_a_write_half_way():
    """The fork happens while the parent's thread is inside a write (holding the writer's lock) with a
    row still queued: the copy writes its own row without waiting for that lock, the parent writes its
    two once the write returns, and neither writes the other's."""
    parent, seen, inside, release = os.getpid(), [], threading.Event(), threading.Event()

    def write(rows):
        if os.getpid() == parent and rows[0]["n"] == 1:
            inside.set()
            release.wait(20)
        seen.extend(r["n"] for r in rows)

    writer = AuditWriter(write)
    writer.put({"n": 0})
    assert writer.flush(5)
    writer.put({"n": 1})
    assert inside.wait(5)          # the parent's thread holds the lock, inside the write of row 1
    writer.put({"n": 2})           # and row 2 waits behind it
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            writer.put({"n": 3})
            os.write(write_fd, repr((writer.flush(5), seen)).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    try:
        import select
        ready, _, _ = select.select([read_fd], [], [], 15)
        child = os.read(read_fd, 1000).decode() if ready else "no answer: the copy waits on the parent's lock"
    finally:
        release.set()
        os.kill(pid, signal.SIGKILL) if not ready else None
        os.waitpid(pid, 0)
        os.close(read_fd)
    assert child == "(True, [0, 3])", child
    assert writer.flush(5) and seen == [0, 1, 2]


def test_a_string_over_its_column_is_cut_so_no_row_blocks_the_queue(database_url):
    """A caller's service id comes from the URL: on PostgreSQL a 300-character one overflowed its column,
    failed the write and put the store in its fail-fast window (feedback answered 503 for a second)."""
    store = Store(database_url)
    store.add_audit(kind="call", service_id="x" * 300, status=404, outcome="client-error", latency_ms=1.0)
    store.add_audit(kind="call", service_id="spine-surgery-order-sign", status=200, outcome="ok", latency_ms=1.0)
    rows = store.audit_rows()
    assert [r["service_id"] for r in rows] == ["x" * 128, "spine-surgery-order-sign"]
    assert store.add_feedback("spine-surgery-order-sign", [
        {"card": "c-1", "outcome": "accepted", "outcomeTimestamp": "2026-12-02T10:00:00Z"}]) == (1, 0)
    with pytest.raises(TypeError, match="missing"):
        store.add_audit(kind="call", service_id="s", outcome="ok", latency_ms=1.0)   # no status
    with pytest.raises(TypeError, match="unknown"):
        store.add_audit(kind="call", service_id="s", status=200, outcome="ok", latency_ms=1.0, clinical="no")
    store.dispose()
