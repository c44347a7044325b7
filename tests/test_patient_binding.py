"""Patient binding (cds_service/patient_binding.py): which resources are about context.patientId."""
from __future__ import annotations

import pytest

from cds_service.patient_binding import belongs, bind
from cds_service.prefetch import Hydrated

P = "pat-1"
CASES = {  # resource -> kept?
    "relative subject": ({"resourceType": "Condition", "subject": {"reference": "Patient/pat-1"}}, True),
    "absolute subject": ({"resourceType": "Condition", "subject": {"reference": "https://ehr/fhir/Patient/pat-1"}}, True),
    "versioned subject": ({"resourceType": "Condition", "subject": {"reference": "Patient/pat-1/_history/3"}}, True),
    "Coverage beneficiary": ({"resourceType": "Coverage", "beneficiary": {"reference": "Patient/pat-1"}}, True),
    "not patient-bound": ({"resourceType": "Medication", "id": "m"}, True),
    "another subject": ({"resourceType": "Condition", "subject": {"reference": "Patient/pat-2"}}, False),
    "an id that only starts the same": ({"resourceType": "Condition", "subject": {"reference": "Patient/pat-10"}}, False),
    "a Group": ({"resourceType": "Observation", "subject": {"reference": "Group/pat-1"}}, False),
    "identifier only": ({"resourceType": "Condition", "subject": {"identifier": {"value": "pat-1"}}}, False),
    "contained": ({"resourceType": "Condition", "subject": {"reference": "#p"}}, False),
    "patient field of another": ({"resourceType": "Claim", "patient": {"reference": "Patient/x"}}, False),
    "the Patient itself": ({"resourceType": "Patient", "id": "pat-1"}, True),
    "another Patient": ({"resourceType": "Patient", "id": "pat-2"}, False),
    "subject not an object": ({"resourceType": "Condition", "subject": "Patient/pat-1"}, False),
}


@pytest.mark.parametrize("case", list(CASES))
def test_belongs(case):
    resource, kept = CASES[case]
    assert belongs(resource, P) is kept


def test_bind_leaves_out_and_reports_per_key_without_naming_the_other_patient():
    mine = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/pat-1"}}
    theirs = {"resourceType": "Condition", "id": "c2", "subject": {"reference": "Patient/victim-7"}}
    hydrated = Hydrated(resources={"conditions": [mine, theirs], "patient": [{"resourceType": "Patient", "id": P}]},
                        failures={}, sources={"conditions": "prefetch", "patient": "prefetch"})
    bound = bind(hydrated, P)
    assert bound.resources == {"conditions": [mine], "patient": [{"resourceType": "Patient", "id": P}]}
    assert set(bound.failures) == {"conditions"}
    assert "1 Condition not about this patient" in bound.failures["conditions"]
    assert "victim-7" not in bound.failures["conditions"]
