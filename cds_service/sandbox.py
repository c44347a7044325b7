"""The sandbox: a page where a person picks a synthetic scenario (or pastes a Bundle or an order-sign
request), runs the order-sign pipeline in-process and sees the orders, the per-level facts and the
cards as an EHR shows them.

    GET  /sandbox                          the page (static files in cds_service/static/sandbox/)
    GET  /sandbox/<file>                   sandbox.js, sandbox.css
    GET  /sandbox/api/profiles             payer profiles of thresholds
    GET  /sandbox/api/scenarios            synthetic scenarios: name, description, expected_topics
    GET  /sandbox/api/scenarios/<name>     ?seed=N&shape=coded|ehr|payer -> {"bundle": ..., "request": ...}
    POST /sandbox/api/evaluate             ?profile=P&scenario=S&shape=H; body: an order-sign request or a FHIR Bundle
                                           -> the answer, orders, levels, determinations, letter, and the
                                           evidence read (cards/provenance.py) and what could not be read

Decisions worth knowing:
- CDS_SANDBOX=off registers nothing: every /sandbox path is the ordinary JSON 404.
- The paths are outside /cds-services, so auth.py asks no client JWT here. The page's feedback posts go
  to /cds-services/<id>/feedback like any client's, so with CDS_AUTH=required they get 401 (the page says
  why). Evaluating here needs no JWT, so with CDS_AUTH=required the sandbox refuses requests that would make
  the service fetch from a `fhirServer` (it would otherwise call any URL for an unauthenticated caller):
  the chart must come as prefetch or inside a Bundle.
- Bad input is a 4xx JSON answer (errors.py) naming the problem, as on /cds-services.
- Claims are read as by a payer's deployment when the request carries them or the shape is `payer`,
  whatever CDS_PAYER_DATA says (evaluate.reads_payer_data): the tester gave the chart to be read.
"""
from __future__ import annotations

import hashlib
import io
from functools import cache
from importlib import resources

import orjson
from flask import Blueprint, Flask, Response, current_app, redirect, request, send_file

from cards import letter as letters
from cards import wording
from cards.provenance import evidence_rows, panel_words
from criteria.spec import load_profile, profile_ids
from fhir_mappings.facts import Evidence, Facts, LevelFact
from fhir_mappings.level_facts import STENOSIS_ORDER
from fhir_mappings.orders import MappingError, map_orders
from terminology import cpt

from . import discovery, fhir_servers, order_sign
from .config import ConfigError
from .errors import InvalidRequest, UnknownService
from .evaluate import reads_payer_data
from .inputs import as_request, json_body
from .synthetic.instances import synthesize
from .synthetic.scenarios import SCENARIOS
from .synthetic.shapes import SHAPES
from .validation import validate_order_sign

SERVICE_ID = "spine-surgery-order-sign"
STATIC_FILES = {"index.html": "text/html", "sandbox.js": "text/javascript", "sandbox.css": "text/css"}
# Everything the page loads comes from this service; nothing inline, no CDN.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
MAX_SEED = 2**63 - 1

# The columns of the levels table and the level-fact kinds each one shows.
COLUMNS = {
    "instability": ("spondylolisthesis", "instability", "destabilizing_decompression"),
    "stenosis": ("stenosis",),
    "deformity": ("deformity",),
    "prior_fusion": ("prior_fusion",),
    "pseudarthrosis_or_hardware": ("pseudarthrosis", "hardware_failure"),
}

bp = Blueprint("sandbox", __name__)


def init_app(app: Flask) -> None:
    """Register the sandbox unless CDS_SANDBOX=off."""
    # Unset: off when client JWTs are required, since its evaluations need no token.
    setting = app.config["CDS"].get("SANDBOX") or ("on" if app.config["CDS"]["AUTH"] == "off" else "off")
    if setting not in ("on", "off"):
        raise ConfigError(f"CDS_SANDBOX must be 'on' or 'off', not {setting!r}")
    if setting == "on":
        app.register_blueprint(bp)


def _json(body, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype="application/json")


# --- the page -------------------------------------------------------------------------------------

@cache
def _static(name: str) -> tuple[bytes, str]:
    data = resources.files(__package__).joinpath("static", "sandbox", name).read_bytes()
    return data, hashlib.sha256(data).hexdigest()[:32]


def _send_static(name: str) -> Response:
    data, etag = _static(name)
    response = send_file(io.BytesIO(data), mimetype=STATIC_FILES[name], etag=etag, max_age=0,
                         conditional=True, last_modified=None)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/sandbox")
def page():
    return _send_static("index.html")


@bp.get("/sandbox/")
def page_with_slash():
    # The page links its files relative to /sandbox; from /sandbox/ they would resolve one level too deep.
    return redirect("../sandbox", code=308)


@bp.get("/sandbox/<name>")
def static_file(name: str):
    if name not in STATIC_FILES or name == "index.html":
        raise UnknownService(f"no sandbox file {name!r}", field="path")
    return _send_static(name)


# --- scenarios and profiles -------------------------------------------------------------------------

@bp.get("/sandbox/api/profiles")
def profiles():
    default = current_app.config["CDS"]["PROFILE"]
    return _json([{"id": pid, "title": load_profile(pid).title, "default": pid == default} for pid in profile_ids()])


@bp.get("/sandbox/api/scenarios")
def scenarios():
    return _json([{"name": s.name, "description": s.description, "expected_topics": sorted(s.expected_topics)}
                  for s in SCENARIOS.values()])


def _seed() -> int:
    raw = request.args.get("seed", "0")
    try:
        seed = int(raw)
    except ValueError:
        raise InvalidRequest(f"seed must be a whole number, not {raw[:40]!r}", field="seed") from None
    if not 0 <= seed <= MAX_SEED:
        raise InvalidRequest(f"seed must be between 0 and {MAX_SEED}", field="seed")
    return seed


def _shape() -> str | None:
    shape = request.args.get("shape") or None
    if shape is not None and shape not in SHAPES:
        raise InvalidRequest(f"unknown shape {shape[:40]!r}; known: {', '.join(SHAPES)}", field="shape")
    return shape


@bp.get("/sandbox/api/scenarios/<name>")
def scenario(name: str):
    found = SCENARIOS.get(name)
    if found is None:
        raise UnknownService(f"no scenario {name!r}; known: {', '.join(SCENARIOS)}", field="path")
    seed = _seed()
    shape = _shape() or "coded"
    instance = synthesize(name, 1, seed, shape)[0]
    body = {"name": name, "seed": seed, "shape": shape, "description": found.description,
            "expected_topics": sorted(instance.expected_topics), "bundle": instance.bundle,
            "request": instance.request}
    why = found.differs_in(shape)
    if why:
        body["shape_note"] = why
    return _json(body)


# --- evaluate --------------------------------------------------------------------------------------

def labels() -> dict:
    """Words the page shows, from the same data as cards and letters (cards/text/wording.yaml)."""
    return {"classes": {c: wording.term(c) for c in sorted({e.procedure_class for e in cpt.catalogue().values()})},
            "determinations": dict(wording.text()["determinations"]), "evidence": panel_words()}


@bp.get("/sandbox/api/labels")
def labels_endpoint():
    return _json(labels())


@bp.post("/sandbox/api/evaluate")
def evaluate():
    cfg = current_app.config["CDS"]
    profile = request.args.get("profile") or None
    if profile is not None and profile not in profile_ids():
        raise InvalidRequest(f"unknown profile {profile[:60]!r}; known: {', '.join(profile_ids())}", field="profile")
    scenario_name = request.args.get("scenario") or None
    if scenario_name is not None and scenario_name not in SCENARIOS:
        raise InvalidRequest(f"unknown scenario {scenario_name[:60]!r}", field="scenario")
    shape = _shape()
    hook_request = as_request(json_body())
    validate_order_sign(hook_request)
    payer_data = reads_payer_data(hook_request, cfg["PAYER_DATA"], shape)
    service = discovery.service(SERVICE_ID, payer_data)
    if hook_request["hook"] != service["hook"]:
        raise InvalidRequest(f"service {SERVICE_ID} answers hook {service['hook']!r}, not {hook_request['hook']!r}",
                             field="$.hook")
    fhir_servers.check(hook_request.get("fhirServer"), cfg)
    if cfg["AUTH"] != "off" and hook_request.get("fhirServer"):
        raise InvalidRequest("with CDS_AUTH=required the sandbox does not fetch from a fhirServer: send the chart "
                             "as prefetch, or paste a Bundle holding it", field="$.fhirServer")
    if profile is not None:
        hook_request = {**hook_request, "extension": {**(hook_request.get("extension") or {}),
                                                      order_sign.PROFILE_EXTENSION: profile}}
    chosen = order_sign.choose_profile(hook_request, cfg["PROFILE"])
    result = order_sign.evaluate(hook_request, service, cfg, current_app.extensions.get("fhir_client"))
    orders = result.facts.orders if result.facts is not None else _orders_only(hook_request)
    letter_data = letters.build(result.determinations, list(result.findings), result.facts, chosen,
                                hook_request["context"]["patientId"])
    body = {"profile": chosen, "request": hook_request, "answer": result.answer,
            "orders": [_order_row(o) for o in orders], "levels": level_rows(result.facts),
            # Rendered here, from the same templates as /review: the page shows HTML, never parses markdown.
            "detail_html": {c["uuid"]: letters.markdown_html(c["detail"]) for c in result.answer["cards"] if c.get("detail")},
            "determinations": [{k: o[k] for k in ("reference", "name", "determination", "determination_text", "codes")}
                               for o in letter_data["orders"]],
            "letter_html": letters.body_html(letter_data) if letter_data["orders"] else "",
            "labels": labels(), "payer_data": payer_data,
            # What the rules cited, resource by resource, and what the service could not read or fetch.
            "evidence": evidence_rows(result.findings),
            "unread": list(result.facts.unavailable + result.facts.unread) if result.facts is not None else []}
    if shape is not None:
        body["shape"] = shape
    if scenario_name is not None:
        found = SCENARIOS[scenario_name]
        body["scenario"] = scenario_name
        body["expected_topics"] = sorted(found.expected_in(shape or "coded"))
        if found.differs_in(shape or "coded"):
            body["shape_note"] = found.differs_in(shape or "coded")
    return _json(body)


def _orders_only(hook_request: dict):
    """The draft orders when none is spine surgery (evaluate maps no facts then)."""
    try:
        return map_orders(order_sign.draft_resources(hook_request))
    except MappingError as exc:
        raise InvalidRequest(str(exc), field=exc.field) from None


def _order_row(order) -> dict:
    procedures = []
    for p in order.procedures:
        labels = [(cpt.lookup(code).label if cpt.lookup(code) else "") for code in p.codes]
        procedures.append({"class": p.procedure_class, "codes": list(p.codes), "code_labels": labels,
                           "levels": [str(r) for r in p.levels], "interspaces": [str(i) for i in p.interspaces]})
    return {"reference": order.reference, "label": order.label,
            "authoredOn": order.authored_on.isoformat() if order.authored_on else None, "procedures": procedures}


# --- the levels table ------------------------------------------------------------------------------

# Measurements of one motion segment go on that segment's row (instability column); regional and global
# sagittal/coronal parameters go on the "no single level" row (deformity column), with their levels.
SEGMENT_MEASURES = {"translation_flexion_extension": "translation {} mm on flexion-extension",
                    "angulation_flexion_extension": "angulation {}° on flexion-extension",
                    "slip_percent": "slip {} %"}
REGIONAL_MEASURES = {"pi_ll_mismatch": "PI-LL {}°", "sagittal_vertical_axis": "SVA {} cm", "pelvic_tilt": "PT {}°",
                     "cobb_angle": "Cobb {}°", "thoracic_kyphosis": "TK {}°", "pelvic_incidence": "PI {}°",
                     "lumbar_lordosis": "LL {}°"}


def _number(value: float) -> str:
    return f"{value:g}"


def _listhesis(facts: list[LevelFact]) -> str:
    grades = [int(f.severity) for f in facts if f.severity and f.severity.isdigit()]
    percents = [f.value for f in facts if f.value is not None]
    text = f"listhesis grade {max(grades)}" if grades else "listhesis (ungraded)"
    return text + (f" ({_number(max(percents))} %)" if percents else "")


def _instability(facts: list[LevelFact]) -> str:
    mm = [f.value for f in facts if f.value is not None]
    return f"instability, translation {_number(max(mm))} mm" if mm else "instability"


def _stenosis(facts: list[LevelFact]) -> str:
    graded = [f.severity for f in facts if f.severity in STENOSIS_ORDER and f.severity]
    worst = max(graded, key=STENOSIS_ORDER.index) if graded else None
    return f"{worst.replace('-', ' to ')} stenosis" if worst else "stenosis (ungraded)"


def _deformity(facts: list[LevelFact]) -> str:
    degrees = [f.value for f in facts if f.value is not None]
    hedged = all(f.severity == "subtle" for f in facts)
    text = "subtle curvature (not significant)" if hedged else "deformity"
    return text + (f", Cobb {_number(max(degrees))}°" if degrees else "")


_PRESENT_TEXT = {
    "spondylolisthesis": _listhesis,
    "instability": _instability,
    "destabilizing_decompression": lambda facts: "destabilizing decompression planned",
    "stenosis": _stenosis,
    "deformity": _deformity,
    "prior_fusion": lambda facts: "prior fusion",
    "pseudarthrosis": lambda facts: "pseudarthrosis",
    "hardware_failure": lambda facts: "hardware failure",
}
_ABSENT_TEXT = {
    "spondylolisthesis": "no listhesis", "instability": "no instability", "destabilizing_decompression": None,
    "stenosis": "absent", "deformity": "absent", "prior_fusion": "no prior fusion",
    "pseudarthrosis": "no pseudarthrosis", "hardware_failure": "no hardware failure",
}


def _evidence(evidence: Evidence) -> dict:
    return {"reference": evidence.reference, "date": evidence.day.isoformat() if evidence.day else None,
            "description": evidence.description}


def _cell(facts: list[LevelFact], kinds: tuple[str, ...], measures: list[tuple[str, Evidence]]) -> dict | None:
    """One cell: what is documented present (or, for a kind with nothing present, documented absent), the
    measurements that belong there, and the evidence of each."""
    parts, used = [], []
    present = False
    for kind in kinds:
        found = [f for f in facts if f.kind == kind and f.present]
        denied = [f for f in facts if f.kind == kind and not f.present]
        if found:
            parts.append(_PRESENT_TEXT[kind](found))
            used += [f.evidence for f in found]
            present = True
        elif denied and _ABSENT_TEXT[kind]:
            parts.append(_ABSENT_TEXT[kind])
            used += [f.evidence for f in denied]
    for text, evidence in measures:
        if text not in parts:
            parts.append(text)
        used.append(evidence)
        present = True
    if not parts:
        return None
    evidence, seen = [], set()
    for item in used:
        if item.reference not in seen:
            seen.add(item.reference)
            evidence.append(_evidence(item))
    return {"text": "; ".join(parts), "present": present, "evidence": evidence}


def _measures(facts: Facts) -> dict:
    """(interspace or None, column) -> [(text, evidence)] for the measurements with a value; regional
    parameters in REGIONAL_MEASURES order (PI-LL first), whatever order the chart gave them in."""
    placed: dict = {}
    regional_rank = {name: rank for rank, name in enumerate(REGIONAL_MEASURES)}
    for m in facts.measurements:
        if m.value is None:
            continue
        levels = ", ".join(map(str, m.levels))
        if m.name in SEGMENT_MEASURES:
            text = SEGMENT_MEASURES[m.name].format(_number(m.value))
            spaces = sorted({s for r in m.levels for s in r.interspaces()})
            for space in spaces or [None]:
                where = f" ({levels})" if space is None and levels else ""
                placed.setdefault((space, "instability"), []).append((0, text + where, m.evidence))
        elif m.name in REGIONAL_MEASURES:
            text = REGIONAL_MEASURES[m.name].format(_number(m.value)) + (f" ({levels})" if levels else "")
            placed.setdefault((None, "deformity"), []).append((regional_rank[m.name], text, m.evidence))
    return {key: [(text, evidence) for _, text, evidence in sorted(items, key=lambda item: item[0])]
            for key, items in placed.items()}


def level_rows(facts: Facts | None) -> list[dict]:
    """One row per interspace ordered or with facts, head to tail; then one row ("interspace": null) for
    what names no single level: facts without a level, regional and global measurements."""
    if facts is None:
        return []
    ordered: dict = {}
    for order in facts.orders:
        for procedure in order.procedures:
            for space in procedure.interspaces:
                classes = ordered.setdefault(space, [])
                if procedure.procedure_class not in classes:
                    classes.append(procedure.procedure_class)
    by_space: dict = {}
    for fact in facts.level_facts:
        by_space.setdefault(fact.interspace, []).append(fact)
    measures = _measures(facts)
    spaces = set(ordered) | {s for s in by_space if s is not None} | {s for s, _ in measures if s is not None}
    rows = [_row(space, ordered.get(space, []), by_space.get(space, []), measures) for space in sorted(spaces)]
    if None in by_space or any(s is None for s, _ in measures):
        rows.append(_row(None, [], by_space.get(None, []), measures))
    return rows


def _row(space, classes: list[str], facts: list[LevelFact], measures: dict) -> dict:
    row = {"interspace": str(space) if space is not None else None, "ordered": classes}
    for column, kinds in COLUMNS.items():
        row[column] = _cell(facts, kinds, measures.get((space, column), []))
    return row
