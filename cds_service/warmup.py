"""Before gunicorn forks: run one order-sign through the pipeline, then freeze what is loaded.

Two costs fall on early and on large calls otherwise:
- Rules, vocabularies, compiled patterns and templates load on first use; a worker's first EHR call
  would pay for all of them. One evaluation of a small chart (warmup_request.json: seed 001 with two
  base64 notes and an HTML report) loads them in the master, and every worker inherits them.
- The readiness check parses every data file once (cds_service.data_files) and then only looks at
  their sizes and times: done here, so a worker's first call does not parse 34 YAML files (~0.4 s).
- Python's cyclic garbage collector traverses every live object on a full collection: the loaded data
  (~125,000 objects) was walked again and again while a 10,000-resource chart was parsed, about
  0.2 s of a 1 s call. gc.freeze() moves it out of the collector's sight (it is never garbage), and a
  larger first-generation threshold lets a call's parsed chart be collected in fewer passes.
Nothing is written: the audit is the route's, and this calls the pipeline beneath it.
"""
from __future__ import annotations

import gc
import json
import logging
from importlib import resources

log = logging.getLogger("spine_cds")

GC_THRESHOLD = (5000, 10, 10)   # CPython's default is (700, 10, 10)


def warm(app) -> None:
    from . import data_files, discovery, order_sign

    data_files.problems()
    try:
        request = json.loads(resources.files(__package__).joinpath("warmup_request.json").read_text("utf-8"))
        order_sign.evaluate(request, discovery.service("spine-surgery-order-sign", False), app.config["CDS"])
    except Exception:   # a warm-up that fails must not stop the service: the first call pays instead
        log.warning("warm-up evaluation failed; the first calls will load the rules", exc_info=True)
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
