"""cds_service/warmup.py: `serve` evaluates warmup_request.json in the master before forking, then
freezes what is loaded. If the request stopped evaluating (a schema or pipeline change), the warm-up
would only log a warning and every worker would start cold: this holds it to a real evaluation."""
from __future__ import annotations

import gc
import json
import logging
from importlib import resources

from cds_service import discovery, order_sign, warmup
from cds_service.app import create_app


def test_the_warmup_request_is_a_spine_order_with_notes_that_gets_cards(tmp_path):
    app = create_app({"AUTH": "off", "VAR_DIR": str(tmp_path)})
    request = json.loads(resources.files("cds_service").joinpath("warmup_request.json").read_text("utf-8"))
    evaluation = order_sign.evaluate(request, discovery.service("spine-surgery-order-sign", False), app.config["CDS"])
    assert evaluation.facts is not None and evaluation.answer["cards"]
    kinds = {e["resource"]["resourceType"] for bundle in request["prefetch"].values()
             if isinstance(bundle, dict) and bundle.get("resourceType") == "Bundle" for e in bundle.get("entry", [])}
    assert {"DocumentReference", "DiagnosticReport"} <= kinds   # the attachment and text readers are warmed too


def test_warm_evaluates_without_a_warning_and_freezes(tmp_path, caplog):
    app = create_app({"AUTH": "off", "VAR_DIR": str(tmp_path)})
    threshold = gc.get_threshold()
    try:
        with caplog.at_level(logging.WARNING, logger="spine_cds"):
            warmup.warm(app)
        assert not [r for r in caplog.records if r.name == "spine_cds"], caplog.text
        assert gc.get_freeze_count() > 0 and gc.get_threshold() == warmup.GC_THRESHOLD
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_a_failing_warmup_is_a_warning_not_a_failed_start(tmp_path, caplog, monkeypatch):
    app = create_app({"AUTH": "off", "VAR_DIR": str(tmp_path)})
    threshold = gc.get_threshold()

    def broken(*args, **kwargs):
        raise RuntimeError("rules missing")

    monkeypatch.setattr(order_sign, "evaluate", broken)
    try:
        with caplog.at_level(logging.WARNING, logger="spine_cds"):
            warmup.warm(app)
        assert "warm-up evaluation failed" in caplog.text
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_after_warm_a_workers_first_readiness_check_parses_nothing(tmp_path, monkeypatch):
    from cds_service import data_files

    app = create_app({"AUTH": "off", "VAR_DIR": str(tmp_path)})
    monkeypatch.setattr(data_files, "_parsed", {})           # as a fresh master has it
    threshold = gc.get_threshold()
    try:
        warmup.warm(app)
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)

    def parse(data):
        raise AssertionError("a data file was parsed again")

    monkeypatch.setattr(data_files, "_PARSERS", {".json": parse, ".yaml": parse, ".yml": parse})
    assert data_files.problems() == ()       # what each forked worker inherits: sizes and times only
