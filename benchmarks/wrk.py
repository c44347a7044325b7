"""Drive load with wrk (a C load generator: the client is never what limits the numbers) and read
the one JSON line benchmarks/post.lua prints at the end of a run.

    run("http://127.0.0.1:8080/cds-services/spine-surgery-order-sign", Path("body.json"),
        connections=4, threads=2, seconds=10)

gives requests, failures (non-2xx answers plus socket errors and timeouts), p50/p90/p99/max latency
in ms and req/s. A run with a failure, or with no request answered at all, has "failed" set to a
sentence naming what went wrong; the caller must not report its numbers as a result.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).with_name("post.lua")
MARK = "wrk-json "
TIMEOUT_S = 60   # per request: the largest charts take seconds; wrk's default (2 s) would count them as errors


class WrkError(RuntimeError):
    pass


def parse(stdout: str) -> dict:
    """The result of one wrk run from its output (the last `wrk-json` line of post.lua's done())."""
    lines = [line[len(MARK):] for line in stdout.splitlines() if line.startswith(MARK)]
    if not lines:
        raise WrkError("wrk printed no result line (is benchmarks/post.lua the script?):\n" + stdout[-2000:])
    raw = json.loads(lines[-1])
    latency = {k: v / 1000 for k, v in raw["latency_us"].items()}
    seconds = raw["duration_us"] / 1e6
    errors = raw["errors"]
    # errors.status (wrk's count of statuses > 399) is a subset of non2xx: not added twice.
    socket_errors = errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]
    result = {
        "requests": raw["requests"], "non2xx": raw["non2xx"], "statuses": raw["statuses"],
        "socket_errors": {k: errors[k] for k in ("connect", "read", "write", "timeout")},
        "errors": raw["non2xx"] + socket_errors, "seconds": seconds,
        "p50_ms": latency["p50"], "p90_ms": latency["p90"], "p99_ms": latency["p99"],
        "max_ms": latency["max"], "mean_ms": latency["mean"],
        "throughput_rps": (raw["requests"] - raw["non2xx"]) / seconds if seconds else 0.0,
    }
    result["failed"] = failure(result)
    return result


def failure(result: dict) -> str | None:
    problems = []
    if result["non2xx"]:
        problems.append(f"{result['non2xx']} non-2xx answers ({', '.join(f'{n}x {s}' for s, n in sorted(result['statuses'].items()))})")
    problems += [f"{n} {kind} errors" for kind, n in result["socket_errors"].items() if n]
    if not result["requests"]:
        problems.append("no request answered within the run")
    return "; ".join(problems) or None


def command(url: str, body_file: Path, *, connections: int, threads: int, seconds: int) -> list[str]:
    if seconds != int(seconds) or seconds < 1:
        raise ValueError(f"wrk runs whole seconds, not {seconds!r}")   # it reads -d3.5s as a usage error
    return ["wrk", f"-t{threads}", f"-c{connections}", f"-d{int(seconds)}s", f"--timeout={TIMEOUT_S}s",
            "-s", str(SCRIPT), url, "--", str(body_file)]


def run(url: str, body_file: Path, *, connections: int, threads: int, seconds: int) -> dict:
    if shutil.which("wrk") is None:
        raise WrkError("wrk is not installed: run benchmarks/install-wrk (apt-get install -y wrk as root)")
    argv = command(url, body_file, connections=connections, threads=threads, seconds=seconds)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + TIMEOUT_S + 30)
    if done.returncode != 0:
        raise WrkError(f"{' '.join(argv)} exited {done.returncode}: {(done.stderr + done.stdout).strip()[-2000:]}")
    return {**parse(done.stdout), "connections": connections, "threads": threads}
