"""Issue 11's second condition: the 200-resource figures no more than 20 % slower than when it was filed.

A figure from another machine or another load client says nothing about that: the bench's machine
changes between runs (the same code measured 26 ms and 9 ms at 200 resources on two of them). So the
bench serves the revision that was main when the issue was filed beside today's service, in the same
run, on the same machine, with the same wrk rows, and compares the two.

The revision is taken with `git archive` from this checkout's history into a temporary folder and served
by its own `serve` command with this environment's packages (its requirements are a subset of today's).
BENCH_BASELINE names another revision, or `none` to skip it; without git or the revision (a tarball,
a shallow clone) the rows are not measured and the check says why.
"""
from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

FILED_AT = "9cc3909"   # main on 2026-11-21, when issue 11 ("The chart as EHRs and payers keep it") was filed
MAX_SLOWDOWN = 1.2     # "do not get more than 20 % slower"
ROWS = {(200, False)}  # the chart that existed at filing: the 200-resource order-sign without notes


def revision() -> str | None:
    value = os.environ.get("BENCH_BASELINE", FILED_AT).strip()
    return None if value.lower() in ("", "none") else value


def extract(rev: str, dest: Path, repo: Path = Path(".")) -> str | None:
    """The tree of `rev` written under dest; None when done, else why it could not be."""
    try:
        done = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", rev],
                              capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"git archive {rev}: {exc}"
    if done.returncode != 0:
        return f"git archive {rev}: {done.stderr.decode(errors='replace').strip()[:300]}"
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tar:
        tar.extractall(dest, filter="data")
    return None


def environment(tree: Path, var_dir: Path) -> dict:
    """The environment in which benchmarks.servers.service_command, run from `tree`, serves that tree."""
    return {**os.environ, "CDS_AUTH": "off", "CDS_VAR_DIR": str(var_dir), "PYTHONPATH": str(tree)}


def slowdowns(service: dict, filed: dict) -> dict:
    """Today's figure over the filing one, each oriented so that > 1 is slower."""
    return {"p50": service["p50_ms"] / filed["p50_ms"], "p99": service["p99_ms"] / filed["p99_ms"],
            "throughput": filed["throughput_rps"] / service["throughput_rps"]}


def best(runs: list[dict]) -> dict:
    """Each figure at its best over the runs (lowest p50 and p99, highest throughput), with every run kept;
    a failed run fails the whole."""
    failed = next((r for r in runs if r.get("failed")), None)
    if failed is not None:
        return failed
    return {"p50_ms": min(r["p50_ms"] for r in runs), "p99_ms": min(r["p99_ms"] for r in runs),
            "throughput_rps": max(r["throughput_rps"] for r in runs), "requests": sum(r["requests"] for r in runs),
            "failed": None, "runs": runs}
