"""Patient binding (contract, "What the service reads"): the chart holds only the patient of the call.

A FHIR server or a prefetch can hand over a resource about someone else: a search that ignored its
`patient` parameter, a redirect to another chart, a careless EHR. Using it would let another
patient's physical therapy or imaging decide this patient's order. So every resource whose
`subject`, `patient` or `beneficiary` is not `context.patientId`, and a Patient resource that is not
that patient, is left out, and each prefetch key that lost resources says so in a `data-unavailable`
card (how many, of which type; never which patient they were about).

A reference names the patient when it is `Patient/<id>`, an absolute URL ending in it, or either
with `/_history/<v>`. Anything else in one of those fields (a Group, a contained `#ref`, an
identifier-only reference) cannot be checked, so the resource is left out too. Resources with none
of these fields (Medication, Binary, Practitioner) are not bound to a patient and stay.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import replace

from .prefetch import Hydrated

BOUND_FIELDS = ("subject", "patient", "beneficiary")


def bind(hydrated: Hydrated, patient_id: str) -> Hydrated:
    """`hydrated` without the resources about another patient; each key that lost some is reported."""
    resources: dict[str, list[dict]] = {}
    failures = dict(hydrated.failures)
    for key, items in hydrated.resources.items():
        kept, left_out = [], Counter()
        for resource in items:
            if belongs(resource, patient_id):
                kept.append(resource)
            else:
                rtype = resource.get("resourceType") if isinstance(resource, dict) else None
                left_out[rtype if isinstance(rtype, str) and rtype.isalpha() and len(rtype) < 64 else "resource"] += 1
        resources[key] = kept
        if left_out:
            counts = ", ".join(f"{n} {rtype}" for rtype, n in sorted(left_out.items()))
            report = (f"{counts} not about this patient (context.patientId) or not checkably so; "
                      "left out, so what they would show was not checked")
            failures[key] = f"{failures[key]}; {report}" if key in failures else f"{key}: {report}"
    return replace(hydrated, resources=resources, failures=failures)


def belongs(resource, patient_id: str) -> bool:
    """True when `resource` is about `patient_id`, or is not bound to any patient."""
    if not isinstance(resource, dict):
        return False
    if resource.get("resourceType") == "Patient":
        return resource.get("id") == patient_id
    for field in BOUND_FIELDS:
        if field not in resource:
            continue
        value = resource[field]
        references = value if isinstance(value, list) else [value]
        if not references or not all(names_patient(ref, patient_id) for ref in references):
            return False
    return True


def names_patient(reference, patient_id: str) -> bool:
    """True when a FHIR Reference points at Patient/<patient_id> (relative, absolute or versioned)."""
    if not isinstance(reference, dict) or not isinstance(reference.get("reference"), str):
        return False
    if reference["reference"] == "Patient/" + patient_id:   # the common form, checked without splitting
        return True
    segments = reference["reference"].split("?", 1)[0].rstrip("/").split("/")
    if len(segments) >= 4 and segments[-2] == "_history":
        segments = segments[:-2]
    return len(segments) >= 2 and segments[-2] == "Patient" and segments[-1] == patient_id
