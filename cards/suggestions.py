"""FHIR resources the cards propose, built and validated with fhir.resources R4B."""
from __future__ import annotations

import uuid

from fhir.resources.R4B.servicerequest import ServiceRequest


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
