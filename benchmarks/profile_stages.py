"""CPU ms per stage of one order-sign request, as `spine-cds serve` runs it (min of N runs).

    PYTHONPATH=. python -m benchmarks.profile_stages [--sizes 200 10000] [--runs N] [--json]

The request is the bench's "with notes" chart (benchmarks/charts.py, bench_request) posted through
Flask's test client to the app `serve` builds (create_app() with CDS_AUTH=off, a temporary
CDS_VAR_DIR, the audit log lines written as serve writes them, to /dev/null here). Nothing is added to
the serving path: the functions at the stage boundaries of cds_service/hooks.py and order_sign.py
are wrapped from the outside while this script runs, each wrapper timing time.process_time
exclusive of the wrapped calls nested inside it. "other" is the rest of the request: Flask's
dispatch and the test client, metrics, CORS, patient binding of each resource.

Coverage information is computed only when CDS_COVERAGE_INFORMATION=required (a payer's
deployment); with the default (optional) that stage is only the CRD options and the card links.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections import defaultdict

import orjson

SIZES = (200, 10000)
RUNS = {200: 30, 10000: 5}
QUICK_RUNS = {200: 5, 10000: 1}
PATH = "/cds-services/spine-surgery-order-sign"

# stage -> (module, attribute) pairs called at that stage; "Class.method" for methods.
STAGES = {
    "parse": [("cds_service.hooks", "_body")],   # reading the body and orjson.loads (check_depth excluded)
    "validation": [("cds_service.hooks", "check_depth"), ("cds_service.hooks", "validate_order_sign"),
                   ("cds_service.order_sign", "check_required_codes"), ("cds_service.order_sign", "map_orders")],
    "hydration": [("cds_service.order_sign", "hydrate"), ("cds_service.patient_binding", "bind"),
                  ("cds_service.order_sign", "follow_links"), ("fhir_mappings.chart", "Chart.build")],
    "facts": [("cds_service.order_sign", "build_facts")],
    "criteria": [("criteria.engine", "evaluate"), ("cds_service.order_sign", "determine")],
    "cards": [("cds_service.order_sign", "build_cards"), ("cds_service.order_sign", "limit_cards")],
    "coverage information": [("cds_service.crd", "configuration"), ("cds_service.crd", "select_coverage"),
                             ("cards.coverage_information", "system_actions"),
                             ("cards.coverage_information", "listed_questionnaires")],
    "audit": [("cds_service.persistence", "Store.add_audit"), ("cds_service.hooks", "log.info")],
    "serialisation": [("cds_service.hooks", "_json")],
}
ORDER = [*STAGES, "other", "total"]


class StageTimer:
    """Exclusive CPU time per stage: a wrapper's own time, less that of the wrapped calls inside it."""

    def __init__(self, clock=time.process_time):
        self.clock = clock
        self.spent: dict[str, float] = defaultdict(float)
        self._stack: list[list] = []   # [stage, start, time of nested wrapped calls]

    def wrap(self, stage: str, fn):
        def timed(*args, **kwargs):
            frame = [stage, self.clock(), 0.0]
            self._stack.append(frame)
            try:
                return fn(*args, **kwargs)
            finally:
                self._stack.pop()
                took = self.clock() - frame[1]
                self.spent[stage] += took - frame[2]
                if self._stack:
                    self._stack[-1][2] += took
        return timed


def install(timer: StageTimer) -> tuple[list[str], contextlib.ExitStack]:
    """Wrap every stage function that exists; the names not found (renamed on the hot path) are returned."""
    import importlib

    missing, undo = [], contextlib.ExitStack()
    for stage, targets in STAGES.items():
        for module_name, dotted in targets:
            owner = importlib.import_module(module_name)
            *parents, name = dotted.split(".")
            for parent in parents:
                owner = getattr(owner, parent, None)
            original = getattr(owner, name, None) if owner is not None else None
            if original is None:
                missing.append(f"{module_name}.{dotted}")
                continue
            wrapped = timer.wrap(stage, original)
            # A class attribute gets the bound method back as a staticmethod (Chart.build, a classmethod);
            # an instance method (Store.add_audit) stays a plain function so it binds as before.
            if isinstance(owner, type) and getattr(original, "__self__", None) is owner:
                wrapped = staticmethod(wrapped)
            had = name in vars(owner)
            saved = vars(owner).get(name)
            setattr(owner, name, wrapped)
            undo.callback(setattr, owner, name, saved) if had else undo.callback(delattr, owner, name)
    return missing, undo


def serving_app(var_dir: str):
    """The app `spine-cds serve` builds, with its audit log lines (INFO on stderr) sent to /dev/null."""
    os.environ.update(CDS_AUTH="off", CDS_VAR_DIR=var_dir)
    from cds_service import cli
    from cds_service.app import create_app

    devnull = open(os.devnull, "w")   # open while the process lives: the log handler writes to it
    with contextlib.redirect_stderr(devnull):
        cli._log_to_stderr()   # the handler keeps the stream it was made with
    return create_app()


def profile_size(client, size: int, runs: int) -> dict:
    from benchmarks.charts import bench_request, note_counts

    from fhir_mappings import forked_reading

    # A CPU profile of one process: a large chart's reading is not handed to a forked copy here (its
    # CPU would not be this process's; `serve` forks when a core is idle, see the README's Serving).
    forked_reading.MIN_UNITS = float("inf")
    body = orjson.dumps(bench_request(size, notes=True))
    timer = StageTimer()
    missing, undo = install(timer)
    per_stage: dict[str, list[float]] = defaultdict(list)
    with undo:
        client.post(PATH, data=body, content_type="application/json").close()   # warm: lazy data, imports
        for _ in range(runs):
            timer.spent.clear()
            start = time.process_time()
            answer = client.post(PATH, data=body, content_type="application/json")
            total = time.process_time() - start
            if answer.status_code != 200:
                raise RuntimeError(f"{size} resources: HTTP {answer.status_code}: {answer.get_data(as_text=True)[:500]}")
            answer.close()
            for stage in STAGES:
                per_stage[stage].append(timer.spent.get(stage, 0.0))
            per_stage["other"].append(total - sum(timer.spent.values()))
            per_stage["total"].append(total)
    notes, reports = note_counts(size)
    return {"size": size, "notes": notes, "reports": reports, "body_kb": round(len(body) / 1024), "runs": runs,
            "ms": {stage: round(1000 * min(values), 2) for stage, values in per_stage.items()}, "missing": missing}


def profile(sizes=SIZES, runs: int | None = None, quick: bool = False) -> list[dict]:
    """Run in a child process: the app and its metrics state stay out of the caller (the bench)."""
    import subprocess

    argv = [sys.executable, "-m", "benchmarks.profile_stages", "--json", "--sizes", *map(str, sizes)]
    argv += ["--runs", str(runs)] if runs else ["--quick"] if quick else []
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"profile_stages failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def markdown(results: list[dict]) -> str:
    head = "| stage | " + " | ".join(f"{r['size']:,} with notes ({r['body_kb']:,} KB)" for r in results) + " |"
    lines = ["CPU ms per stage of one request (time.process_time, min of "
             + ", ".join(f"{r['runs']}" for r in results) + " runs; `python -m benchmarks.profile_stages`):", "",
             head, "|---|" + "---|" * len(results)]
    for stage in ORDER:
        lines.append(f"| {stage} | " + " | ".join(f"{r['ms'][stage]:,.2f}" for r in results) + " |")
    missing = sorted({m for r in results for m in r["missing"]})
    if missing:
        lines += ["", "Not found (renamed? their time is in 'other'): " + ", ".join(missing)]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=list(SIZES))
    parser.add_argument("--runs", type=int, help="runs per size (default 30 at 200, 5 at 10,000)")
    parser.add_argument("--quick", action="store_true", help="few runs (smoke test)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as var_dir:
        client = serving_app(var_dir).test_client()
        runs = QUICK_RUNS if args.quick else RUNS
        results = [profile_size(client, size, args.runs or runs.get(size, 5)) for size in args.sizes]
    print(json.dumps(results, indent=2) if args.json else markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
