"""FHIR resources the cards propose, built and validated with fhir.resources R4B."""
from __future__ import annotations

import copy
import uuid

from fhir.resources.R4B.servicerequest import ServiceRequest

from terminology.levels import find_levels


def pt_referral(patient_id: str, user_id: str | None, weeks: int, reason_order: str, authored_on: str | None) -> dict:
    """A draft referral for a supervised PT course that would satisfy the rule."""
    resource = {
        "resourceType": "ServiceRequest",
        "id": f"pt-referral-{uuid.uuid4().hex[:12]}",
        "status": "draft",
        "intent": "order",
        "category": [{"text": "Physical therapy referral"}],
        "code": {"text": f"Formal physical therapy, lumbar spine: supervised, at least weekly, {weeks} weeks"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "occurrenceTiming": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "wk",
                                        "boundsDuration": {"value": weeks, "unit": "wk", "system": "http://unitsofmeasure.org", "code": "wk"}}},
        "reasonReference": [{"reference": reason_order}],
        "note": [{"text": "Requested before spine surgery: the chart has no dated course of formal physical therapy."}],
    }
    if authored_on:
        resource["authoredOn"] = authored_on
    if user_id and "/" in user_id:
        resource["requester"] = {"reference": user_id}
    ServiceRequest.model_validate(resource)
    return resource


def _narrow_text(text: str, ordered: set, new_range: str) -> str:
    """Rewrite the level mentions that overlap the ordered levels; leave other levels alone."""
    out, last = [], 0
    for mention in find_levels(text):
        if set(mention.range.interspaces()) & ordered:
            out += [text[last:mention.start], new_range]
            last = mention.end
    return "".join(out) + text[last:]


def narrow_order_levels(resource: dict, ordered, new_range: str, unsupported: str) -> dict:
    """The draft order again, with its levels narrowed to the supported range (a whole-resource update)."""
    updated = copy.deepcopy(resource)
    ordered = set(ordered)
    concepts = [updated.get("code")] + list(updated.get("bodySite") or ()) + list(updated.get("orderDetail") or ())
    for concept in concepts:
        if isinstance(concept, dict) and isinstance(concept.get("text"), str):
            concept["text"] = _narrow_text(concept["text"], ordered, new_range)
    for note in updated.get("note") or ():
        if isinstance(note, dict) and isinstance(note.get("text"), str):
            note["text"] = _narrow_text(note["text"], ordered, new_range)
    updated.setdefault("note", []).append(
        {"text": f"Levels narrowed to {new_range}: no documented indication at {unsupported}."})
    ServiceRequest.model_validate(updated)
    return updated
