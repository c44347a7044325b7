"""Issue 13, the new criteria payers apply: nicotine, glycemic control, clinical correlation,
functional impairment, imaging age and the discectomy indication. Charts are built as EHRs send
them (notes as base64 DocumentReference attachments, report bodies in presentedForm, coded
Observations and Conditions) and asked over the HTTP API; every threshold is tested on both sides
and where the three profiles differ, per profile (criteria/rules/*.yaml, criteria/profiles/*.yaml)."""
from __future__ import annotations

import base64
import itertools
from datetime import date, timedelta

import pytest

from tests.stubs import fhir

ORDERED = date(2025, 6, 20)     # fhir.service_request's default authoredOn
NASS, AETNA, EVICORE = None, "aetna-cpb-0743", "evicore-cmm"
PROFILES = (NASS, AETNA, EVICORE)
NICOTINE, GLYCEMIC, CORRELATION = "nicotine-use", "glycemic-control", "clinical-correlation-missing"
FUNCTION, IMAGING, MET, LEVEL = "functional-impairment-not-documented", "imaging-outdated", "criteria-met", "level-unsupported"
NEW_TOPICS = {NICOTINE, GLYCEMIC, CORRELATION, FUNCTION, IMAGING}
LOINC, SNOMED, ICD10 = "http://loinc.org", "http://snomed.info/sct", "http://hl7.org/fhir/sid/icd-10-cm"
_ids = itertools.count(1)
produced: set[str] = set()


def ago(**delta) -> str:
    return (ORDERED - timedelta(**delta)).isoformat()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def note(text: str, day: str, title: str = "Spine clinic note") -> dict:
    return {"resourceType": "DocumentReference", "id": f"note-{next(_ids)}", "status": "current",
            "subject": {"reference": "Patient/pat-1"}, "date": f"{day}T10:00:00Z",
            "type": {"text": title},
            "content": [{"attachment": {"contentType": "text/plain", "data": _b64(text), "title": title}}]}


def imaging(text: str, day: str, title: str = "MRI lumbar spine without contrast") -> dict:
    return {"resourceType": "DiagnosticReport", "id": f"dr-{next(_ids)}", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD"}]}],
            "subject": {"reference": "Patient/pat-1"}, "code": {"text": title}, "effectiveDateTime": day,
            "issued": f"{day}T12:00:00Z",
            "presentedForm": [{"contentType": "text/plain", "data": _b64(text)}]}


def coded_observation(loinc: str, text: str, day: str, *, value=None, unit="", answer=None, category="exam") -> dict:
    resource = {"resourceType": "Observation", "id": f"obs-{next(_ids)}", "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                          "code": category}]}],
                "subject": {"reference": "Patient/pat-1"},
                "code": {"coding": [{"system": LOINC, "code": loinc, "display": text}], "text": text},
                "effectiveDateTime": day}
    if value is not None:
        resource["valueQuantity"] = {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
    if answer:
        resource["valueCodeableConcept"] = {"coding": [{"system": SNOMED, "code": answer[0], "display": answer[1]}],
                                            "text": answer[1]}
    return resource


def smoking(answer: tuple[str, str], day: str) -> dict:
    return coded_observation("72166-2", "Tobacco smoking status", day, answer=answer, category="social-history")


NEVER, FORMER, CURRENT = ("266919005", "Never smoked tobacco"), ("8517006", "Ex-smoker"), ("449868002", "Smokes tobacco daily")


def hba1c(value: float, day: str) -> dict:
    return coded_observation("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", day, value=value, unit="%",
                             category="laboratory")


def odi(value: float, day: str) -> dict:
    return coded_observation("97909-6", "Oswestry Disability Index score", day, value=value, unit="%", category="survey")


def pain(value: float, day: str) -> dict:
    return coded_observation("72514-3", "Pain severity 0-10 verbal numeric rating", day, value=value, unit="{score}",
                             category="survey")


def cotinine(value: float, day: str) -> dict:
    return coded_observation("10366-3", "Cotinine [Mass/volume] in Serum or Plasma", day, value=value, unit="ng/mL",
                             category="laboratory")


def treated() -> list[dict]:
    """Conservative care and PT every profile accepts, so a test sees only its own rule."""
    return [fhir.medication("meloxicam 15 mg", "2024-10-01")] + fhir.pt_visits(date(2025, 3, 3), 8)


LISTHESIS_L4_5 = "Grade 2 anterolisthesis of L4 on L5 with severe central canal stenosis at L4-5."
EXAM = ("HPI: neurogenic claudication and left L5 radiculopathy for a year.\n"
        "Exam: 4/5 left EHL weakness, decreased sensation over the dorsum of the left foot.\n"
        "ODI 46%. Pain 8/10; unable to walk more than one block.\n"
        "Social history: never smoker.")


def tlif(**fields) -> dict:
    order = fhir.service_request("TLIF L4-L5", cpts=["22633"], body_site="L4-L5", sr_id="sr-tlif")
    order.update(fields)
    return order


def good_fusion_chart(**replace) -> list[dict]:
    parts = {"mri": imaging(LISTHESIS_L4_5, ago(days=50)), "note": note(EXAM, ago(days=19)),
             "status": smoking(NEVER, ago(days=19))}
    parts.update(replace)
    return treated() + [p for p in parts.values() if p]


def ask(order_sign, orders, chart, profile=None) -> dict:
    extra = {"extension": {"spine-cds.profile": profile}} if profile else {}
    request = fhir.make_request(orders, chart, **extra)
    request["prefetch"]["notes"] = fhir.searchset(r for r in chart if r["resourceType"] == "DocumentReference")
    answer = order_sign(request)
    produced.update(topics(answer))
    return answer


def topics(answer) -> set[str]:
    return {c["source"]["topic"]["code"] for c in answer["cards"]}


def card(answer, topic) -> dict:
    (found,) = [c for c in answer["cards"] if c["source"]["topic"]["code"] == topic]
    return found


def determination(answer, reference="ServiceRequest/sr-tlif") -> str:
    said = {d["determination"] for c in answer["cards"] for d in c.get("extension", {}).get("spine-cds.determination", [])
            if d["reference"] == reference}
    assert len(said) == 1, said
    return said.pop()


# --- charts that meet every new criterion still get "criteria met" ----------------------------------

@pytest.mark.parametrize("profile", PROFILES)
def test_a_complete_fusion_chart_meets_every_profile(order_sign, profile):
    answer = ask(order_sign, [tlif()], good_fusion_chart(), profile)
    assert topics(answer) == {MET}, [c["summary"] for c in answer["cards"]]
    assert determination(answer) == "meets"


# --- the first bullet ------------------------------------------------------------------------

def first_bullet_chart() -> list[dict]:
    return treated() + [
        note("Social history: smokes 1 ppd.\nAssessment: lumbar spondylolisthesis, for TLIF.", ago(days=10)),
        smoking(CURRENT, ago(days=10)),
        hba1c(10.2, ago(days=20)),
        fhir.condition("Type 2 diabetes mellitus without complications", "E11.9", onset="2015-01-01"),
        fhir.condition("Major depressive disorder, single episode, severe", "F32.2", onset="2024-01-01"),
        coded_observation("39156-5", "Body mass index", ago(days=10), value=47, unit="kg/m2", category="vital-signs"),
        odi(12, ago(days=10)),
        imaging(LISTHESIS_L4_5, "2019-03-10"),
    ]


@pytest.mark.parametrize("profile, expected", [
    (NASS, {NICOTINE, FUNCTION, IMAGING}),
    (AETNA, {NICOTINE, GLYCEMIC, FUNCTION, IMAGING, CORRELATION}),
    (EVICORE, {NICOTINE, FUNCTION, IMAGING, CORRELATION}),
])
def test_smoker_with_poor_control_low_odi_old_mri_and_no_exam_is_not_criteria_met(order_sign, profile, expected):
    answer = ask(order_sign, [tlif()], first_bullet_chart(), profile)
    assert MET not in topics(answer)
    assert topics(answer) & NEW_TOPICS == expected
    assert determination(answer) == "does-not-meet"
    assert "Current nicotine use documented" in card(answer, NICOTINE)["detail"]
    assert "ODI 12" in card(answer, FUNCTION)["detail"]
    assert "2019-03-10" in card(answer, IMAGING)["detail"]


def test_first_bullet_glycemic_card_names_the_value_and_limit(order_sign):
    answer = ask(order_sign, [tlif()], first_bullet_chart(), AETNA)
    assert "HbA1c 10.2% is not below 8%" in card(answer, GLYCEMIC)["detail"]


# --- nicotine ------------------------------------------------------------------------------------------

def former(quit_weeks: int) -> dict:
    quit_day = (ORDERED - timedelta(weeks=quit_weeks)).strftime("%-m/%-d/%Y")
    return note(f"Social history: former smoker, quit {quit_day}.", ago(days=5))


@pytest.mark.parametrize("weeks, profile, flagged", [
    (7, NASS, True), (8, NASS, False),          # MP-517: 8 weeks
    (5, AETNA, True), (6, AETNA, False),        # Aetna CPB 0743: 6 weeks
    (104, EVICORE, True),                       # eviCore: a quit date is not enough, cotinine or never-smoker
])
def test_nicotine_free_weeks_by_profile(order_sign, weeks, profile, flagged):
    answer = ask(order_sign, [tlif()], good_fusion_chart(status=former(weeks)), profile)
    assert (NICOTINE in topics(answer)) is flagged
    if flagged:
        assert determination(answer) == ("needs-documentation" if profile == EVICORE else "does-not-meet")


def quit_on(weeks: int) -> str:
    return (ORDERED - timedelta(weeks=weeks)).strftime("%-m/%-d/%Y")


@pytest.mark.parametrize("written", ["Former smoker; quit smoking on {day}.", "Former smoker. Quit date: {day}."])
@pytest.mark.parametrize("weeks, flagged", [(7, True), (8, False)])
def test_a_coded_ex_smoker_status_takes_the_quit_date_written_in_the_note(order_sign, written, weeks, flagged):
    """US Core EHRs send a coded 72166-2 "Ex-smoker" without a date beside the H&P that gives it: the
    date counts (MP-517: 8 weeks under NASS), not "former use, quit date missing"."""
    history = EXAM.replace("Social history: never smoker.", "Social history: " + written.format(day=quit_on(weeks)))
    chart = good_fusion_chart(note=note(history, ago(days=19)), status=smoking(FORMER, ago(days=19)))
    answer = ask(order_sign, [tlif()], chart, NASS)
    assert (NICOTINE in topics(answer)) is flagged
    assert determination(answer) == ("does-not-meet" if flagged else "meets")
    if flagged:
        assert "7 of the required 8 nicotine-free weeks" in card(answer, NICOTINE)["detail"]


def test_use_documented_after_the_written_quit_date_is_the_last_use(order_sign):
    """A quit date in an old note, daily smoking in a later one, then a coded "Ex-smoker" without a date:
    the last use is the day smoking was documented, not the stale quit date."""
    chart = good_fusion_chart(note=note(EXAM.replace("Social history: never smoker.", ""), ago(days=19)),
                              status=smoking(FORMER, ago(days=5)),
                              old=note(f"Social history: former smoker, quit smoking on {quit_on(30)}.", ago(weeks=26)),
                              relapse=note("Social history: smokes 1 ppd.", ago(weeks=6)))
    answer = ask(order_sign, [tlif()], chart, NASS)
    assert determination(answer) == "does-not-meet"
    assert f"Last nicotine use {ago(weeks=6)}" in card(answer, NICOTINE)["detail"]


@pytest.mark.parametrize("value, flagged", [(10, False), (10.5, True)])
def test_cotinine_at_or_below_10_proves_abstinence_on_evicore(order_sign, value, flagged):
    chart = good_fusion_chart(status=former(104), lab=cotinine(value, ago(days=10)))
    answer = ask(order_sign, [tlif()], chart, EVICORE)
    assert (NICOTINE in topics(answer)) is flagged


def test_a_cotinine_older_than_30_days_is_not_counted(order_sign):
    chart = good_fusion_chart(status=former(104), lab=cotinine(2, ago(days=31)))
    assert NICOTINE in topics(ask(order_sign, [tlif()], chart, EVICORE))
    chart = good_fusion_chart(status=former(104), lab=cotinine(2, ago(days=29)))
    assert NICOTINE not in topics(ask(order_sign, [tlif()], chart, EVICORE))


@pytest.mark.parametrize("profile, flagged", [(NASS, False), (AETNA, True), (EVICORE, True)])
def test_no_documented_status_needs_documentation_where_the_profile_requires_it(order_sign, profile, flagged):
    chart = good_fusion_chart(status=None, note=note(EXAM.replace("Social history: never smoker.", ""), ago(days=19)))
    answer = ask(order_sign, [tlif()], chart, profile)
    assert (NICOTINE in topics(answer)) is flagged
    if flagged:
        assert determination(answer) == "needs-documentation"
        assert "No nicotine status documented" in card(answer, NICOTINE)["detail"]


def test_denies_tobacco_in_a_note_is_a_documented_status(order_sign):
    chart = good_fusion_chart(status=note("Social history: denies tobacco use. No alcohol.", ago(days=5)))
    assert topics(ask(order_sign, [tlif()], chart, AETNA)) == {MET}


def test_counselling_about_smoking_is_no_use(order_sign):
    text = "Patient education: counseled on smoking cessation and its effect on fusion."
    chart = good_fusion_chart(extra=note(text, ago(days=5)))
    assert topics(ask(order_sign, [tlif()], chart, AETNA)) == {MET}


def test_si_fusion_needs_a_year_free_on_aetna(order_sign):
    order = fhir.service_request("SI joint fusion right", cpts=["27279"], sr_id="sr-si")
    chart = treated() + [former(30)]
    assert NICOTINE in topics(ask(order_sign, [order], chart, AETNA))      # CPB 0016: 1 year [secondary]
    assert NICOTINE not in topics(ask(order_sign, [order], chart, NASS))   # base: 8 weeks


def test_nicotine_waived_only_for_urgent_surgery(order_sign):
    smoker = good_fusion_chart(status=smoking(CURRENT, ago(days=3)))
    assert NICOTINE in topics(ask(order_sign, [tlif()], smoker, AETNA))
    assert NICOTINE not in topics(ask(order_sign, [tlif(priority="urgent")], smoker, AETNA))
    ces = fhir.condition("Cauda equina syndrome", "G83.4", onset=ago(days=2))
    assert NICOTINE not in topics(ask(order_sign, [tlif()], smoker + [ces], AETNA))


def test_nicotine_is_not_asked_for_a_decompression(order_sign):
    order = fhir.service_request("Laminectomy L4-L5", cpts=["63047"], body_site="L4-L5", sr_id="sr-lam")
    chart = good_fusion_chart(status=smoking(CURRENT, ago(days=3)))
    assert NICOTINE not in topics(ask(order_sign, [order], chart, AETNA))


# --- glycemic control -------------------------------------------------------------------------------------

DIABETIC = fhir.condition("Type 2 diabetes mellitus", "E11.9", onset="2016-05-01")


@pytest.mark.parametrize("value, flagged", [(7.9, False), (8.0, True)])
def test_hba1c_below_8_on_aetna(order_sign, value, flagged):
    chart = good_fusion_chart(dm=DIABETIC, lab=hba1c(value, ago(days=30)))
    answer = ask(order_sign, [tlif()], chart, AETNA)
    assert (GLYCEMIC in topics(answer)) is flagged
    if flagged:
        assert determination(answer) == "does-not-meet"


@pytest.mark.parametrize("profile, flagged", [(NASS, False), (AETNA, True), (EVICORE, False)])
def test_glycemic_control_only_where_the_profile_requires_it(order_sign, profile, flagged):
    chart = good_fusion_chart(dm=DIABETIC, lab=hba1c(9.4, ago(days=30)))
    assert (GLYCEMIC in topics(ask(order_sign, [tlif()], chart, profile))) is flagged


@pytest.mark.parametrize("days, flagged", [(85, False), (100, True)])
def test_hba1c_window_of_3_months(order_sign, days, flagged):
    chart = good_fusion_chart(dm=DIABETIC, lab=hba1c(7.0, ago(days=days)))
    answer = ask(order_sign, [tlif()], chart, AETNA)
    assert (GLYCEMIC in topics(answer)) is flagged
    if flagged:
        assert determination(answer) == "needs-documentation"


def hba1c_in(value: float, unit: str, day: str, loinc: str = "4548-4") -> dict:
    """An HbA1c Observation whose UCUM code is unit (59261-8: by IFCC protocol, in mmol/mol)."""
    return coded_observation(loinc, "Hemoglobin A1c/Hemoglobin.total in Blood", day, value=value, unit=unit,
                             category="laboratory")


@pytest.mark.parametrize("lab, flagged, said", [
    # IFCC mmol/mol -> NGSP % by the master equation (0.09148 x IFCC + 2.152): 53 is 7.0 %, 64 is 8.0 %
    (("59261-8", 53, "mmol/mol"), False, None),
    (("4548-4", 53, "mmol/mol"), False, None),
    (("59261-8", 63, "mmol/mol"), False, None),                # 7.9 %
    (("59261-8", 64, "mmol/mol"), True, "HbA1c 8% is not below 8%"),
    (("4548-4", 0.07, "1"), False, None),                      # a fraction: 7 %
    (("4548-4", 0.081, "1"), True, "HbA1c 8.1% is not below 8%"),
])
def test_hba1c_in_ifcc_units_or_as_a_fraction_is_read_as_ngsp_percent(order_sign, lab, flagged, said):
    loinc, value, unit = lab
    chart = good_fusion_chart(dm=DIABETIC, lab=hba1c_in(value, unit, ago(days=30), loinc))
    answer = ask(order_sign, [tlif()], chart, AETNA)
    assert (GLYCEMIC in topics(answer)) is flagged
    assert determination(answer) == ("does-not-meet" if flagged else "meets")
    if said:
        assert said in card(answer, GLYCEMIC)["detail"]


def test_hba1c_in_a_unit_that_cannot_be_converted_needs_documentation(order_sign):
    chart = good_fusion_chart(dm=DIABETIC, lab=hba1c_in(7.0, "mg/dL", ago(days=30)))
    answer = ask(order_sign, [tlif()], chart, AETNA)
    assert determination(answer) == "needs-documentation"
    assert "HbA1c of 2025-05-21 in mg/dL, a unit not convertible to %" in card(answer, GLYCEMIC)["detail"]


@pytest.mark.parametrize("written, flagged", [("HbA1c 53 mmol/mol", False), ("HbA1c 66 mmol/mol", True)])
def test_hba1c_in_mmol_per_mol_in_a_note(order_sign, written, flagged):
    text = EXAM + f"\nLabs: {written} on {(ORDERED - timedelta(days=25)).strftime('%-m/%-d/%Y')}."
    chart = good_fusion_chart(dm=DIABETIC, note=note(text, ago(days=19)))
    assert (GLYCEMIC in topics(ask(order_sign, [tlif()], chart, AETNA))) is flagged


def test_hba1c_in_a_note_and_no_diabetes_means_no_glycemic_rule(order_sign):
    text = EXAM + "\nLabs: HbA1c 9.1% last month."
    assert GLYCEMIC not in topics(ask(order_sign, [tlif()], good_fusion_chart(note=note(text, ago(days=19))), AETNA))
    chart = good_fusion_chart(note=note(text + "\nPMH reviewed. Assessment: type 2 diabetes mellitus.", ago(days=19)))
    assert GLYCEMIC in topics(ask(order_sign, [tlif()], chart, AETNA))


# --- functional impairment ---------------------------------------------------------------------------------

def exam_with(scores: str) -> dict:
    text = ("HPI: neurogenic claudication and left L5 radiculopathy.\nExam: 4/5 left EHL weakness.\n"
            f"{scores}\nSocial history: never smoker.")
    return note(text, ago(days=19))


@pytest.mark.parametrize("scores, profile, flagged", [
    ("ODI 29%.", NASS, True), ("ODI 30%.", NASS, False),              # ODI >= 30 (Carelon, secondary)
    ("Pain 4/10.", NASS, True), ("Pain 5/10.", NASS, False),          # VAS > 4 (SUR712.036)
    ("Pain 6/10.", EVICORE, True), ("Pain 7/10.", EVICORE, False),    # eviCore: NRS >= 7
    ("Pain 3/10. Unable to stand more than 10 minutes.", EVICORE, False),   # an ADL limit counts
])
def test_function_thresholds_by_profile(order_sign, scores, profile, flagged):
    answer = ask(order_sign, [tlif()], good_fusion_chart(note=exam_with(scores)), profile)
    assert (FUNCTION in topics(answer)) is flagged
    if flagged:
        assert determination(answer) == "does-not-meet"


def test_coded_odi_observation_counts(order_sign):
    chart = good_fusion_chart(note=exam_with(""), odi=odi(44, ago(days=10)))
    assert FUNCTION not in topics(ask(order_sign, [tlif()], chart, AETNA))


@pytest.mark.parametrize("profile, flagged", [(NASS, False), (AETNA, True), (EVICORE, True)])
def test_no_scores_needs_documentation_where_the_profile_requires_it(order_sign, profile, flagged):
    answer = ask(order_sign, [tlif()], good_fusion_chart(note=exam_with("")), profile)
    assert (FUNCTION in topics(answer)) is flagged
    if flagged:
        assert determination(answer) == "needs-documentation"


# --- clinical correlation ------------------------------------------------------------------------------

LAM_L5_S1 = fhir.service_request("Laminectomy L5-S1", cpts=["63047"], body_site="L5-S1", sr_id="sr-lam")
STENOSIS_L5_S1 = imaging("Severe central canal stenosis at L5-S1.", ago(days=40))


def symptoms(text: str) -> dict:
    return note(f"{text}\nODI 44%.\nSocial history: never smoker.", ago(days=19))


@pytest.mark.parametrize("text, flagged", [
    ("Exam: left S1 radicular pain, absent left ankle jerk.", False),
    ("Exam: right L3 radiculopathy, weak right hip flexion.", True),        # roots of L2-3 / L3-4 only
    ("Exam: neurogenic claudication after two blocks.", False),
    ("Exam: no radicular symptoms, no weakness, reflexes normal.", False),   # negated: nothing documented (nass)
])
def test_symptoms_must_correspond_to_the_decompressed_level(order_sign, text, flagged):
    answer = ask(order_sign, [LAM_L5_S1], treated() + [STENOSIS_L5_S1, symptoms(text)])
    assert (CORRELATION in topics(answer)) is flagged
    if flagged:
        assert determination(answer, "ServiceRequest/sr-lam") == "does-not-meet"
        assert "L5-S1" in card(answer, CORRELATION)["summary"]


@pytest.mark.parametrize("profile, flagged", [(NASS, False), (AETNA, True), (EVICORE, True)])
def test_no_symptoms_needs_documentation_where_the_profile_requires_it(order_sign, profile, flagged):
    chart = treated() + [STENOSIS_L5_S1, symptoms("Exam: no radicular symptoms.")]
    answer = ask(order_sign, [LAM_L5_S1], chart, profile)
    assert (CORRELATION in topics(answer)) is flagged
    if flagged:
        assert determination(answer, "ServiceRequest/sr-lam") == "needs-documentation"


@pytest.mark.parametrize("text, flagged", [
    ("HPI: radiating leg pain into the left calf for six months.", False),   # the limb after "radiating"
    ("HPI: denies radiating leg pain.", True),
    ("Plan: return if radiating leg pain develops.", True),
])
def test_radiating_leg_pain_in_a_note_is_a_symptom_when_asserted(order_sign, text, flagged):
    answer = ask(order_sign, [LAM_L5_S1], treated() + [STENOSIS_L5_S1, symptoms(text)], AETNA)
    assert (CORRELATION in topics(answer)) is flagged


def test_coded_radiculopathy_counts_as_a_symptom(order_sign):
    chart = treated() + [STENOSIS_L5_S1, symptoms(""), fhir.condition("Radiculopathy, lumbosacral region", "M54.17")]
    assert CORRELATION not in topics(ask(order_sign, [LAM_L5_S1], chart, AETNA))


# --- imaging age ------------------------------------------------------------------------------------

@pytest.mark.parametrize("days, profile, flagged", [
    (360, NASS, False), (380, NASS, True),          # Premera: 12 months
    (170, EVICORE, False), (190, EVICORE, True),    # eviCore: 6 months
])
def test_imaging_age_by_profile(order_sign, days, profile, flagged):
    answer = ask(order_sign, [tlif()], good_fusion_chart(mri=imaging(LISTHESIS_L4_5, ago(days=days))), profile)
    assert (IMAGING in topics(answer)) is flagged
    if flagged:
        assert determination(answer) == "needs-documentation"


@pytest.mark.parametrize("profile, flagged", [(NASS, False), (AETNA, True), (EVICORE, True)])
def test_levels_supported_without_dated_imaging_need_it_where_the_profile_requires_it(order_sign, profile, flagged):
    problem = fhir.condition("Spondylolisthesis, grade 2, L4-5", "M43.16", onset="2024-01-01")
    answer = ask(order_sign, [tlif()], good_fusion_chart(mri=problem), profile)
    assert LEVEL not in topics(answer)               # the problem list supports the level ...
    assert (IMAGING in topics(answer)) is flagged    # ... but no imaging report dates it
    if flagged:
        assert "No dated imaging documents the indication at L4-L5" in card(answer, IMAGING)["detail"]


def test_a_recent_note_quoting_an_old_mri_is_old_imaging(order_sign):
    quoted = note("Imaging: MRI of 3/14/2019 shows grade 2 anterolisthesis of L4 on L5.", ago(days=10))
    answer = ask(order_sign, [tlif()], good_fusion_chart(mri=quoted))
    assert IMAGING in topics(answer) and "2019-03-14" in card(answer, IMAGING)["detail"]


@pytest.mark.parametrize("quoted", [
    "IMAGING:\nMRI lumbar spine 10/2/2024: grade 2 anterolisthesis of L4 on L5 with severe central canal "
    "stenosis at L4-5.",                                     # as EHR smart text imports a result
    "Imaging: MRI lumbar spine 10/2/2024: grade 2 anterolisthesis of L4 on L5.",
    "MRI of 10/2/2024 shows grade 2 anterolisthesis of L4 on L5.",
])
def test_an_mri_quoted_with_its_date_before_a_colon_is_dated_by_the_study(order_sign, quoted):
    """A June 2025 H&P quoting an MRI of 10/2/2024, 8.5 months before the order: older than eviCore's 6
    months whatever the note's date; the same quote with a recent study date is recent imaging."""
    answer = ask(order_sign, [tlif()], good_fusion_chart(mri=note(quoted, ago(days=19))), EVICORE)
    assert IMAGING in topics(answer) and "2024-10-02" in card(answer, IMAGING)["detail"]
    assert determination(answer) == "needs-documentation"
    recent = quoted.replace("10/2/2024", "5/10/2025")
    answer = ask(order_sign, [tlif()], good_fusion_chart(mri=note(recent, ago(days=19))), EVICORE)
    assert topics(answer) == {MET}


# --- discectomy ------------------------------------------------------------------------------------

MICRO = fhir.service_request("Microdiscectomy L5-S1", cpts=["63030"], body_site="L5-S1", sr_id="sr-micro")
SCIATICA = note("HPI: left S1 radicular pain for 8 weeks, worse sitting.\nExam: absent left ankle jerk.\n"
                "Pain 8/10.\nSocial history: never smoker.", ago(days=12))


@pytest.mark.parametrize("profile", PROFILES)
def test_microdiscectomy_for_an_s1_root_extrusion_is_supported(order_sign, profile):
    """Issue 13: 63030 for a disc extrusion compressing the S1 root was judged as a stenosis decompression."""
    mri = imaging("L5-S1: left paracentral disc extrusion compressing the traversing left S1 nerve root. "
                  "No central canal stenosis.", ago(days=30))
    answer = ask(order_sign, [MICRO], treated() + [mri, SCIATICA], profile)
    assert topics(answer) == {MET}, [c["summary"] for c in answer["cards"]]
    assert determination(answer, "ServiceRequest/sr-micro") == "meets"


@pytest.mark.parametrize("finding", [
    "Severe central canal stenosis at L5-S1.",                       # stenosis is not a discectomy's indication
    "Small L5-S1 disc protrusion without nerve root contact.",       # no root compression
])
def test_discectomy_without_a_compressing_herniation_is_unsupported(order_sign, finding):
    answer = ask(order_sign, [MICRO], treated() + [imaging(finding, ago(days=30)), SCIATICA])
    assert LEVEL in topics(answer)
    assert determination(answer, "ServiceRequest/sr-micro") == "does-not-meet"
    assert "L5-S1: no documented indication" in card(answer, LEVEL)["detail"]


def test_stenosis_decompression_is_still_judged_by_stenosis(order_sign):
    mri = imaging("L5-S1 disc extrusion compressing the left S1 root. No stenosis.", ago(days=30))
    answer = ask(order_sign, [LAM_L5_S1], treated() + [mri, SCIATICA])
    assert LEVEL in topics(answer)


# --- every new topic is produced by a chart (runs last in this module) ------------------------------

def test_every_new_topic_is_produced():
    assert NEW_TOPICS <= produced, NEW_TOPICS - produced


# --- medication classes named in the plural ---------------------------------------------------------------

CARE = "conservative-care-insufficient"


@pytest.mark.parametrize("sentence, flagged", [
    ("Tried NSAIDs from 1/6/2025 to 3/28/2025 without relief.", False),     # a second modality, dated
    ("Tried anti-inflammatories from 1/6/2025 to 3/28/2025 without relief.", False),
    ("Declined NSAIDs.", True),                                              # PT alone: one modality
])
def test_a_dated_trial_of_a_class_named_in_the_plural_is_a_modality(order_sign, sentence, flagged):
    chart = fhir.pt_visits(date(2025, 3, 3), 8) + [imaging(LISTHESIS_L4_5, ago(days=50)),
                                                   note(f"{EXAM}\n{sentence}", ago(days=19)),
                                                   smoking(NEVER, ago(days=19))]
    assert (CARE in topics(ask(order_sign, [tlif()], chart, EVICORE))) is flagged
