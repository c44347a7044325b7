"""Keep-alive connections opened at once are shared by the workers (cds_service.cli.balance_accepts).

All gunicorn workers listen on one socket, and asyncio takes up to 100 waiting connections per wake-up:
without the balance, the first worker to wake took every connection an EHR (or wrk) opened at once and
the other idled for as long as they lived (4:0 in three runs of four, half the throughput).
"""
from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
import time
from http.client import HTTPConnection
from types import SimpleNamespace

import orjson

from cds_service.cli import ACCEPT_PAUSE, SWITCH_INTERVAL_S, balance_accepts, worker_started
from fhir_mappings import forked_reading
from tests.conftest import SERVICE_PATH, start_service
from tests.stubs import fhir, seeds


class _Counting(asyncio.Protocol):
    def __init__(self, worker):
        self.worker = worker

    def connection_made(self, transport):
        self.worker.nr_conns += 1
        self.worker.accepted.append(time.monotonic())
        self.worker.transports.append(transport)


def test_a_started_worker_hands_over_the_interpreter_lock_every_millisecond_balances_accepts_and_has_a_partner():
    loop = asyncio.new_event_loop()
    worker = SimpleNamespace(loop=loop, nr_conns=0)
    before = sys.getswitchinterval()
    try:
        worker_started(worker)
        assert sys.getswitchinterval() == SWITCH_INTERVAL_S == 0.001
        assert loop._start_serving.__qualname__.startswith("balance_accepts")
        partner = forked_reading._PARTNER
        assert partner is not None and partner.owner == os.getpid()
        time.sleep(0.2)     # it names itself first thing
        with open(f"/proc/{partner.child}/comm", "rb") as f:
            assert f.read().strip() == forked_reading.PARTNER_NAME
    finally:
        forked_reading.stop_partner()     # this test process is not a worker: later tests read without it
        sys.setswitchinterval(before)
        loop.close()


def test_a_worker_takes_one_connection_then_waits_its_turn():
    loop = asyncio.new_event_loop()
    worker = SimpleNamespace(loop=loop, nr_conns=0, accepted=[], transports=[])
    balance_accepts(worker)
    listener = socket.create_server(("127.0.0.1", 0))
    clients = []
    try:
        async def run():
            server = await loop.create_server(lambda: _Counting(worker), sock=listener, start_serving=True)
            for _ in range(3):
                clients.append(socket.create_connection(listener.getsockname()))
            deadline = time.monotonic() + 5
            while len(worker.accepted) < 3 and time.monotonic() < deadline:
                await asyncio.sleep(0.001)
            for transport in worker.transports:
                transport.close()
            server.close()
            await server.wait_closed()
        loop.run_until_complete(run())
    finally:
        for client in clients:
            client.close()
        loop.close()
    assert len(worker.accepted) == 3      # all three taken, one at a time...
    gaps = [b - a for a, b in zip(worker.accepted, worker.accepted[1:])]
    # ...each after a pause that grows with the connections the worker holds (1, then 2 held)
    assert gaps[0] >= ACCEPT_PAUSE * 0.9 and gaps[1] >= 2 * ACCEPT_PAUSE * 0.9, gaps


_PID = re.compile(r"\[(\d+)\] \[INFO\] spine_cds.audit: call service=")


def _served_by(server, calls: int, connections: int) -> list[str]:
    """Open `connections` keep-alive connections at once, send `calls` order-signs on each; the pids of
    the workers that answered (from the audit lines, which name their process)."""
    body = orjson.dumps(fhir.make_request(seeds.seed_001_orders(), seeds.seed_001_chart()))
    host, port = server.url.removeprefix("http://").split(":")
    before = len(_PID.findall(server.output_tail(10_000_000)))
    opened = [HTTPConnection(host, int(port), timeout=30) for _ in range(connections)]
    for connection in opened:
        connection.connect()
    for _ in range(calls):
        for connection in opened:
            connection.request("POST", SERVICE_PATH, body=body, headers={"Content-Type": "application/json"})
            assert connection.getresponse().read()
    for connection in opened:
        connection.close()
    return _PID.findall(server.output_tail(10_000_000))[before:]


def _workers_listening(server, count: int, timeout: float = 30) -> None:
    """The service answers once its first worker listens; wait for all of them."""
    deadline = time.monotonic() + timeout
    while server.output_tail(10_000_000).count("ASGI server listening") < count:
        assert time.monotonic() < deadline, server.output_tail()
        time.sleep(0.05)


def test_connections_opened_at_once_are_shared_by_both_workers(tmp_path):
    with start_service(tmp_path) as server:
        _workers_listening(server, 2)
        served = _served_by(server, calls=2, connections=8)
    assert len(served) == 16
    per_worker = sorted(served.count(pid) for pid in set(served))
    assert len(per_worker) == 2 and per_worker[0] >= 4, per_worker      # each worker holds 2 or more of the 8
