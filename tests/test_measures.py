"""fhir_mappings.measures: numbers and positive/negative tests, from Observations and from free text."""
from __future__ import annotations

from datetime import date

import pytest

from fhir_mappings.measures import map_measurements
from terminology import measurements
from tests.stubs import fhir


def summary(found) -> set[tuple]:
    """(name, value, unit, levels, test, positive) of every measurement."""
    return {(m.name, m.value, m.unit, tuple(str(lv) for lv in m.levels), m.test, m.positive) for m in found}


def read(text: str) -> set[tuple]:
    return summary(map_measurements([fhir.report("XR standing full-length spine", text, "2025-10-20")]))


def number(name, value, unit, *levels) -> tuple:
    return (name, value, unit, levels, None, None)


def si_test(test, positive) -> tuple:
    return ("si_provocative_test", None, "count", (), test, positive)


def mismatch(value) -> tuple:
    return number("pi_ll_mismatch", value, "deg")


@pytest.mark.parametrize("text, expected", [
    # spinopelvic alignment; a PI and an LL with no stated mismatch derive one
    ("31 degrees of lumbar lordosis against a 51-degree pelvic incidence, creating a PI-LL mismatch of 20 degrees",
     {number("lumbar_lordosis", 31.0, "deg"), number("pelvic_incidence", 51.0, "deg"), mismatch(20.0)}),
    ("PI 51°, LL 31°", {number("pelvic_incidence", 51.0, "deg"), number("lumbar_lordosis", 31.0, "deg"), mismatch(20.0)}),
    ("Pelvic incidence of 51° and lumbar lordosis of 31°.",
     {number("pelvic_incidence", 51.0, "deg"), number("lumbar_lordosis", 31.0, "deg"), mismatch(20.0)}),
    # a range is read as its midpoint
    ("LL 27-28° vs PI 46-50°", {number("lumbar_lordosis", 27.5, "deg"), number("pelvic_incidence", 48.0, "deg"),
                                mismatch(20.5)}),
    ("PI-LL mismatch of 20°.", {mismatch(20.0)}),
    ("PI-LL 20", {mismatch(20.0)}),
    ("PI 51 LL 31", set()),                                             # abbreviations need their unit
    # SVA, always in cm
    ("SVA +10 cm", {number("sagittal_vertical_axis", 10.0, "cm")}),
    ("SVA 6 cm", {number("sagittal_vertical_axis", 6.0, "cm")}),
    ("Sagittal vertical axis of 55 mm.", {number("sagittal_vertical_axis", 5.5, "cm")}),
    ("C7 plumb line 5.5 cm anterior to S1.", {number("sagittal_vertical_axis", 5.5, "cm")}),
    ("C7 plumb line 3 cm posterior to S1.", {number("sagittal_vertical_axis", -3.0, "cm")}),
    # pelvic tilt, but never physical therapy
    ("Pelvic tilt 25°.", {number("pelvic_tilt", 25.0, "deg")}),
    ("PT 25°", {number("pelvic_tilt", 25.0, "deg")}),
    ("PT 2x/week for 6 weeks.", set()),
    # coronal and thoracic
    ("Cobb angle 35° T11-L3.", {number("cobb_angle", 35.0, "deg", "T11-L3")}),
    ("35 degree lumbar curve.", {number("cobb_angle", 35.0, "deg")}),
    ("Levoscoliosis of 22° from T12 to L4.", {number("cobb_angle", 22.0, "deg", "T12-L4")}),
    ("Thoracic kyphosis 80°.", {number("thoracic_kyphosis", 80.0, "deg")}),
    # dynamic films
    ("3.5 mm translation at L3-4 (2.5 mm flexion → 6 mm extension).",
     {number("translation_flexion_extension", 3.5, "mm", "L3-L4")}),
    ("Translation of 4 mm on flexion-extension films at L4-5.",
     {number("translation_flexion_extension", 4.0, "mm", "L4-L5")}),
    ("Translation at L4-5 of 4 mm.", {number("translation_flexion_extension", 4.0, "mm", "L4-L5")}),
    ("12° angulation at L4-5.", {number("angulation_flexion_extension", 12.0, "deg", "L4-L5")}),
    ("Interpreter used for translation.", set()),
    ("Slip of 30% at L4-5.", {number("slip_percent", 30.0, "%", "L4-L5")}),
    ("Slip of 30%", {number("slip_percent", 30.0, "%")}),
    # pain and disability
    ("Pain 7/10 today.", {number("pain_score", 7.0, "score")}),
    ("NRS 6/10.", {number("pain_score", 6.0, "score")}),
    ("Back pain for 3 weeks.", set()),
    ("Pain 70/10", set()),                                               # out of range: a misreading
    ("ODI 21.", {number("odi", 21.0, "%")}),
    ("Oswestry Disability Index 42%.", {number("odi", 42.0, "%")}),
    # SI provocative tests, one measurement per test named
    ("positive FABER, thigh thrust and compression tests; negative distraction and Gaenslen",
     {si_test("faber", True), si_test("thigh_thrust", True), si_test("compression", True),
      si_test("distraction", False), si_test("gaenslen", False)}),
    ("FABER positive, Gaenslen negative, thigh thrust (+).",
     {si_test("faber", True), si_test("gaenslen", False), si_test("thigh_thrust", True)}),
    ("Positive sacral thrust. Fortin finger test +. Active SLR negative.",
     {si_test("sacral_thrust", True), si_test("fortin_finger", True), si_test("active_slr", False)}),
    ("FABER performed.", {si_test("faber", None)}),
    ("Cord compression at T10.", set()),
    # a tally of positive tests: value = the number positive, unit "count", no test named
    ("SI joint provocative tests positive: 3/5", {number("si_provocative_test", 3.0, "count")}),
    ("2 of 5 SI provocation tests positive", {number("si_provocative_test", 2.0, "count")}),
    ("SI provocative tests: 4/5 negative.", {number("si_provocative_test", 1.0, "count")}),
    ("SI provocative tests negative.", {number("si_provocative_test", 0.0, "count")}),
    # SI block relief needs the SI joint named (or an SI-injection resource)
    ("80% pain relief after the SI joint block.", {number("si_block_relief", 80.0, "%")}),
    ("Sacroiliac joint block: 75%", {number("si_block_relief", 75.0, "%")}),
    ("Lumbar ESI gave 80% relief.", set()),
    ("Medial branch diagnostic block: 90% relief.", set()),
])
def test_text(text, expected):
    assert read(text) == expected


# --- observations ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("resource, expected", [
    (fhir.observation("Pain severity 0-10", value=7, unit="{score}", loinc="72514-3"), {number("pain_score", 7.0, "score")}),
    (fhir.observation("Pain", value=6, loinc="38208-5"), {number("pain_score", 6.0, "score")}),
    (fhir.observation("Pain", value_string="7/10"), {number("pain_score", 7.0, "score")}),
    (fhir.observation("Oswestry Disability Index score", value=38, unit="%", loinc="97909-6"), {number("odi", 38.0, "%")}),
    (fhir.observation("Pelvic incidence", value=51, unit="°"), {number("pelvic_incidence", 51.0, "deg")}),
    (fhir.observation("Lumbar lordosis L1-S1", value=31, unit="deg"), {number("lumbar_lordosis", 31.0, "deg")}),
    (fhir.observation("Sagittal vertical axis", value=62, unit="mm"), {number("sagittal_vertical_axis", 6.2, "cm")}),
    (fhir.observation("PT", value=24, unit="deg"), {number("pelvic_tilt", 24.0, "deg")}),
    (fhir.observation("PT", value=3, unit="visits"), set()),
    (fhir.observation("Translation L4-L5 flexion-extension", value=4, unit="mm"),
     {number("translation_flexion_extension", 4.0, "mm", "L4-L5")}),
    (fhir.observation("SI joint block relief", value=80, unit="%"), {number("si_block_relief", 80.0, "%")}),
    (fhir.finding("FABER test", concept="Positive"), {si_test("faber", True)}),
    (fhir.finding("Gaenslen test", boolean=False), {si_test("gaenslen", False)}),
    (fhir.observation("Thigh thrust test", value_string="negative"), {si_test("thigh_thrust", False)}),
    (fhir.observation("SI provocative tests positive", value=3), {number("si_provocative_test", 3.0, "count")}),
    (fhir.observation("Body weight", value=80, unit="kg"), set()),
])
def test_observations(resource, expected):
    assert summary(map_measurements([resource])) == expected


def test_components_are_measurements_of_their_own_and_derive_a_mismatch():
    panel = fhir.panel("Spinopelvic parameters", [fhir.component("Pelvic incidence", 56, "deg"),
                                                  fhir.component("Lumbar lordosis", 30, "deg"),
                                                  fhir.component("Pelvic tilt", 27, "deg")], effective="2025-02-03")
    found = map_measurements([panel])
    assert summary(found) == {number("pelvic_incidence", 56.0, "deg"), number("lumbar_lordosis", 30.0, "deg"),
                              number("pelvic_tilt", 27.0, "deg"), mismatch(26.0)}
    (derived,) = [m for m in found if m.name == "pi_ll_mismatch"]
    assert derived.evidence.description == ("PI-LL mismatch 26° derived: pelvic incidence 56° − lumbar lordosis 30° "
                                            f"(Observation/{panel['id']})")
    assert derived.evidence.day == date(2025, 2, 3)


def test_mismatch_derived_across_resources_of_one_date_only():
    pi = fhir.observation("Pelvic incidence", value=51, unit="deg", effective="2025-10-20")
    ll = fhir.observation("Lumbar lordosis", value=31, unit="deg", effective="2025-10-20")
    other_day = fhir.observation("Lumbar lordosis", value=40, unit="deg", effective="2024-01-01")
    found = map_measurements([pi, ll, other_day])
    (derived,) = [m for m in found if m.name == "pi_ll_mismatch"]
    assert derived.value == 20.0
    assert derived.evidence.reference == f"Observation/{pi['id']}"
    assert f"Observation/{ll['id']}" in derived.evidence.description


def test_stated_mismatch_is_not_derived_again():
    report = fhir.report("XR", "PI 51°, LL 31°, PI-LL mismatch 22°.", "2025-10-20")
    assert [m.value for m in map_measurements([report]) if m.name == "pi_ll_mismatch"] == [22.0]


def test_negative_lordosis_is_measured_by_its_size():
    report = fhir.report("XR", "Pelvic incidence 55°. Lumbar lordosis -37°.", "2025-10-20")
    found = map_measurements([report])
    assert number("lumbar_lordosis", -37.0, "deg") in summary(found)
    assert [m.value for m in found if m.name == "pi_ll_mismatch"] == [18.0]


# --- SI blocks --------------------------------------------------------------------------------------------

def test_si_injection_relief_is_dated_by_the_procedure():
    injection = fhir.procedure("Right sacroiliac joint injection", performed="2025-03-10", note="80% relief of pain after the block.")
    (block,) = map_measurements([injection])
    assert (block.name, block.value, block.unit) == ("si_block_relief", 80.0, "%")
    assert block.evidence.day == date(2025, 3, 10)
    assert block.evidence.reference == f"Procedure/{injection['id']}"
    assert block.evidence.description == "“80% relief of pain after the block”"


def test_two_blocks_in_one_sentence():
    injection = fhir.procedure("SI joint injection", performed="2025-04-01",
                               note="90% relief after the first block and 75% after the second.")
    assert sorted(m.value for m in map_measurements([injection]) if m.name == "si_block_relief") == [75.0, 90.0]


def test_relief_after_another_injection_is_not_an_si_block():
    esi = fhir.procedure("Lumbar epidural steroid injection", performed="2025-04-01", note="80% relief for two weeks.")
    assert map_measurements([esi]) == ()


# --- sources and evidence -------------------------------------------------------------------------------

def test_notes_of_any_resource_are_read_and_dated_by_the_resource():
    condition = fhir.condition("Sacroiliitis", "M46.1", onset="2024-10-01", note="Pain 8/10 in the right buttock.")
    (pain,) = map_measurements([condition])
    assert (pain.name, pain.value, pain.evidence.day) == ("pain_score", 8.0, date(2024, 10, 1))
    assert pain.evidence.description == "“Pain 8/10 in the right buttock”"


def test_refuted_resources_and_duplicates():
    refuted = fhir.with_fields(fhir.report("XR", "SVA 10 cm.", "2025-01-01"), status="entered-in-error")
    twice = fhir.report("XR", "SVA 10 cm. Impression: SVA 10 cm.", "2025-01-01")
    assert summary(map_measurements([refuted, twice])) == {number("sagittal_vertical_axis", 10.0, "cm")}
    assert len(map_measurements([refuted, twice])) == 1


def test_seed_000_report():
    report = fhir.report("XR standing full-length spine", "Prior L1-5 fusion. Lumbar lordosis 31 degrees against a "
                         "pelvic incidence of 51 degrees.", "2025-10-20")
    found = map_measurements([report])
    assert summary(found) == {number("lumbar_lordosis", 31.0, "deg"), number("pelvic_incidence", 51.0, "deg"), mismatch(20.0)}
    assert {m.evidence.day for m in found} == {date(2025, 10, 20)}


# --- terminology.measurements.find_si_tests (added for span-aware reading) ------------------------------

def test_find_si_tests_returns_spans_and_accepts_plurals():
    text = "Positive FABER, thigh thrust and compression tests; Fortin finger test +"
    hits = measurements.find_si_tests(text)
    assert [(key, text[s:e]) for key, s, e in hits] == [
        ("faber", "FABER"), ("thigh_thrust", "thigh thrust"), ("compression", "compression tests"),
        ("fortin_finger", "Fortin finger test")]
    # match_si_tests is unchanged: the plural is not one of its phrases
    assert measurements.match_si_tests("compression tests") == frozenset()
    assert measurements.find_si_tests("no tests named") == []


def test_relief_in_the_note_of_a_coded_si_injection_is_one_block():
    injection = fhir.procedure("Injection procedure", performed="2025-03-10", cpt="27096",
                               note="80% relief at 30 minutes, 90% relief at 2 hours.")
    (block,) = [m for m in map_measurements([injection]) if m.name == "si_block_relief"]
    assert block.value == 90.0


def test_relief_in_the_note_of_another_injection_is_no_si_block():
    injection = fhir.procedure("Injection procedure", performed="2025-03-10", cpt="64483",
                               note="80% relief at 30 minutes.")
    assert [m for m in map_measurements([injection]) if m.name == "si_block_relief"] == []


def test_a_value_in_a_unit_the_service_cannot_convert_is_left_out_and_said():
    sva = fhir.observation("Sagittal vertical axis", value=3, unit="[in_i]")
    (found,) = map_measurements([sva])
    assert (found.name, found.value, found.unit) == ("sagittal_vertical_axis", None, "[in_i]")
    assert "left out" in found.evidence.description


def test_the_ucum_code_is_the_unit_not_the_display():
    sva = fhir.observation("Sagittal vertical axis", value=45, unit="millimeters")
    sva["valueQuantity"]["code"] = "mm"
    (found,) = map_measurements([sva])
    assert (found.value, found.unit) == (4.5, "cm")
