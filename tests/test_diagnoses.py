"""fhir_mappings.diagnoses: problem-list Conditions -> one Diagnosis per (value set, Condition)."""
from __future__ import annotations

from datetime import date

import pytest

from fhir_mappings.diagnoses import map_diagnoses
from tests.stubs import fhir


def summary(found) -> set[tuple]:
    return {(d.valueset, d.coded, d.onset) for d in found}


@pytest.mark.parametrize("condition, expected", [
    (fhir.condition("Spondylolisthesis, lumbar region", "M43.16", onset="2025-06-02"),
     {("spondylolisthesis", True, date(2025, 6, 2))}),
    # one coding may sit in two value sets
    (fhir.condition("Spinal stenosis, lumbar region with neurogenic claudication", "M48.062", onset="2024-11-01"),
     {("stenosis", True, date(2024, 11, 1)), ("stenosis_with_claudication", True, date(2024, 11, 1))}),
    (fhir.condition("Flatback syndrome, lumbar region", "M40.36", onset="2023-05-01"), {("flat_back", True, date(2023, 5, 1))}),
    (fhir.condition("Sacroiliitis, right", "M46.1", onset="2024-10-01"), {("si_joint_disorder", True, date(2024, 10, 1))}),
    # text only: no coding, or a local code
    (fhir.condition("Lumbar spondylolisthesis", onset="2025-01-05"), {("spondylolisthesis", False, date(2025, 1, 5))}),
    (fhir.condition("Ankylosing spondylitis", onset="2020-02-01"), {("ankylosing_spondylitis", False, date(2020, 2, 1))}),
    # the coding counts once, not again for its name
    (fhir.condition("Spondylolisthesis", "M43.16"), {("spondylolisthesis", True, None)}),
    (fhir.condition("No scoliosis", onset="2025-01-05"), set()),
    (fhir.condition("Aortic stenosis", "I35.0"), set()),
    (fhir.condition("Low back pain", "M54.50", note="No scoliosis. Scoliosis was ruled out."), set()),
    (fhir.condition("Low back pain", note="Known scoliosis."), set()),          # notes never make a diagnosis
])
def test_conditions(condition, expected):
    assert summary(map_diagnoses([condition])) == expected


def test_verified_snomed_coding_is_coded():
    condition = fhir.condition("Spinal instability")
    condition["code"]["coding"] = [{"system": "http://snomed.info/sct", "code": "240220009"}]
    assert summary(map_diagnoses([condition])) == {("spinal_instability", True, None)}


@pytest.mark.parametrize("condition", [
    fhir.condition("Spondylolisthesis, lumbar region", "M43.16", clinical_status="resolved"),
    fhir.condition("Spondylolisthesis, lumbar region", "M43.16", clinical_status="inactive"),
    fhir.with_fields(fhir.condition("Spondylolisthesis, lumbar region", "M43.16"),
                     verificationStatus=fhir.verification("refuted")),
    fhir.with_fields(fhir.condition("Spondylolisthesis, lumbar region", "M43.16"),
                     verificationStatus=fhir.verification("entered-in-error")),
])
def test_inactive_or_refuted_conditions_are_no_diagnosis(condition):
    assert map_diagnoses([condition]) == ()


@pytest.mark.parametrize("fields, onset", [
    ({"onsetDateTime": "2024-03-05T10:00:00Z"}, date(2024, 3, 5)),
    ({"onsetPeriod": {"start": "2023-07-01"}}, date(2023, 7, 1)),
    ({"recordedDate": "2022-01-15"}, date(2022, 1, 15)),
    ({}, None),
])
def test_onset(fields, onset):
    condition = fhir.with_fields(fhir.condition("Sacroiliitis", "M46.1"), **fields)
    (diagnosis,) = map_diagnoses([condition])
    assert diagnosis.onset == onset and diagnosis.evidence.day == onset


def test_evidence_names_the_condition_and_its_code():
    coded = fhir.condition("Spondylolisthesis, lumbar region", "M43.16")
    named = fhir.condition("Lumbar   spondylolisthesis")
    first, second = map_diagnoses([coded, named])
    assert (first.evidence.reference, first.evidence.description) == (
        f"Condition/{coded['id']}", "M43.16 Spondylolisthesis, lumbar region")
    assert (second.evidence.reference, second.evidence.description) == (f"Condition/{named['id']}", "“Lumbar spondylolisthesis”")


def test_only_conditions_make_diagnoses():
    report = fhir.report("MRI", "Spondylolisthesis at L4-5.", "2025-01-01")
    order = fhir.service_request("Fusion for spondylolisthesis L4-L5", cpts=["22633"])
    observation = fhir.observation("Scoliosis", value_string="present")
    assert map_diagnoses([report, order, observation]) == ()
