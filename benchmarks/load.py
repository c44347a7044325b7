"""A bounded load generator, run as its own process so it does not share the server's GIL:
`python -m benchmarks.load --url URL --body FILE --concurrency C --seconds S [--max-requests N]`.
Prints one JSON line: count, errors, latencies (ms) p50/p90/p99, throughput (req/s)."""
from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import threading
import time
from urllib.parse import urlsplit


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def feedback_bodies(prefix: str):
    """Distinct feedback posts (a repeated post would be stored once, by design)."""
    counter = iter(range(10**9))
    lock = threading.Lock()

    def next_body() -> bytes:
        with lock:
            n = next(counter)
        return json.dumps({"feedback": [{"card": f"{prefix}-{n}", "outcome": "overridden",
                                         "outcomeTimestamp": "2026-01-01T00:00:00Z"}]}).encode()
    return next_body


def run(url: str, body, concurrency: int, seconds: float, max_requests: int) -> dict:
    """body: bytes sent every time, or a function returning the next body."""
    parts = urlsplit(url)
    deadline = time.perf_counter() + seconds
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    budget = [max_requests]

    def worker():
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        while time.perf_counter() < deadline:
            with lock:
                if budget[0] <= 0:
                    break
                budget[0] -= 1
            start = time.perf_counter()
            try:
                payload = body() if callable(body) else body
                conn.request("POST", parts.path, body=payload, headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                elapsed = (time.perf_counter() - start) * 1000
                with lock:
                    (latencies.append(elapsed) if response.status == 200 else errors.append(str(response.status)))
            except (OSError, http.client.HTTPException) as exc:
                with lock:
                    errors.append(type(exc).__name__)
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return {"count": len(latencies), "errors": len(errors), "error_kinds": sorted(set(errors)),
            "p50_ms": percentile(latencies, 0.50), "p90_ms": percentile(latencies, 0.90),
            "p99_ms": percentile(latencies, 0.99), "mean_ms": statistics.fmean(latencies) if latencies else float("nan"),
            "throughput_rps": len(latencies) / wall if wall else 0.0, "seconds": wall}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", help="file with the JSON body sent every time")
    parser.add_argument("--feedback-prefix", help="send distinct feedback posts with card ids PREFIX-n instead")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--max-requests", type=int, default=100_000)
    args = parser.parse_args(argv)
    if args.feedback_prefix:
        body = feedback_bodies(args.feedback_prefix)
    else:
        with open(args.body, "rb") as fh:
            body = fh.read()
    print(json.dumps(run(args.url, body, args.concurrency, args.seconds, args.max_requests)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
