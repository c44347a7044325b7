"""`make bench`: the service against the framework floor, side by side in one run.

1. Latency and throughput at chart sizes 50, 200, 1,000 and 10,000 resources: the service and a
   floor app (bare Flask parsing the same body) under the same gunicorn settings (2 sync workers),
   driven one at a time by a separate load process. Reports p50/p99, throughput and service/floor.
2. Fallback fetch: prefetch omitted, a FHIR server adding 100 ms to every query: the answer
   should take about the slowest query (a few, with more queries than workers), not the sum.
3. Load without loss: order-sign calls and distinct feedback posts at once; every feedback post
   answered 200 must be in the database.
Writes bench-results/results.json, bench-results/latency.png and prints the table.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from benchmarks.charts import chart_size, documents_request, sized_request
from tests.support.servers import ServerProcess, mini_fhir_command

SIZES = (50, 200, 1000, 10000, "10000-documents")
SECONDS = {50: 8, 200: 8, 1000: 8, 10000: 12, "10000-documents": 15}
# "10000-documents": 10,000 resources of which 300 are ~4 KB visit notes (base64 text/plain
# DocumentReferences) and 50 HTML imaging reports (base64 presentedForm), every text distinct.
DOCUMENTS = "10000-documents"
CONCURRENCY = 4
SERVICE_PATH = "/cds-services/spine-surgery-order-sign"
OUT = Path("bench-results")
BIN = Path(sys.executable).parent


def service_command(port: int) -> list[str]:
    return [sys.executable, "-m", "cds_service", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]


def floor_command(port: int) -> list[str]:
    return [str(BIN / "gunicorn"), "-w", "2", "-k", "sync", "-b", f"127.0.0.1:{port}", "--timeout", "30",
            "--access-logfile", "-", "benchmarks.floor:app"]


def load(url: str, body_file: Path | None, seconds: float, concurrency: int = CONCURRENCY, **extra) -> dict:
    argv = [sys.executable, "-m", "benchmarks.load", "--url", url, "--concurrency", str(concurrency),
            "--seconds", str(seconds)]
    argv += ["--body", str(body_file)] if body_file else []
    for key, value in extra.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def warm(url: str, body: bytes, n: int = 10) -> None:
    with requests.Session() as session:
        for _ in range(n):
            session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=60).raise_for_status()


def compare_sizes(service: ServerProcess, floor: ServerProcess) -> list[dict]:
    rows = []
    for size in SIZES:
        body_file = OUT / f"order-sign-{size}.json"
        request = documents_request() if size == DOCUMENTS else sized_request(size)
        body_file.write_bytes(json.dumps(request).encode())
        body = body_file.read_bytes()
        row = {"size": chart_size(request), "body_kb": round(len(body) / 1024), "documents": size == DOCUMENTS}
        for name, server in (("floor", floor), ("service", service)):
            warm(server.url + SERVICE_PATH, body)
            row[name] = load(server.url + SERVICE_PATH, body_file, SECONDS[size])
        row["ratio_p50"] = row["service"]["p50_ms"] / row["floor"]["p50_ms"]
        row["ratio_throughput"] = row["service"]["throughput_rps"] / row["floor"]["throughput_rps"]
        rows.append(row)
        print(f"  {size!s:>6} resources: service p50 {row['service']['p50_ms']:.1f} ms, floor p50 "
              f"{row['floor']['p50_ms']:.1f} ms", flush=True)
    return rows


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


def without_loss(tmp: Path, seconds: float = 20) -> dict:
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


def plot(rows: list[dict], path: Path) -> None:
    rows = [r for r in rows if not r.get("documents")]
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sizes = [r["size"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, style in (("service", "o-"), ("floor", "s--")):
        ax.plot(sizes, [r[name]["p50_ms"] for r in rows], style, label=f"{name} p50")
        ax.plot(sizes, [r[name]["p99_ms"] for r in rows], style, alpha=0.45, label=f"{name} p99")
    ax.set_xscale("log"), ax.set_yscale("log")
    ax.set_xlabel("chart size (resources in prefetch)"), ax.set_ylabel("latency (ms)")
    ax.set_title("order-sign latency vs chart size (gunicorn, 2 sync workers, 2 cores)")
    ax.grid(True, which="both", alpha=0.3), ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def table(rows: list[dict]) -> str:
    lines = ["| resources | body | service p50 | service p99 | service req/s | floor p50 | floor p99 | floor req/s | "
             "p50 ratio | throughput ratio |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s, f = r["service"], r["floor"]
        lines.append(f"| {r['size']:,}{' (300 notes, 50 HTML reports)' if r.get('documents') else ''} | {r['body_kb']:,} KB | {s['p50_ms']:.1f} ms | {s['p99_ms']:.1f} ms | "
                     f"{s['throughput_rps']:.0f} | {f['p50_ms']:.1f} ms | {f['p99_ms']:.1f} ms | {f['throughput_rps']:.0f} | "
                     f"{r['ratio_p50']:.2f} | {r['ratio_throughput']:.2f} |")
    return "\n".join(lines)


def targets(rows: list[dict], fetch: dict, loss: dict) -> list[str]:
    by = {r["size"]: r for r in rows if not r.get("documents")}
    documents = next(r for r in rows if r.get("documents"))
    small, large = by.get(1000), by.get(10000)
    per_resource = [(r["service"]["p50_ms"] - by[50]["service"]["p50_ms"]) / (r["size"] - 50) for r in (small, large) if r]
    checks = [
        ("p99 <= 50 ms at 200 resources", by[200]["service"]["p99_ms"] <= 50, f"{by[200]['service']['p99_ms']:.1f} ms"),
        ("throughput >= 50 % of the floor at 200", by[200]["ratio_throughput"] >= 0.5, f"{by[200]['ratio_throughput']:.0%}"),
        ("10,000 resources answered in <= 1 s (p99)", large["service"]["p99_ms"] <= 1000, f"{large['service']['p99_ms']:.0f} ms"),
        ("10,000 resources with 300 notes and 50 HTML reports in <= 1 s (p99)", documents["service"]["p99_ms"] <= 1000,
         f"{documents['service']['p99_ms']:.0f} ms (p50 {documents['service']['p50_ms']:.0f} ms)"),
        ("linear: cost per resource 1,000 vs 10,000 within 2x", max(per_resource) <= 2 * min(per_resource),
         " vs ".join(f"{x * 1000:.1f} µs" for x in per_resource)),
        ("fallback fetch near the slowest query, not the sum", fetch["p50_ms"] < fetch["sum_of_queries_ms"] / 2,
         f"{fetch['p50_ms']:.0f} ms vs sum {fetch['sum_of_queries_ms']} ms"),
        ("load without loss", loss["errors"] == 0 and loss["lost"] == 0,
         f"{loss['errors']} errors, {loss['feedback']['count']} feedback sent, {loss['feedback_stored']} stored"),
    ]
    return [f"- [{'x' if ok else ' '}] {name}: {value}" for name, ok, value in checks]


def main() -> int:
    OUT.mkdir(exist_ok=True)
    machine = f"{platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()} · {platform.platform()}"
    print(f"machine: {machine}", flush=True)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = {**os.environ, "CDS_AUTH": "off", "CDS_VAR_DIR": str(tmp / "var")}
        with ServerProcess.start(service_command, ready_path="/cds-services", env=env, timeout=60) as service, \
                ServerProcess.start(floor_command, ready_path="/cds-services", timeout=60) as floor:
            print("sizes:", flush=True)
            rows = compare_sizes(service, floor)
            print("fallback fetch:", flush=True)
            fetch = fallback_fetch(service, tmp)
        print("load without loss:", flush=True)
        loss = without_loss(tmp)
    results = {"machine": machine, "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "concurrency": CONCURRENCY,
               "sizes": rows, "fallback_fetch": fetch, "load_without_loss": loss}
    (OUT / "results.json").write_text(json.dumps(results, indent=2))
    plot(rows, OUT / "latency.png")
    report = "\n".join([f"Machine: {machine}", "", table(rows), "",
                        f"Fallback fetch ({fetch['queries']} queries, +100 ms each): p50 {fetch['p50_ms']:.0f} ms, max {fetch['max_ms']:.0f} ms, "
                        f"at most {fetch['max_in_flight']} queries in flight",
                        f"Load without loss ({loss['seconds']} s): {loss['order_sign']['count']} order-sign calls, "
                        f"{loss['feedback']['count']} feedback posts, {loss['feedback_stored']} stored, {loss['errors']} errors",
                        "", "Targets:", *targets(rows, fetch, loss)])
    (OUT / "report.md").write_text(report + "\n")
    print("\n" + report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
