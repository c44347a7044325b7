"""The two servers the bench compares, started the same way: `spine-cds serve` and the floor
(benchmarks/floor.py, the same `serve` code with a bare app), with the same worker count."""
from __future__ import annotations

import os
import sys
import threading
import time

import requests

WORKERS = int(os.environ.get("WEB_CONCURRENCY", "2"))   # `spine-cds serve`'s default


def service_command(port: int) -> list[str]:
    return [sys.executable, "-m", "cds_service", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(WORKERS)]


def floor_command(port: int) -> list[str]:
    return [sys.executable, "-m", "benchmarks.floor", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(WORKERS)]


def warm(url: str, body: bytes) -> float:
    """Two rounds of two concurrent requests (so both workers likely see the body), one round when
    slow, then one request alone; returns how long that one took (s)."""
    failures = []

    def post():
        try:
            requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=120).raise_for_status()
        except requests.RequestException as exc:
            failures.append(exc)

    for _ in range(2):
        start = time.perf_counter()
        pair = [threading.Thread(target=post) for _ in range(2)]
        for t in pair:
            t.start()
        for t in pair:
            t.join()
        if failures:
            raise failures[0]
        if time.perf_counter() - start > 1:
            break
    start = time.perf_counter()
    post()
    if failures:
        raise failures[0]
    return time.perf_counter() - start
