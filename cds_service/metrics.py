"""Prometheus metrics at GET /metrics. No authentication: restrict the path at the proxy.

- spine_cds_request_duration_seconds{endpoint, hook, status}: latency histogram. `endpoint` is the
  route pattern (e.g. /cds-services/<service_id>, or "unmatched"), `hook` the hook of the service
  called ("none" elsewhere): label values never come from the client, so their number stays small.
- spine_cds_cards_total{topic}: cards answered, read from the JSON answer of POST /cds-services/<id>.
- spine_cds_fhir_fetches_total{key, outcome}: FHIR server fetches per prefetch key, ok or failed.

gunicorn serves with several worker processes, each counting on its own. When the app is made by
`create_app()` without arguments (the `serve` command), prometheus-client's multiprocess mode is used:
every process writes its samples to files in PROMETHEUS_MULTIPROC_DIR and /metrics merges the files,
whichever worker answers. When that variable is unset, a fresh temporary directory is made here, in
the gunicorn master before it forks, and removed when the master exits. A directory set by the
operator is emptied of old sample files at start (prometheus-client needs it empty between runs).
There are no gauges, so the samples of a dead worker stay valid (counters must not go back) and no
gunicorn child_exit hook (multiprocess.mark_process_dead) is needed.

A caller that gives create_app an environ or overrides (tests) gets metrics kept in its own registry
instead, and os.environ is left alone. (Should a test process build an app without arguments, the
directory it makes is marked as its own, so services it starts later do not share or wipe it.)
"""
from __future__ import annotations

import atexit
import glob
import os
import shutil
import tempfile
import time

from flask import Flask, Response, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess, values
from prometheus_client.exposition import choose_encoder

from . import discovery

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_MADE_BY_ENV = "SPINE_CDS_METRICS_DIR_MADE_BY"  # "<pid>:<dir>" of a directory made here, not by the operator
_prepared_dirs: set[str] = set()  # emptied once per process: a second app must not wipe the first's files


class Metrics:
    def __init__(self, registry: CollectorRegistry | None):
        self.latency = Histogram("spine_cds_request_duration_seconds", "Time to answer a request",
                                 ["endpoint", "hook", "status"], registry=registry)
        self.cards = Counter("spine_cds_cards", "Cards answered, by card topic", ["topic"], registry=registry)
        self.fhir_fetches = Counter("spine_cds_fhir_fetches", "Fetches from the EHR's FHIR server, by prefetch key "
                                    "and outcome (ok or failed)", ["key", "outcome"], registry=registry)

    def record_fhir_fetch(self, key: str, outcome: str) -> None:
        self.fhir_fetches.labels(key=key, outcome=outcome).inc()


def init_app(app: Flask, *, multiprocess_mode: bool) -> Metrics:
    """Register /metrics and the request hooks; call before auth.init_app so timing starts first."""
    if multiprocess_mode:
        path = _prepare_multiprocess_dir()
        metrics = Metrics(registry=None)  # the samples are read back from the files, not from these objects
        exposed = CollectorRegistry()
        multiprocess.MultiProcessCollector(exposed, path=path)
    else:
        exposed = CollectorRegistry()
        metrics = Metrics(registry=exposed)
    app.extensions["metrics"] = metrics

    @app.before_request
    def start_timer():
        g.metrics_started = time.perf_counter()

    @app.after_request
    def observe(response: Response) -> Response:
        started = g.pop("metrics_started", None)
        endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
        if started is not None:
            metrics.latency.labels(endpoint, _hook(), str(response.status_code)).observe(time.perf_counter() - started)
        if request.endpoint == "cds.call_service" and response.status_code == 200 and not response.is_streamed:
            for topic in _card_topics(response):
                metrics.cards.labels(topic=topic).inc()
        return response

    @app.get("/metrics")
    def metrics_view():
        # Prometheus text or OpenMetrics, whichever the scraper's Accept header asks for.
        encoder, content_type = choose_encoder(request.headers.get("Accept"))
        return Response(encoder(exposed), content_type=content_type)

    return metrics


def _hook() -> str:
    service_id = (request.view_args or {}).get("service_id")
    service = discovery.service(service_id) if isinstance(service_id, str) else None
    return service["hook"] if service else "none"


def _card_topics(response: Response) -> list[str]:
    body = response.get_json(silent=True)
    cards = body.get("cards") if isinstance(body, dict) else None
    topics = []
    for card in cards if isinstance(cards, list) else ():
        topic = ((card.get("source") or {}).get("topic") or {}).get("code") if isinstance(card, dict) else None
        topics.append(topic if isinstance(topic, str) else "none")
    return topics


def _prepare_multiprocess_dir() -> str:
    path = os.environ.get(MULTIPROC_ENV)
    made_by = os.environ.get(_MADE_BY_ENV, "")
    if path and made_by.endswith(f":{path}") and made_by != f"{os.getpid()}:{path}":
        # Inherited from the spine-cds process that started this one (a test run, an old master
        # re-executing): that directory is its own, sharing it would mix and wipe its samples.
        path = None
    if not path:
        path = tempfile.mkdtemp(prefix="spine-cds-metrics-")
        os.environ[MULTIPROC_ENV] = path  # inherited by the gunicorn workers forked after this
        os.environ[_MADE_BY_ENV] = f"{os.getpid()}:{path}"
        atexit.register(_remove_dir, path, os.getpid())
    elif path not in _prepared_dirs:
        os.makedirs(path, exist_ok=True)
        for stale in glob.glob(os.path.join(path, "*.db")):
            os.remove(stale)
    _prepared_dirs.add(path)
    # prometheus-client picks its value class when first imported, maybe before the variable was set.
    if not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.get_value_class()
    return path


def _remove_dir(path: str, owner_pid: int) -> None:
    # Forked workers inherit this atexit hook; only the master that made the directory removes it.
    if os.getpid() == owner_pid:
        close_files = getattr(values, "close_all_multiprocess_files", None)  # prometheus-client >= 0.22
        if close_files:
            close_files()
        shutil.rmtree(path, ignore_errors=True)
