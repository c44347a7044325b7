"""FHIR resources the cards propose, built and validated with fhir.resources R4B."""
from __future__ import annotations

import copy
import re
import uuid


from terminology.levels import Interspace, find_levels


SNOMED = "http://snomed.info/sct"
CPT = "http://www.ama-assn.org/go/cpt"
PELVIC_FIXATION_CPT = "22848"
# The order's own words for pelvic fixation, removed when the narrowed order drops it.
_PELVIC_WORDS = re.compile(r"\s*(?:,|\band\b|\bwith\b|\+)?\s*pelvic fixation\b", re.IGNORECASE)


def pt_referral(patient_id: str, user_id: str | None, weeks: int, surgery_order: str, authored_on: str | None,
                note: str) -> dict:
    """A draft referral for a supervised PT course that would satisfy the rule: coded, and pointing
    only at targets R4 allows (no reasonReference to the surgery order)."""
    key = uuid.uuid5(uuid.NAMESPACE_URL, f"pt-referral|{patient_id}|{weeks}|{authored_on}")
    resource = {
        "resourceType": "ServiceRequest",
        "id": f"pt-referral-{key.hex[:12]}",
        "status": "draft",
        "intent": "order",
        "category": [{"coding": [{"system": SNOMED, "code": "3457005", "display": "Patient referral"}]}],
        "code": {"coding": [{"system": SNOMED, "code": "91251008", "display": "Physical therapy procedure"}],
                 "text": "Formal physical therapy, supervised, at least weekly"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "occurrenceTiming": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "wk",
                                        "boundsDuration": {"value": weeks, "unit": "wk", "system": "http://unitsofmeasure.org", "code": "wk"}}},
        "supportingInfo": [{"reference": surgery_order}],
        "note": [{"text": note}],
    }
    if authored_on:
        resource["authoredOn"] = authored_on
    if user_id and "/" in user_id:
        resource["requester"] = {"reference": user_id}
    return resource


def _narrow_text(text: str, ordered: set, new_range: str) -> str:
    """Rewrite the level mentions that overlap the ordered levels; leave other levels alone."""
    out, last = [], 0
    for mention in find_levels(text):
        if set(mention.range.interspaces()) & ordered:
            out += [text[last:mention.start], new_range]
            last = mention.end
    return "".join(out) + text[last:]


def narrow_order_levels(resource: dict, ordered, new_range: str, note: str, drop_pelvic: bool = False) -> dict:
    """The draft order again, with its levels narrowed to the supported range (a whole-resource update),
    and without pelvic fixation when the chart does not support it for the narrowed construct."""
    updated = copy.deepcopy(resource)
    ordered = {Interspace.parse(s) for s in ordered}
    concepts = [updated.get("code")] + list(updated.get("bodySite") or ()) + list(updated.get("orderDetail") or ())
    for concept in concepts:
        if isinstance(concept, dict) and isinstance(concept.get("text"), str):
            concept["text"] = _narrow_text(concept["text"], ordered, new_range)
            if drop_pelvic:
                concept["text"] = _PELVIC_WORDS.sub("", concept["text"]).strip()
    for n in updated.get("note") or ():
        if isinstance(n, dict) and isinstance(n.get("text"), str):
            n["text"] = _narrow_text(n["text"], ordered, new_range)
    code = updated.get("code")
    if drop_pelvic and isinstance(code, dict) and isinstance(code.get("coding"), list):
        code["coding"] = [c for c in code["coding"] if not (isinstance(c, dict) and c.get("system") == CPT
                                                              and str(c.get("code", "")).lstrip("+") == PELVIC_FIXATION_CPT)]
        if not code["coding"]:
            del code["coding"]
    updated.setdefault("note", []).append({"text": note})
    return updated
