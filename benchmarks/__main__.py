"""`make bench`: the service against the framework floor, side by side in one run.

1. Rows (wrk, benchmarks/wrk.py): at 50, 200, 1,000 and 10,000 resources, each without and with
   notes (3 % ~4 KB base64 visit notes, 0.5 % HTML report bodies), at 1 connection / 1 wrk thread
   (latency) and 4 connections / 2 threads (throughput), against the service (`spine-cds serve`) and
   the floor (benchmarks/floor.py, a bare Flask route parsing the same body, served by the same
   `serve` code: same asyncio workers, worker count and body buffering), one server at a time.
   Every non-2xx answer, socket error or timeout fails its row, loudly (as does a row with no answer
   at all), and the bench exits 1.
2. Fallback fetch (Python client): prefetch omitted, a FHIR server adding 100 ms to every query:
   the answer should take about the slowest query, not the sum.
3. Load without loss (Python client, benchmarks/load.py): order-sign calls and distinct feedback
   posts at once; every feedback post answered 200 must be in the database.
4. CPU ms per stage of one request (benchmarks/profile_stages.py) at 200 and 10,000 with notes.
5. The 200-resource rows without notes also against the revision at which issue 11 was filed, served
   beside today's in the same run (benchmarks/baseline.py): that issue allows them 20 % slower at most.
Writes bench-results/results.json, report.md and latency.png, and prints the report with a
PASS/FAIL line per issue-15 and issue-11 target. BENCH_QUICK=1: 2 s rows and a short loss run (smoke test).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import requests

from benchmarks import baseline, machine, profile_stages, report, wrk
from benchmarks.charts import bench_request, chart_size, note_counts, sized_request
from benchmarks.servers import WORKERS, floor_command, service_command, warm
from tests.support.servers import ServerProcess, mini_fhir_command

QUICK = os.environ.get("BENCH_QUICK") == "1"
SIZES = (50, 200, 1000, 10000)
LOADS = ((1, 1), (4, 2))   # (connections, wrk threads): latency, then throughput
ROW_SECONDS = {50: 5, 200: 5, 1000: 5, 10000: 8}   # the whole bench stays near 5 minutes
MIN_REQUESTS = 5          # at 1 connection, at least about this many per row...
MAX_ROW_SECONDS = 30      # ...unless one request takes longer than 6 s
LOSS_SECONDS = 3 if QUICK else 10
FILING_RUNS = 2           # runs of each side in the comparison with the revision at issue 11's filing
SERVICE_PATH = "/cds-services/spine-surgery-order-sign"
OUT = Path("bench-results")


def seconds(size: int) -> int:
    return 2 if QUICK else ROW_SECONDS[size]


def load(url: str, body_file: Path | None, seconds: float, concurrency: int = 4, **extra) -> dict:
    """The Python load client (benchmarks/load.py) in its own process: used for the loss check."""
    argv = [sys.executable, "-m", "benchmarks.load", "--url", url, "--concurrency", str(concurrency),
            "--seconds", str(seconds)]
    argv += ["--body", str(body_file)] if body_file else []
    for key, value in extra.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def row_seconds(size: int, one_request: float, connections: int) -> int:
    """The row's duration, long enough for a few requests per connection whatever the chart costs
    (wrk drops requests still in flight at its deadline: a row shorter than one request measures
    nothing). More connections than workers wait their turn, so their requests take longer."""
    wanted = MIN_REQUESTS * one_request * max(1, connections / WORKERS)
    return math.ceil(max(seconds(size), min(MAX_ROW_SECONDS, wanted)))   # wrk takes whole seconds


def measure(server: ServerProcess, body_file: Path, duration: float, connections: int, threads: int) -> dict:
    try:
        result = wrk.run(server.url + SERVICE_PATH, body_file, connections=connections, threads=threads,
                         seconds=duration)
    except wrk.WrkError as exc:
        result = {"failed": str(exc)}
    machine.wait_idle(server.pid)   # requests wrk left in flight must not land on the next row
    return result


def compare_sizes(service: ServerProcess, floor: ServerProcess, filed: ServerProcess | str) -> list[dict]:
    """Every size with and without notes against the service and the floor; the rows in baseline.ROWS also
    against the revision at filing (`filed`: its server, or why it is not served)."""
    rows = []
    for size in SIZES:
        for notes in (False, True):
            request = bench_request(size, notes)
            body_file = OUT / f"order-sign-{size}{'-notes' if notes else ''}.json"
            body = orjson.dumps(request)   # compact, as EHRs send it; the same bytes as the stage profile's
            body_file.write_bytes(body)
            counts = note_counts(size) if notes else (0, 0)
            base = {"size": chart_size(request), "notes": notes, "notes_count": counts[0], "reports_count": counts[1],
                    "body_kb": round(len(body) / 1024)}
            measured = {}
            for name, server in (("floor", floor), ("service", service)):
                measured[name] = measure_loads(server, body, body_file, size)
            if (size, notes) in baseline.ROWS:
                measured.update(against_filing(service, filed, body, body_file, size, measured["service"]))
            for connections, threads in LOADS:
                row = {**base, "connections": connections, "threads": threads,
                       "service": measured["service"][connections], "floor": measured["floor"][connections]}
                if "filed" in measured:
                    row["filed"] = measured["filed"][connections]
                    row["service_vs_filed"] = measured["service_vs_filed"][connections]
                row.update(ratios(row))
                rows.append(row)
                say(row)
    return rows


def measure_loads(server: ServerProcess, body: bytes, body_file: Path, size: int) -> dict:
    """{connections: wrk result} for each of LOADS, after warming the server with the body."""
    try:
        one_request = warm(server.url + SERVICE_PATH, body)
    except requests.RequestException as exc:
        return {c: {"failed": f"warm-up: {exc}"} for c, _ in LOADS}
    return {c: measure(server, body_file, row_seconds(size, one_request, c), c, t) for c, t in LOADS}


def against_filing(service: ServerProcess, filed: ServerProcess | str, body: bytes, body_file: Path, size: int,
                   first: dict) -> dict:
    """The revision at issue 11's filing and today's service, each measured FILING_RUNS times, alternating
    (today's first run is the table's); each figure the better of its runs, on both sides alike, so one
    noisy window on this shared VM (p99 at 4 connections moves ±15 % between runs) does not decide."""
    if isinstance(filed, str):
        failed = {c: {"failed": filed} for c, _ in LOADS}
        return {"filed": failed, "service_vs_filed": first}
    runs = {"filed": [measure_loads(filed, body, body_file, size)], "service": [first]}
    for _ in range(FILING_RUNS - 1):
        runs["service"].append(measure_loads(service, body, body_file, size))
        runs["filed"].append(measure_loads(filed, body, body_file, size))
    return {"filed": {c: baseline.best([r[c] for r in runs["filed"]]) for c, _ in LOADS},
            "service_vs_filed": {c: baseline.best([r[c] for r in runs["service"]]) for c, _ in LOADS}}


def ratios(row: dict) -> dict:
    s, f = row["service"], row["floor"]
    if s.get("failed") or f.get("failed"):
        return {"ratio_p50": None, "ratio_throughput": None}
    return {"ratio_p50": s["p50_ms"] / f["p50_ms"], "ratio_throughput": s["throughput_rps"] / f["throughput_rps"]}


def say(row: dict) -> None:
    label = f"  {row['size']:>6,} {'with' if row['notes'] else 'no  '} notes, {row['connections']} conn:"
    for name in ("service", "floor"):
        if row[name].get("failed"):
            print(f"{label} {name} ROW FAILED: {row[name]['failed']}", file=sys.stderr, flush=True)
    if row["ratio_p50"] is not None:
        s, f = row["service"], row["floor"]
        print(f"{label} service p50 {s['p50_ms']:.1f} ms p99 {s['p99_ms']:.1f} ms {s['throughput_rps']:.1f} req/s | "
              f"floor p50 {f['p50_ms']:.1f} ms {f['throughput_rps']:.0f} req/s | "
              f"throughput ratio {row['ratio_throughput']:.2f}", flush=True)
    filed = row.get("filed")
    if filed and not filed.get("failed"):
        print(f"{label} at issue 11's filing p50 {filed['p50_ms']:.1f} ms p99 {filed['p99_ms']:.1f} ms "
              f"{filed['throughput_rps']:.1f} req/s", flush=True)
    elif filed:
        print(f"{label} at issue 11's filing: {filed['failed']}", file=sys.stderr, flush=True)


def fallback_fetch(service: ServerProcess, tmp: Path) -> dict:
    request = sized_request(200)
    chart = [e["resource"] for value in request.pop("prefetch").values()
             for e in (value.get("entry") or [] if value.get("resourceType") == "Bundle" else [{"resource": value}])]
    bundle = tmp / "chart.json"
    bundle.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in chart]}))
    with ServerProcess.start(mini_fhir_command(bundle, token="bench", page_size=1000, delay_ms=100)) as fhir:
        request["fhirServer"] = fhir.url
        request["fhirAuthorization"] = {"access_token": "bench", "token_type": "Bearer", "expires_in": 30,
                                        "scope": "patient/*.read", "subject": "bench"}
        times = []
        with requests.Session() as session:
            for _ in range(12):
                start = time.perf_counter()
                answer = session.post(service.url + SERVICE_PATH, json=request, timeout=60)
                answer.raise_for_status()
                assert "data-unavailable" not in answer.text, answer.text[:500]
                times.append((time.perf_counter() - start) * 1000)
        stats = requests.get(fhir.url + "/_stats", timeout=5).json()
    times = sorted(times[2:])   # the first calls open connections
    queries = round(stats["requests"] / 12)   # one call's queries: every key, Observations one per category
    return {"queries": queries, "delay_ms_per_query": 100, "sum_of_queries_ms": queries * 100,
            "p50_ms": times[len(times) // 2], "max_ms": times[-1], "max_in_flight": stats.get("max_in_flight")}


def without_loss(tmp: Path, seconds: float) -> dict:
    env = {**os.environ, "CDS_AUTH": "off", "CDS_VAR_DIR": str(tmp / "loss")}
    with ServerProcess.start(service_command, ready_path="/cds-services", env=env, timeout=60) as server:
        body_file = OUT / "order-sign-200.json"
        calls = subprocess.Popen([sys.executable, "-m", "benchmarks.load", "--url", server.url + SERVICE_PATH,
                                  "--body", str(body_file), "--concurrency", "3", "--seconds", str(seconds)],
                                 stdout=subprocess.PIPE, text=True)
        feedback = load(server.url + SERVICE_PATH + "/feedback", None, seconds, concurrency=3, feedback_prefix="bench")
        order_sign = json.loads(calls.communicate()[0].strip().splitlines()[-1])
    from cds_service.persistence import Store
    stored = len(Store(f"sqlite:///{tmp / 'loss' / 'spine-cds.sqlite3'}").feedback_rows())
    return {"seconds": seconds, "order_sign": order_sign, "feedback": feedback, "feedback_stored": stored,
            "lost": feedback["count"] - stored, "errors": order_sign["errors"] + feedback["errors"]}


def serve_filed(servers: contextlib.ExitStack, tmp: Path) -> ServerProcess | str:
    """The server of the revision at issue 11's filing, or why there is none."""
    rev = baseline.revision()
    if rev is None:
        return "not measured: BENCH_BASELINE=none"
    tree = tmp / "filed"
    problem = baseline.extract(rev, tree)
    if problem:
        return f"not measured: {problem}"
    try:
        return servers.enter_context(ServerProcess.start(service_command, ready_path="/cds-services",
                                                         env=baseline.environment(tree, tmp / "filed-var"),
                                                         timeout=60, cwd=tree))
    except Exception as exc:   # a revision that does not start must not cost the rest of the bench
        return f"not measured: revision {rev} did not start ({exc})"


def main() -> int:
    if shutil.which("wrk") is None:
        print("make bench needs wrk: run benchmarks/install-wrk (as root: apt-get install -y wrk)", file=sys.stderr)
        return 2
    OUT.mkdir(exist_ok=True)
    host = machine.describe()
    print(f"machine: {machine.summary(host)}", flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = {**os.environ, "CDS_AUTH": "off", "CDS_VAR_DIR": str(tmp / "var")}
        with contextlib.ExitStack() as servers:
            service = servers.enter_context(ServerProcess.start(service_command, ready_path="/cds-services", env=env,
                                                                timeout=60))
            floor = servers.enter_context(ServerProcess.start(floor_command, ready_path="/cds-services", timeout=60))
            filed = serve_filed(servers, tmp)
            at_filing = filed if isinstance(filed, str) else baseline.revision()
            print(f"rows (wrk; service and floor: gunicorn, {WORKERS} asyncio workers; at issue 11's filing: "
                  f"{at_filing}):", flush=True)
            rows = compare_sizes(service, floor, filed)
            print("fallback fetch:", flush=True)
            fetch = fallback_fetch(service, tmp)
        print("load without loss:", flush=True)
        loss = without_loss(tmp, LOSS_SECONDS)
    print("profile per stage:", flush=True)
    stages = profile_stages.profile(profile_stages.SIZES, quick=QUICK)
    host["load_after"] = machine.load_average()
    checks = report.checks(rows, fetch, loss)
    results = {"machine": host, "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "quick": QUICK, "workers": WORKERS,
               "loads": [{"connections": c, "wrk_threads": t} for c, t in LOADS], "rows": rows,
               "fallback_fetch": fetch, "load_without_loss": loss, "profile": stages,
               "checks": [{"target": name, "pass": ok, "measured": value} for name, ok, value in checks],
               "bench_seconds": round(time.perf_counter() - started)}
    (OUT / "results.json").write_text(json.dumps(results, indent=2))
    text = "\n".join([
        f"Machine: {machine.summary(host)}", "",
        f"wrk rows (service and floor: gunicorn, {WORKERS} asyncio workers; {'BENCH_QUICK: 2 s' if QUICK else '5-8 s'} per row, "
        f"or {MIN_REQUESTS} requests' time up to {MAX_ROW_SECONDS} s when longer):", "",
        report.table(rows), "",
        report.filed_table(rows, baseline.revision()), "",
        f"Fallback fetch (Python client; {fetch['queries']} queries, +100 ms each): p50 {fetch['p50_ms']:.0f} ms, "
        f"max {fetch['max_ms']:.0f} ms, at most {fetch['max_in_flight']} queries in flight",
        f"Load without loss (Python client, {loss['seconds']} s): {loss['order_sign']['count']} order-sign calls, "
        f"{loss['feedback']['count']} feedback posts, {loss['feedback_stored']} stored, {loss['errors']} errors", "",
        profile_stages.markdown(stages), "",
        f"Checks (issue 15 targets first; whole bench {results['bench_seconds']} s):", "",
        *report.check_lines(checks)])
    (OUT / "report.md").write_text(text + "\n")
    print("\n" + text)
    report.plot(rows, OUT / "latency.png",
                f"order-sign latency vs chart size (wrk, 1 connection; gunicorn {WORKERS} asyncio workers; {host['cores']} cores)")
    failed = [r for r in rows if r["service"].get("failed") or r["floor"].get("failed")]
    if failed or loss["errors"] or loss["lost"]:
        print(f"\nBENCH FAILED: {len(failed)} rows failed, {loss['errors']} errors and {loss['lost']} lost "
              "feedback posts in the loss run (see above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
