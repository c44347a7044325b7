"""The clinical facts the new criteria read (fhir_mappings/clinical.py): sentences as clinicians write
them, each with its assertion (a hedge, a plan, a relative's or counselling states nothing; for
nicotine a denial says never and a history says former), and coded resources as EHRs send them.
Also the one evaluation context (criteria/context.py)."""
from __future__ import annotations

import gc
from datetime import date

import pytest

from criteria.context import _CONTEXTS, context_of
from criteria.spec import load_profile
from fhir_mappings.clinical import clinical_facts_of, read_text
from fhir_mappings.facts import Facts
from terminology import cpt
from terminology.levels import Interspace
from terminology.procedure_classes import ProcedureClass


def kinds(text: str) -> list[str]:
    return [r.kind for r in read_text(text)]


def nicotine(text: str):
    (found,) = [r for r in read_text(text) if r.kind == "nicotine"]
    return found.status, found.last_use


@pytest.mark.parametrize("text, status, last_use", [
    ("Social history: former smoker, quit 2019.", "former", date(2019, 12, 31)),
    ("Quit smoking in March 2025.", "former", date(2025, 3, 31)),    # the latest day a month may mean
    ("Former smoker (quit 4/2/2025).", "former", date(2025, 4, 2)),
    ("History of smoking.", "former", None),
    ("Smokes 1 ppd.", "current", None),
    ("She vapes daily.", "current", None),
    ("Occasional cigar smoker.", "current", None),
    ("Denies tobacco use.", "never", None),
    ("Never smoker.", "never", None),
    ("Tobacco use: never", "never", None),
])
def test_nicotine_status_and_last_use(text, status, last_use):
    assert nicotine(text) == (status, last_use)


def test_quit_some_months_ago_is_dated_from_the_record():
    (fact,) = clinical_facts_of({"resourceType": "Observation", "id": "o", "status": "final",
                                 "code": {"text": "Social history"}, "effectiveDateTime": "2025-06-01",
                                 "valueString": "Former smoker, quit 3 months ago."})
    assert fact.status == "former" and fact.last_use == date(2025, 3, 3)


@pytest.mark.parametrize("text", [
    "Family history: father smoked 2 ppd.",
    "Plan: smoking cessation before surgery.",
    "Patient education: counseled on smoking cessation.",
    "He will quit smoking before surgery.",
])
def test_nicotine_not_stated(text):
    assert "nicotine" not in kinds(text)


@pytest.mark.parametrize("text, kind, value", [
    ("HbA1c 10.2%.", "hba1c", 10.2), ("Hemoglobin A1c of 7.4 % (2/2025).", "hba1c", 7.4),
    ("ODI 46%.", "odi", 46), ("Oswestry disability index 52 percent.", "odi", 52), ("ODI: 38", "odi", 38),
    ("Pain 8/10.", "pain", 8), ("VAS 6", "pain", 6), ("Cotinine <10 ng/mL.", "cotinine", 10),
    ("Serum cotinine negative.", "cotinine", 0),
])
def test_values_in_prose(text, kind, value):
    assert [r.value for r in read_text(text) if r.kind == kind] == [value]


@pytest.mark.parametrize("text, expected", [
    ("Left L5 radiculopathy with 4/5 EHL weakness and absent left ankle jerk.",
     {"radiculopathy", "motor_deficit", "reflex_change"}),
    ("Neurogenic claudication after two blocks.", {"neurogenic_claudication"}),
    ("Decreased sensation over the dorsum of the left foot.", {"sensory_deficit"}),
    ("Unable to walk more than one block; difficulty with ADLs.", {"adl_limit"}),
    ("Type 2 diabetes mellitus.", {"diabetes"}),
    ("No radiculopathy. No weakness.", set()),
    ("Possible L5 radiculopathy.", set()),
    ("Rule out radiculopathy.", set()),
    # Radiating pain named before the limb ("radiating leg pain"), as after it ("leg pain radiating").
    ("Radiating leg pain into the left calf.", {"radiculopathy"}),
    ("Leg pain radiating into the left calf.", {"radiculopathy"}),
    ("Denies radiating leg pain.", set()),
    ("Father has radiating leg pain.", set()),
    ("Exam: no focal weakness, no numbness, reflexes symmetric.", set()),
    ("Prediabetes, A1c 6.1%.", {"hba1c"}),
    ("No history of diabetes.", set()),
    # A date is not a muscle grade: "2/5/2024" once read as 2/5 strength (found in an ehr-shape MRI report).
    ("EXAM DATE: 2/5/2024", set()),
    ("Seen 3/5/2025 for follow-up.", set()),
    ("Strength 4/5 in the left EHL.", {"motor_deficit"}),
    ("Left EHL 4-/5.", {"motor_deficit"}),
])
def test_symptoms_and_findings_only_when_asserted(text, expected):
    assert set(kinds(text)) == expected


def test_roots_side_and_levels_of_a_finding():
    (radic,) = [r for r in read_text("Left S1 radicular pain.") if r.kind == "radiculopathy"]
    assert radic.side == "left" and radic.roots == ("S1",) and radic.interspaces == (Interspace.parse("L5-S1"),)
    (motor,) = [r for r in read_text("Right 4/5 quadriceps weakness.") if r.kind == "motor_deficit"]
    assert motor.roots == ("L4",) and set(map(str, motor.interspaces)) == {"L3-L4", "L4-L5"}


@pytest.mark.parametrize("text, compressed, level", [
    ("L5-S1 extrusion compressing the S1 root.", True, "L5-S1"),
    ("Left paracentral disc protrusion at L4-5 with impingement on the traversing left L5 nerve root.", True, "L4-L5"),
    ("Small L4-5 disc protrusion without nerve root contact.", False, "L4-L5"),
])
def test_disc_herniation_with_root_compression(text, compressed, level):
    (found,) = [r for r in read_text(text) if r.kind == "disc_herniation"]
    assert found.root_compression is compressed and Interspace.parse(level) in found.interspaces


def coded(system: str, code: str, **fields) -> dict:
    return {"resourceType": "Observation", "id": "obs-1", "status": "final", "effectiveDateTime": "2025-06-01",
            "code": {"coding": [{"system": system, "code": code}]}, **fields}


def test_coded_smoking_status_hba1c_odi_and_conditions():
    loinc, snomed = "http://loinc.org", "http://snomed.info/sct"
    (status,) = clinical_facts_of(coded(loinc, "72166-2", valueCodeableConcept={"coding": [{"system": snomed,
                                                                                           "code": "8517006"}]}))
    assert status.status == "former"
    (lab,) = clinical_facts_of(coded(loinc, "4548-4", valueQuantity={"value": 8.1, "unit": "%"}))
    assert (lab.kind, lab.value) == ("hba1c", 8.1)
    (score,) = clinical_facts_of(coded(loinc, "97909-6", valueQuantity={"value": 42, "unit": "%"}))
    assert (score.kind, score.value) == ("odi", 42)
    icd = "http://hl7.org/fhir/sid/icd-10-cm"
    condition = {"resourceType": "Condition", "id": "c", "code": {"coding": [{"system": icd, "code": "F17.210"}]}}
    assert [(f.kind, f.status) for f in clinical_facts_of(condition)] == [("nicotine", "current")]
    condition["code"]["coding"][0]["code"] = "E11.65"
    assert [f.kind for f in clinical_facts_of(condition)] == ["diabetes"]
    condition["clinicalStatus"] = {"coding": [{"code": "resolved"}]}
    assert clinical_facts_of(condition) == []


def test_one_context_per_facts_and_profile_dropped_with_the_facts():
    facts = Facts(orders=(), care=(), red_flags=(), today=date(2025, 6, 20))
    profile = load_profile()
    first = context_of(facts, profile)
    assert context_of(facts, profile) is first
    assert first.index is first.index and first.deformity is first.deformity    # computed once
    assert context_of(facts, load_profile("evicore-cmm")) is not first
    # Only this chart's two contexts are counted: contexts of earlier tests' charts may be collected now too.
    keys = {key for key in _CONTEXTS if key[0] == id(facts)}
    assert len(keys) == 2
    del facts, first
    gc.collect()
    assert not keys & set(_CONTEXTS)


def test_discectomy_codes_are_decompressions_judged_apart():
    assert {c for c, e in cpt.catalogue().items() if e.judged_as == "discectomy"} == {"63030", "63035", "63042", "63043"}
    assert all(cpt.lookup(c).procedure_class == ProcedureClass.DECOMPRESSION for c in ("63030", "63035", "63042", "63043"))
    assert cpt.SPINE_SURGERY_CLASSES == {c.value for c in ProcedureClass}
