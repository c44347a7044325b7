"""The two servers the bench compares, started the same way: `spine-cds serve` and the floor
(benchmarks/floor.py, the same `serve` code with a bare app), with the same worker count."""
from __future__ import annotations

import os
import sys

WORKERS = int(os.environ.get("WEB_CONCURRENCY", "2"))   # `spine-cds serve`'s default


def service_command(port: int) -> list[str]:
    return [sys.executable, "-m", "cds_service", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(WORKERS)]


def floor_command(port: int) -> list[str]:
    return [sys.executable, "-m", "benchmarks.floor", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(WORKERS)]
