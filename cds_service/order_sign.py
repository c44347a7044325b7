"""The order-sign service: request -> chart -> facts -> findings -> cards."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources

from cards import coverage_information
from cards.builder import CardContext, build_cards
from criteria import engine
from criteria.determination import determine
from criteria.spec import profile_ids
from fhir_mappings.build import build_facts
from fhir_mappings.chart import Chart
from fhir_mappings.facts import Facts
from fhir_mappings.orders import MappingError, map_orders

from . import crd, patient_binding
from .errors import DataUnavailable, InvalidRequest
from .discovery import SUPPLEMENTARY_KEYS
from .linked import follow_links
from .prefetch import hydrate, policies_from_templates

PROFILE_EXTENSION = "spine-cds.profile"


def choose_profile(request: dict, default: str) -> str:
    requested = (request.get("extension") or {}).get(PROFILE_EXTENSION)
    if requested is None:
        return default
    if requested not in profile_ids():
        raise InvalidRequest(f"unknown profile {requested!r}; known: {', '.join(profile_ids())}",
                             field=f"$.extension['{PROFILE_EXTENSION}']")
    return requested


@cache
def _required_codes() -> dict:
    return json.loads(resources.files(__package__).joinpath("schemas", "r4_required_codes.json").read_text("utf-8"))


def check_required_codes(request: dict) -> None:
    """400 for a draft order whose status, intent or priority is outside R4's required binding."""
    for index, entry in enumerate(request["context"]["draftOrders"].get("entry") or []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        bindings = _required_codes().get(resource.get("resourceType")) if isinstance(resource, dict) else None
        for element, codes in (bindings or {}).items():
            if element in resource and resource[element] not in codes:
                raise InvalidRequest(f"{resource['resourceType']}.{element} {str(resource[element])[:40]!r} is not an R4 "
                                     f"code; use one of {', '.join(codes)}",
                                     field=f"$.context.draftOrders.entry[{index}].resource.{element}")


def draft_resources(request: dict) -> list[dict]:
    entries = request["context"]["draftOrders"].get("entry") or []
    return [e["resource"] for e in entries if isinstance(e, dict) and isinstance(e.get("resource"), dict)]


@dataclass(frozen=True)
class Evaluation:
    answer: dict                       # what the CDS client receives
    facts: Facts | None = None         # None when no spine order was signed
    findings: tuple = ()
    determinations: tuple = ()


def run(request: dict, service: dict, config: dict, fhir_client=None, today: date | None = None) -> dict:
    return evaluate(request, service, config, fhir_client, today).answer


def evaluate(request: dict, service: dict, config: dict, fhir_client=None, today: date | None = None) -> Evaluation:
    profile = choose_profile(request, config["PROFILE"])
    today = today or date.today()
    context = request["context"]
    check_required_codes(request)
    drafts = draft_resources(request)
    try:
        orders = map_orders(drafts)
    except MappingError as exc:
        raise InvalidRequest(str(exc), field=exc.field) from None
    if not any(order.procedures for order in orders):
        return Evaluation({"cards": []})   # not spine surgery: no cards, no chart fetched
    token = (request.get("fhirAuthorization") or {}).get("access_token")
    templates = service.get("prefetch", {})
    policies = policies_from_templates(templates, supplementary=SUPPLEMENTARY_KEYS & set(templates))
    # One budget (CDS_FHIR_DEADLINE) for all FHIR fetching of this call: searches, retries, linked reads.
    budget = fhir_client.budget() if request.get("fhirServer") and hasattr(fhir_client, "budget") else None
    hydrated = hydrate(request.get("prefetch"), context, policies,
                       fhir_server=request.get("fhirServer"), access_token=token, client=fhir_client, budget=budget)
    hydrated = patient_binding.bind(hydrated, context["patientId"])
    # Results, referenced Medications and attachment Binaries named by what was bound, read inside
    # the same budget; what they bring is bound to the patient too.
    bound = hydrated.all_resources()
    linked = follow_links(bound, fhir_server=request.get("fhirServer"), access_token=token,
                          client=fhir_client, budget=budget)
    if budget is not None:
        budget.expire()   # no thread keeps reading for a call already answered
    # follow_links keeps the bound resources first (Binary bodies folded into copies) and appends what
    # it read: only those are new to the patient check.
    read = linked.resources[len(bound):]
    resources = linked.resources[:len(bound)] + [r for r in read if patient_binding.belongs(r, context["patientId"])]
    left_out = len(linked.resources) - len(resources)
    unavailable = tuple(hydrated.failures.values()) + linked.unavailable
    if left_out:
        unavailable += (f"{left_out} linked resources not about this patient (context.patientId); left out",)
    chart = Chart.build(context["patientId"], drafts, resources, today, unavailable)
    options = crd.configuration(request, service)
    coverage = None
    # Only a payer's deployment asserts coverage; a hospital's says its determinations in cards
    # and the letter, and leaves coverage to the payer (README, "Coverage information").
    if options.get("coverage-info", True) and config["COVERAGE_INFORMATION"] == "required":
        if "coverage" in hydrated.failures:
            raise DataUnavailable("the patient's Coverage could not be fetched, so coverage information cannot be given",
                                  field="$.prefetch.coverage")
        payers = {p.strip() for p in config["PAYER_IDS"].split(",") if p.strip()}
        coverage = crd.select_coverage(hydrated.of_type("Coverage"), config["COVERAGE_INFORMATION"], payers)
    facts = build_facts(chart, orders)
    findings = engine.evaluate(facts, profile)
    determinations = determine(facts, findings)
    actions = []
    if coverage is not None:
        actions = coverage_information.system_actions(drafts, determinations, f"Coverage/{coverage.get('id')}", today)
    # The payer a form is asked for by: the Coverage assessed, or else the chart's one active Coverage.
    payer = crd.payer_reference(coverage or crd.select_coverage(hydrated.of_type("Coverage"), "optional", set()))
    ctx = CardContext(request["hookInstance"], context["patientId"], context.get("userId"),
                      coverage_information.listed_questionnaires(actions), payer)
    cards = limit_cards(build_cards(ctx, findings, determinations, facts.unavailable), options)
    answer = {"cards": cards}
    if actions:
        answer["systemActions"] = actions
    return Evaluation(answer, facts, tuple(findings), determinations)


_SEVERITY = {"critical": 0, "warning": 1, "info": 2}


def limit_cards(cards: list[dict], options: dict) -> list[dict]:
    """Drop the card types the client turned off; keep at most max-cards, warnings first."""
    kept = [c for c in cards if options.get(c["source"]["topic"]["code"], True) is not False]
    kept.sort(key=lambda c: _SEVERITY[c["indicator"]])   # stable: rule order within a severity
    return kept[: options.get("max-cards", len(kept))]
