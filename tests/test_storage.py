"""Audit rows and the JWT replay table, on SQLite and on PostgreSQL (each test runs on both)."""
from __future__ import annotations

import json
import threading

from cds_service.persistence import Store

SERVICE = "spine-surgery-order-sign"


def test_audit_rows_round_trip_and_filter_by_kind(database_url):
    store = Store(database_url)
    store.add_audit(kind="call", service_id=SERVICE, hook_instance="hi-1", patient_ref="Patient/pat-1",
                    topics=["pt-documentation-missing", "level-unsupported"], status=200, outcome="ok", latency_ms=12.5)
    store.add_audit(kind="feedback", service_id=SERVICE, status=200, outcome="ok", latency_ms=1.0,
                    detail='{"stored": 1}')
    store.add_audit(kind="call", service_id=SERVICE, status=400, outcome="client-error", latency_ms=0.5,
                    detail="$.context")
    rows = store.audit_rows()
    calls = store.audit_rows("call")
    store.dispose()
    assert [(r["kind"], r["status"], r["outcome"]) for r in rows] == [
        ("call", 200, "ok"), ("feedback", 200, "ok"), ("call", 400, "client-error")]
    assert [r["id"] for r in calls] == [rows[0]["id"], rows[2]["id"]]
    assert json.loads(rows[0]["topics"]) == ["pt-documentation-missing", "level-unsupported"]
    assert rows[0]["patient_ref"] == "Patient/pat-1" and rows[0]["latency_ms"] == 12.5
    assert rows[1]["topics"] is None and rows[0]["at"] is not None


def test_replay_is_seen_by_another_store_on_the_same_database(database_url):
    # Two gunicorn workers (or two replicas) each open their own Store on one database.
    first, second = Store(database_url), Store(database_url)
    assert first.remember_jti("https://ehr.example.org", "jti-1", 10**10, forget_before=0)
    assert not second.remember_jti("https://ehr.example.org", "jti-1", 10**10, forget_before=0)
    first.dispose()
    second.dispose()


def test_concurrent_uses_of_one_token_let_exactly_one_through(database_url):
    store = Store(database_url)
    barrier = threading.Barrier(6)
    results: list[bool] = []

    def use_token():
        barrier.wait()
        results.append(store.remember_jti("https://ehr.example.org", "raced", 10**10, forget_before=0))

    threads = [threading.Thread(target=use_token) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.dispose()
    assert sorted(results) == [False] * 5 + [True]


def test_opening_the_store_leaves_no_connection_for_forked_workers_to_share(database_url):
    # `serve` opens the store (and migrates) in the gunicorn master, then forks the workers.
    store = Store(database_url)
    try:
        assert store.engine.pool.checkedin() == 0 and store.engine.pool.checkedout() == 0
    finally:
        store.dispose()
