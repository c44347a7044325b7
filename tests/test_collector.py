"""The cyclic garbage collector is paused while service calls run (cds_service/collector.py).

A call's chart is freed by reference counting; the collector only walked it. These tests hold the
pause to what makes it safe: calls leave few cycles, whatever the chart's size; the collector runs
again when the last call ends, and a worker that is never idle still collects.
"""
from __future__ import annotations

import gc
import threading
from contextlib import contextmanager

import orjson
import pytest

from benchmarks.charts import bench_request
from cds_service import collector, order_sign
from cds_service.app import create_app
from tests.conftest import SERVICE_PATH
from tests.stubs import fhir, seeds


@pytest.fixture
def client(tmp_path):
    return create_app(environ={"CDS_VAR_DIR": str(tmp_path), "CDS_AUTH": "off"}).test_client()


@pytest.fixture(autouse=True)
def collector_on():
    assert gc.isenabled()
    yield
    gc.enable()


def _post(client, body: bytes):
    answer = client.post(SERVICE_PATH, data=body, content_type="application/json")
    assert answer.status_code == 200, answer.data[:300]
    return answer


@pytest.mark.parametrize("size", [200, 1000])
def test_a_call_leaves_few_cycles_whatever_the_chart_size(client, size):
    body = orjson.dumps(bench_request(size, True))
    _post(client, body)                 # loads what loads once
    gc.collect()
    gc.disable()
    try:
        _post(client, body)
        left = gc.collect()
    finally:
        gc.enable()
    assert left <= 50, f"{left} objects in cycles after one call of {size} resources"


def test_paused_while_a_call_runs_and_resumed_after(client, monkeypatch):
    seen = []
    real_run = order_sign.run

    def run(*args, **kwargs):
        seen.append(gc.isenabled())
        return real_run(*args, **kwargs)
    monkeypatch.setattr(order_sign, "run", run)
    _post(client, orjson.dumps(fhir.make_request(seeds.seed_001_orders(), seeds.seed_001_chart())))
    assert seen == [False]
    assert gc.isenabled()


@contextmanager
def _a_call():
    """A call's pause and resume, as the routes make them (before the request, at its teardown)."""
    collector.pause()
    try:
        yield
    finally:
        collector.resume()


@contextmanager
def _a_long_call_in_flight():
    """Another thread's call runs while the body of the with runs, and ends after it."""
    inside, release = threading.Event(), threading.Event()

    def long_call():
        with _a_call():
            inside.set()
            release.wait(10)
    thread = threading.Thread(target=long_call)
    thread.start()
    inside.wait(10)
    try:
        yield
    finally:
        release.set()
        thread.join()


def test_resumed_only_when_the_last_of_overlapping_calls_ends():
    with _a_long_call_in_flight():
        with _a_call():
            assert not gc.isenabled()
        assert not gc.isenabled()          # the long call still runs
    assert gc.isenabled()


def test_a_worker_never_idle_still_collects(monkeypatch):
    collections = []
    monkeypatch.setattr(collector.gc, "collect", lambda *a: collections.append(gc.isenabled()) or 0)
    monkeypatch.setattr(collector, "COLLECT_EVERY_S", 0.0)
    with _a_long_call_in_flight():
        with _a_call():
            pass                        # ends while the other call runs: a collection, collector still paused
        assert collections == [False]
    assert gc.isenabled()


def test_a_collector_turned_off_elsewhere_stays_off():
    gc.disable()
    with _a_call():
        pass
    assert not gc.isenabled()


def test_resumed_after_a_refused_call_too(client):
    answer = client.post(SERVICE_PATH, data=b'{"hook": ', content_type="application/json")
    assert answer.status_code == 400
    assert gc.isenabled() and collector._running == 0
