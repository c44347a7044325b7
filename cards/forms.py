"""Questionnaires for documentation gaps (cards/questionnaires/*.json, stable canonical URLs)
and the CRD 'Request Form Completion' action: a Task to complete one."""
from __future__ import annotations

import json
from functools import cache
from importlib import resources


from criteria import topics

CANONICAL_BASE = "https://spine-cds.dev/fhir/Questionnaire/"
# Which form documents what a finding of that topic lacks.
FORM_FOR_TOPIC = {
    topics.PT_DOCUMENTATION_MISSING: "spine-pt-course",
    topics.CONSERVATIVE_CARE_INSUFFICIENT: "spine-pt-course",
    topics.SI_FUSION_UNSUPPORTED: "spine-si-diagnostics",
    topics.LEVEL_UNSUPPORTED: "spine-instability-films",
    topics.OSTEOTOMY_UNSUPPORTED: "spine-deformity-measurements",
}
SDC_TEMP = "http://hl7.org/fhir/uv/sdc/CodeSystem/temp"
TASK_CODE = {"system": SDC_TEMP, "code": "complete-questionnaire"}
TASK_PROFILE = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/profile-taskquestionnaire"
# What the EHR does with the completed form: CRD 2.0.1's afterCompletionCode value set (CRD Temporary
# Codes: prior-auth-include, initial-claim-include, all-claims-include), keyed by after-completion-action.
CRD_TEMP = "http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp"
AFTER_COMPLETION_INPUT = {"system": CRD_TEMP, "code": "after-completion-action", "display": "After-completion action"}
AFTER_COMPLETION = {"system": CRD_TEMP, "code": "prior-auth-include", "display": "Include in prior authorization"}


@cache
def questionnaires() -> dict[str, dict]:
    folder = resources.files(__package__).joinpath("questionnaires")
    loaded = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):   # the same order on every file system
        if entry.name.endswith(".json"):
            resource = json.loads(entry.read_text("utf-8"))
            loaded[resource["id"]] = resource
    missing = set(FORM_FOR_TOPIC.values()) - set(loaded)
    if missing:
        raise RuntimeError(f"questionnaires missing: {sorted(missing)}")
    return loaded


def canonical(form_id: str) -> str:
    q = questionnaires()[form_id]
    return f"{q['url']}|{q['version']}"


def form_for(topic: str) -> str | None:
    return FORM_FOR_TOPIC.get(topic)


def completion_task(form_id: str, patient_id: str, payer: dict, order_reference: str,
                    authored_on: str | None, description: str) -> dict:
    """A Task following CRD's profile-taskquestionnaire: coded questionnaire input, requester,
    afterCompletion, based on the order it documents.

    payer: the requester, a Reference to the payer's Organization. The profile's requester is the
    payer asking for the form (STU 2: 1..1 Reference(CRD Organization)), not the clinician signing;
    who fills it in (Task.owner) is the EHR's to set."""
    task = {
        "resourceType": "Task",
        "meta": {"profile": [TASK_PROFILE]},
        "status": "ready",
        "intent": "order",
        "code": {"coding": [TASK_CODE]},
        "description": description,
        "for": {"reference": f"Patient/{patient_id}"},
        "requester": payer,
        "basedOn": [{"reference": order_reference}],
        "input": [
            {"type": {"coding": [{"system": SDC_TEMP, "code": "questionnaire"}], "text": "questionnaire"},
             "valueCanonical": canonical(form_id)},
            {"type": {"coding": [AFTER_COMPLETION_INPUT]},
             "valueCodeableConcept": {"coding": [AFTER_COMPLETION]}},
        ],
    }
    if authored_on:
        task["authoredOn"] = authored_on
    return task
