"""The data files the service reads, and whether each one is there and parses.

Why a list and not a walk of the folders: a walk cannot notice a file that is missing, which is
exactly what a broken install looks like (a wheel built without its questionnaires answered 500
on every order that produced a card). tests/test_installed_package.py holds this list to the
source tree (every data file is listed, every listed file exists) and to the wheel.

/readyz reports what `problems()` finds; the hook answers 503 naming the files instead of
failing half-way through an answer. Parsing is cached per (size, mtime), so the per-request
check costs one stat per file.
"""
from __future__ import annotations

import json
import os
import threading
import time
from importlib import resources

import yaml

DATA_FILES: dict[str, tuple[str, ...]] = {
    "cards": (
        "questionnaires/spine-deformity-measurements.json",
        "questionnaires/spine-instability-films.json",
        "questionnaires/spine-pt-course.json",
        "questionnaires/spine-si-diagnostics.json",
        "text/evidence_read.yaml",
        "text/letter.html.j2",
        "text/letter.md.j2",
        "text/wording.yaml",
    ),
    "cds_service": (
        "discovery.json",
        "openapi.json",
        "schemas/feedback.schema.json",
        "schemas/order_sign_request.schema.json",
        "schemas/r4_required_codes.json",
        "static/sandbox/index.html",
        "static/sandbox/sandbox.css",
        "static/sandbox/sandbox.js",
        "warmup_request.json",
    ),
    "cds_service.migrations": (
        "script.py.mako",
    ),
    "criteria": (
        "profiles/aetna-cpb-0743.yaml",
        "profiles/evicore-cmm.yaml",
        "profiles/nass-2014.yaml",
        "rules/clinical_correlation.yaml",
        "rules/conservative_care.yaml",
        "rules/decompression_levels.yaml",
        "rules/deformity.yaml",
        "rules/discectomy.yaml",
        "rules/exploration.yaml",
        "rules/functional_impairment.yaml",
        "rules/fusion_levels.yaml",
        "rules/glycemic_control.yaml",
        "rules/imaging_outdated.yaml",
        "rules/inpatient.yaml",
        "rules/nicotine_use.yaml",
        "rules/osteotomy.yaml",
        "rules/pelvic_fixation.yaml",
        "rules/pt_documentation.yaml",
        "rules/red_flags.yaml",
        "rules/si_fusion.yaml",
        "rules/sources.yaml",
    ),
    "terminology": (
        "data/care_sources.json",
        "data/clinical_findings.yaml",
        "data/conservative_care.json",
        "data/cpt_catalogue.json",
        "data/imaging_observations.yaml",
        "data/measurements.json",
        "data/medication_classes.json",
        "data/procedure_text.json",
        "data/text/care_plans.yaml",
        "data/text/context.yaml",
        "data/text/level_details.yaml",
        "data/text/level_findings.yaml",
        "data/text/measure_details.yaml",
        "data/text/order_words.yaml",
        "data/text/prose_measures.yaml",
        "data/text/red_flag_details.yaml",
        "data/text/sections.yaml",
        "data/text/si_blocks.yaml",
        "data/valuesets.expanded.json",
        "data/valuesets.json",
    ),
}

_PARSERS = {".json": json.loads, ".yaml": yaml.safe_load, ".yml": yaml.safe_load}
_parsed: dict[str, tuple[int, int]] = {}         # shown name -> (size, mtime_ns) that parsed
_lock = threading.Lock()
_last: tuple[float, tuple[str, ...]] = (0.0, ())
RECHECK_SECONDS = 1.0


def shown_name(package: str, name: str) -> str:
    """How a file is named to an operator: its path inside the installed packages."""
    return f"{package.replace('.', '/')}/{name}"


def _check(package: str, name: str) -> str | None:
    shown = shown_name(package, name)
    try:
        entry = resources.files(package).joinpath(name)
        stat = os.stat(entry)          # an installed or source tree: a real path on disk
        key = (stat.st_size, stat.st_mtime_ns)
        if _parsed.get(shown) == key:
            return None
        data = entry.read_bytes()
        parse = _PARSERS.get(os.path.splitext(name)[1])
        if parse is not None:
            parse(data)
        elif not data:
            return f"{shown} is empty"
        _parsed[shown] = key
        return None
    except FileNotFoundError:
        return f"{shown} is missing"
    except (OSError, ModuleNotFoundError) as exc:
        return f"{shown} cannot be read ({type(exc).__name__})"
    except (ValueError, yaml.YAMLError) as exc:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        return f"{shown} does not parse ({type(exc).__name__})"


def problems() -> tuple[str, ...]:
    """Every data file that is missing, unreadable or broken, in words naming the file."""
    with _lock:
        return tuple(p for package, names in DATA_FILES.items() for name in names
                     if (p := _check(package, name)) is not None)


def recent_problems() -> tuple[str, ...]:
    """problems(), looked at most once a second: the hook asks on every call."""
    global _last
    checked_at, found = _last
    now = time.monotonic()
    if now - checked_at >= RECHECK_SECONDS:
        found = problems()
        _last = (now, found)
    return found
