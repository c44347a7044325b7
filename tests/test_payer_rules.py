"""Golden charts for issue 13, Deliver items 2-7: the bullets at the top of the issue that concern
the existing criteria, each as a chart an EHR would send (notes as base64 DocumentReferences, PT as
Encounters, coded Conditions and reports), over HTTP, with its control: the chart that meets.
Thresholds that differ between payers are switched by the three profiles."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from cds_service import discovery
from criteria.topics import PATIENT_FACTORS
from tests.fixtures.real_charts.build_charts import AUTHORED, CPT, Chart, b64
from tests.stubs import fhir
from tests.support.real_charts import order_sign_request

SERVICE = discovery.service("spine-surgery-order-sign")
MET = "criteria-met"
PT, CARE, LEVEL = "pt-documentation-missing", "conservative-care-insufficient", "level-unsupported"
OST_NO, OST_OK, PELVIC, SI_NO, INPATIENT = ("osteotomy-unsupported", "osteotomy-indicated",
                                            "pelvic-fixation-unsupported", "si-fusion-unsupported",
                                            "inpatient-unsupported")
STENOSIS_L45 = "Grade 1 anterolisthesis of L4 on L5 with moderate central canal stenosis at L4-5."


class Golden(Chart):
    """A chart of tests/fixtures/real_charts' kind, with the resources these rules need."""

    def __init__(self, name: str, born: str = "1961-03-02"):
        super().__init__(name, name, "")
        self.resources[0]["birthDate"] = born

    def order(self, text: str = "TLIF L4-L5", cpts=("22633",), site: str | None = "L4-L5", note: str | None = None):
        order = fhir.service_request(text, cpts=list(cpts), body_site=site, authored=AUTHORED,
                                     patient_id=self.patient_id, note=note)
        order["id"] = f"{self.patient_id}-{len(self.resources)}-order"
        return order

    def treated(self, pt_days=None) -> "Golden":
        """Medication since September 2024, eight weekly PT visits (as Encounters) to May 2025, and an
        H&P documenting what Aetna and eviCore also ask for (nicotine status, pain and function,
        symptoms), so these charts test items 2-7 under every profile."""
        self.med_request()
        self.pt_encounters(pt_days) if pt_days else self.pt_encounters()
        self.note("History and physical",
                  "HPI: Neurogenic claudication and low back pain radiating to both legs, worse with walking.\n"
                  "Pain 8/10. ODI 52%. Unable to walk more than one block; needs help with dressing.\n"
                  "SOCIAL HISTORY: Never smoker.", day="2025-06-01")
        return self

    def mri(self, text: str, day: str = "2025-05-10") -> "Golden":
        self.report(conclusion=text, effectiveDateTime=day, issued=f"{day}T16:00:00Z")
        return self

    def condition(self, text: str, icd10: str | None = None, onset: str | None = None, note: str | None = None):
        return self.add(fhir.condition(text, icd10, patient_id=self.patient_id, onset=onset, note=note))

    def procedure(self, text: str, performed: str, cpt: str | None = None, note: str | None = None):
        return self.add(fhir.procedure(text, performed, cpt, patient_id=self.patient_id, note=note))

    def observation(self, text: str, **fields):
        return self.add(fhir.observation(text, patient_id=self.patient_id, **fields))

    def prescription(self, text: str, day: str, status: str = "active"):
        return self.add({"resourceType": "MedicationRequest", "id": self.id("med"), "status": status,
                         "intent": "order", "subject": self.subject, "authoredOn": day,
                         "medicationCodeableConcept": {"text": text}})


def answer(order_sign, chart: Golden, orders=None, profile: str | None = None) -> dict:
    body = {"name": chart.name, "patient_id": chart.patient_id, "resources": chart.resources,
            "orders": orders or [chart.order()]}
    extra = {"extension": {"spine-cds.profile": profile}} if profile else {}
    return order_sign(order_sign_request(body, SERVICE, **extra))


def topics(result: dict) -> set[str]:
    """The topics of the rules these charts test (issue 13, items 2-7). The patient-factor criteria
    (nicotine, HbA1c, function, symptoms, imaging age) are held to their own charts in
    test_payer_criteria.py: these charts document them (Golden.treated), and where a level is
    unsupported Aetna also asks for imaging that supports it (imaging-outdated), which is not what
    these tests are about."""
    return {c["source"]["topic"]["code"] for c in result["cards"]} - PATIENT_FACTORS


def card(result: dict, topic: str) -> str:
    found = [c for c in result["cards"] if c["source"]["topic"]["code"] == topic]
    assert found, topics(result)
    return found[0]["summary"] + "\n" + found[0]["detail"]


def weekly(first: date, count: int, gap_at: int | None = None, gap_days: int = 10) -> list[date]:
    days, day = [], first
    for i in range(count):
        days.append(day)
        day += timedelta(days=gap_days if i == gap_at else 7)
    return days


# --- the control: a chart that meets every criterion still gets criteria-met ----------------------

def test_well_documented_tlif_meets(order_sign):
    chart = Golden("meets").treated().mri(STENOSIS_L45)
    assert topics(answer(order_sign, chart)) == {MET}


# --- item 4: instability and stenosis -------------------------------------------------------------

def test_retrolisthesis_of_2_mm_without_stenosis_supports_nothing(order_sign):
    chart = Golden("retro-2mm").treated().mri("2 mm retrolisthesis of L4 on L5. No significant stenosis.")
    for profile in (None, "aetna-cpb-0743", "evicore-cmm"):
        result = answer(order_sign, chart, profile=profile)
        assert topics(result) == {LEVEL}, profile
        assert "retrolisthesis 2 mm, below ≥ " in card(result, LEVEL)


@pytest.mark.parametrize("mm, profile, supported", [
    (2.5, None, False), (3.0, None, True),                        # base: >= 3 mm (Simmonds 2015)
    (3.5, "aetna-cpb-0743", False), (4.0, "aetna-cpb-0743", True),  # Aetna-framed reviews: 4 mm
])
def test_retrolisthesis_counts_from_the_profile_threshold_with_stenosis(order_sign, mm, profile, supported):
    chart = Golden(f"retro-{mm}-{profile}").treated().mri(
        f"Retrolisthesis of L4 on L5 measuring {mm} mm. Severe central canal stenosis at L4-5.")
    assert (topics(answer(order_sign, chart, profile=profile)) == {MET}) is supported


def test_grade_1_listhesis_without_stenosis_does_not_support_fusion(order_sign):
    chart = Golden("grade1-alone").treated().mri("Grade 1 anterolisthesis of L4 on L5. No spinal stenosis.")
    result = answer(order_sign, chart)
    assert topics(result) == {LEVEL}
    assert "without stenosis that needs decompression there" in card(result, LEVEL)


def test_grade_1_listhesis_with_mild_stenosis_does_not_support_fusion(order_sign):
    chart = Golden("grade1-mild").treated().mri("Grade 1 anterolisthesis of L4 on L5 with mild stenosis at L4-5.")
    assert topics(answer(order_sign, chart)) == {LEVEL}


@pytest.mark.parametrize("views, supported", [
    ("Anterolisthesis of L4 on L5 measures 2 mm in extension and 6 mm in flexion.", True),     # 4 mm
    ("4 mm anterolisthesis of L4 on L5 in flexion, reducing to 0 mm in extension.", True),     # 4 mm
    ("Anterolisthesis of L4 on L5 measures 3 mm in extension and 6 mm in flexion.", False),    # 3 mm
    ("Disc height at L4-5 is 8 mm in extension and 12 mm in flexion.", False),                 # no slip
])
def test_a_slip_measured_on_each_view_is_the_translation_between_them(order_sign, views, supported):
    """Aetna: grade II or more, or segmental instability of 4 mm or more (profile translation_mm >= 4). A
    grade 1 slip with moderate stenosis is below grade 2; the flexion-extension report gives the slip on
    each view, and the difference is the translation (as radiologists write it, report body as text)."""
    chart = Golden(f"views-{hash(views)}").treated().mri("Grade 1 anterolisthesis of L4 on L5 with moderate "
                                                         "central canal stenosis at L4-5.")
    chart.report(code={"text": "XR LUMBAR SPINE FLEXION EXTENSION"}, effectiveDateTime="2025-05-12",
                 issued="2025-05-12T15:00:00Z",
                 presentedForm=[{"contentType": "text/plain", "data": b64(f"FINDINGS:\n{views}\n")}])
    result = answer(order_sign, chart, profile="aetna-cpb-0743")
    assert (topics(result) == {MET}) is supported, topics(result)
    if not supported:
        assert LEVEL in topics(result)


@pytest.mark.parametrize("profile, supported", [(None, True), ("evicore-cmm", True), ("aetna-cpb-0743", False)])
def test_ungraded_stenosis_is_a_profile_setting(order_sign, profile, supported):
    chart = Golden(f"ungraded-{profile}").treated().mri("L4-5: spinal stenosis with facet hypertrophy.")
    result = answer(order_sign, chart, [chart.order("Laminectomy L4-L5", ("63047",))], profile)
    assert (topics(result) == {MET}) is supported
    if not supported:
        assert "stenosis without a grade" in card(result, LEVEL)


def test_stenosis_written_only_on_the_order_is_no_imaging(order_sign):
    chart = Golden("order-stenosis").treated().mri("Lumbar spine MRI: disc desiccation at L4-5.")
    order = chart.order("Laminectomy L4-L5 for severe stenosis at L4-5", ("63047",))
    assert LEVEL in topics(answer(order_sign, chart, [order]))


# --- item 3: red flags that deserve the name -------------------------------------------------------

def _no_pt(name: str, born: str = "1961-03-02") -> Golden:
    """Medication only: PT and conservative care are short unless a red flag waives them."""
    chart = Golden(name, born).mri(STENOSIS_L45)
    chart.prescription("meloxicam 15 mg tablet", "2025-05-20")
    return chart


@pytest.mark.parametrize("onset, why", [
    ("2014-03-01", "not from this episode"),                         # coded in 2014
    ("2025-06-01", "cervical spine, not the region operated on"),    # recent, but the neck
])
def test_cervical_myelopathy_waives_nothing_for_lumbar_fusion(order_sign, onset, why):
    chart = _no_pt(f"cervical-myelopathy-{onset}")
    chart.condition("Spondylosis with myelopathy, cervical region", "M47.12", onset=onset)
    result = answer(order_sign, chart)
    assert {PT, CARE} <= topics(result)
    assert why in card(result, PT)


def test_recent_cauda_equina_syndrome_waives_the_wait(order_sign):
    chart = _no_pt("ces-recent")
    chart.condition("Cauda equina syndrome", "G83.4", onset="2025-06-10")
    assert topics(answer(order_sign, chart)) == {MET}


def test_cauda_equina_from_another_episode_waives_nothing(order_sign):
    chart = _no_pt("ces-2022")
    chart.condition("Cauda equina syndrome", "G83.4", onset="2022-02-01")
    assert {PT, CARE} <= topics(answer(order_sign, chart))


@pytest.mark.parametrize("text, icd10, waives", [
    ("Healed L1 compression fracture", "S32.010S", False),
    ("Wedge compression fracture of L1, subsequent encounter, routine healing", "S32.010D", False),
    ("Stable L1 compression fracture", "S32.010A", False),                 # acute but no instability
    ("Unstable burst fracture of L1", "S32.011A", True),
])
def test_fracture_waives_only_when_acute_and_unstable(order_sign, text, icd10, waives):
    chart = _no_pt(f"fracture-{icd10}")
    chart.condition(text, icd10, onset="2025-06-01")
    assert (topics(answer(order_sign, chart)) == {MET}) is waives


@pytest.mark.parametrize("sentence, waives", [
    ("Progressive left foot drop; ankle dorsiflexion 2/5, EHL 1/5.", True),
    ("Progressive left foot drop; ankle dorsiflexion 3/5.", True),
    ("Progressive left foot drop; ankle dorsiflexion 4/5.", False),
    ("Progressive left foot drop.", False),
    ("Family history of cauda equina syndrome in her brother.", False),
    ("Counseled on cauda equina syndrome warning signs and return precautions.", False),
    ("History of cauda equina syndrome in 2009, fully recovered.", False),
])
def test_red_flags_in_a_note(order_sign, sentence, waives):
    chart = _no_pt(f"note-flag-{abs(hash(sentence))}")
    chart.note("Spine clinic note", f"Assessment: lumbar stenosis with spondylolisthesis. {sentence}", day="2025-06-12")
    assert (topics(answer(order_sign, chart)) == {MET}) is waives


# --- item 2: conservative care as episodes, PT as visits over the course ---------------------------

def test_one_ibuprofen_prescription_from_2022_is_not_weeks_of_care(order_sign):
    chart = Golden("ibuprofen-2022").mri(STENOSIS_L45)
    chart.pt_encounters()
    chart.prescription("ibuprofen 800 mg tablet", "2022-02-14", "completed")
    result = answer(order_sign, chart)
    assert topics(result) == {CARE}
    # Only the PT course from April 2025 counts: ten weeks, not the 160 since 2022.
    assert "Longest course of care is 10 weeks; 3 months are required" in card(result, CARE)


def test_sixteen_pt_visits_over_eight_and_a_half_weeks_with_one_ten_day_gap_is_pt(order_sign):
    chart = Golden("pt-16-visits").mri(STENOSIS_L45)
    chart.med_request()
    days = [d for d in weekly(date(2025, 3, 3), 9, gap_at=4)]
    days += [d + timedelta(days=3) for d in days[:7]]            # twice a week most weeks: 16 visits
    chart.pt_encounters(sorted(days))
    assert topics(answer(order_sign, chart)) == {MET}


def test_sparse_pt_is_not_a_weekly_course(order_sign):
    chart = Golden("pt-sparse").mri(STENOSIS_L45)
    chart.med_request()
    chart.pt_encounters([date(2025, 3, 3) + timedelta(days=10 * i) for i in range(5)])   # 5 visits over 6 weeks
    result = answer(order_sign, chart)
    assert PT in topics(result)


@pytest.mark.parametrize("profile, insufficient", [(None, False), ("aetna-cpb-0743", False), ("evicore-cmm", True)])
def test_evicore_asks_for_two_modalities(order_sign, profile, insufficient):
    chart = Golden(f"pt-only-{profile}").mri(STENOSIS_L45)
    chart.pt_encounters(weekly(date(2025, 2, 17), 16))                 # PT only, four months
    result = answer(order_sign, chart, profile=profile)
    assert (CARE in topics(result)) is insufficient
    if insufficient:
        assert "1 kind of care documented (physical therapy); 2 are required" in card(result, CARE)


@pytest.mark.parametrize("profile, counted", [(None, True), ("aetna-cpb-0743", False)])
def test_care_window_by_profile(order_sign, profile, counted):
    """Care that began 15 months ago and goes on: inside NASS's 18-month window, outside Aetna's year."""
    chart = Golden(f"window-{profile}").mri(STENOSIS_L45)
    chart.pt_encounters()
    chart.prescription("meloxicam 15 mg tablet", "2024-03-20")
    chart.prescription("meloxicam 15 mg tablet", "2024-08-20")
    assert (CARE not in topics(answer(order_sign, chart, profile=profile))) is counted


@pytest.mark.parametrize("days_since, ongoing", [(183, True), (184, False), (305, False)])
def test_care_that_stopped_over_six_months_before_the_order_is_not_ongoing(order_sign, days_since, ongoing):
    """rules/conservative_care.yaml max_gap_days 183: six months without care ends a course, before the
    order too. A naproxen trial and seven weekly PT visits (seven weeks of care), the last visit
    days_since days before the order: within the gap the care goes on to the order (months of care);
    past it, the course is its own seven weeks (the audit's chart: ended ten months before, 305 days)."""
    last = date(2025, 6, 20) - timedelta(days=days_since)
    first = last - timedelta(weeks=6)
    chart = Golden(f"care-stopped-{days_since}").mri(STENOSIS_L45)
    chart.prescription("naproxen 500 mg tablet", (first - timedelta(days=7)).isoformat(), "completed")
    chart.pt_encounters(weekly(first, 7))
    result = answer(order_sign, chart)
    assert (CARE not in topics(result)) is ongoing
    if not ongoing:
        assert "Longest course of care is 7 weeks; 3 months are required" in card(result, CARE)


def test_an_active_prescription_keeps_the_course_going_to_the_order(order_sign):
    """The same seven weeks of PT ten months before the order, beside a naproxen prescription still
    active (no end: the medication list says the patient is on it): the course goes on to the order,
    as the seeds' "meloxicam since 2024-09" does."""
    last = date(2025, 6, 20) - timedelta(days=305)
    first = last - timedelta(weeks=6)
    chart = Golden("care-active-prescription").mri(STENOSIS_L45)
    chart.prescription("naproxen 500 mg tablet", (first - timedelta(days=7)).isoformat(), "active")
    chart.pt_encounters(weekly(first, 7))
    assert CARE not in topics(answer(order_sign, chart))


@pytest.mark.parametrize("profile, counted", [(None, True), ("aetna-cpb-0743", False)])
def test_care_that_ended_eleven_months_ago_counts_only_inside_the_window(order_sign, profile, counted):
    """Five months of care (monthly naproxen, March to July 2024) and nothing since: five months inside
    NASS's 18-month window; only its last six weeks inside Aetna's year, and not to the order."""
    chart = Golden(f"care-straddles-{profile}").mri(STENOSIS_L45)
    for month in range(3, 8):
        chart.prescription("naproxen 500 mg tablet", f"2024-{month:02d}-01", "completed")
    result = answer(order_sign, chart, profile=profile)
    assert (CARE not in topics(result)) is counted
    if not counted:
        assert "Longest course of care is 5 weeks; 3 months are required" in card(result, CARE)


def _revision_chart(name: str, finding: str) -> Golden:
    chart = Golden(name).mri(finding)
    chart.procedure("Posterior spinal fusion L4-L5", "2023-01-10", "22612")
    chart.pt_encounters()                                              # 8 weeks of PT, April to June 2025
    return chart


def test_pseudarthrosis_revision_is_held_to_six_weeks_not_three_months(order_sign):
    chart = _revision_chart("revision", "Pseudarthrosis at L4-5 with lucency around the L5 screws.")
    assert topics(answer(order_sign, chart)) == {MET}
    chart = _revision_chart("not-revision", STENOSIS_L45)
    result = answer(order_sign, chart)
    assert topics(result) == {CARE} and "3 months" in card(result, CARE)


def test_discogenic_fusion_needs_twelve_months(order_sign):
    chart = Golden("discogenic").treated().mri("Disc desiccation and loss of height at L4-5. No stenosis.")
    chart.condition("Degenerative disc disease, lumbar", "M51.36", onset="2024-09-01")
    result = answer(order_sign, chart)
    assert CARE in topics(result) and "12 months" in card(result, CARE)


# --- item 6: SI joint -----------------------------------------------------------------------------

def _si(name: str, blocks=(("2025-03-10", 80), ("2025-04-10", 80)), guided: bool = False, born: str = "1961-03-02",
        treated: bool = True):
    chart = Golden(name, born)
    if treated:
        chart.treated()
    chart.condition("Sacroiliitis, right", "M46.1", onset="2024-10-01")
    chart.observation("SI joint examination", value_string="Positive compression, thigh thrust, FABER tests; "
                      "negative distraction, Gaenslen.", effective="2025-04-01")
    chart.observation("Pain severity 0-10", value=6, unit="{score}", effective="2025-05-01", loinc="72514-3")
    for day, pct in blocks:
        how = " under fluoroscopy with contrast" if guided else ""
        chart.procedure(f"Right sacroiliac joint injection{how}", day, note=f"{pct}% relief of pain after the block.")
    return chart


def si_order(chart: Golden, text: str = "SI joint fusion, right", cpt: str = "27279"):
    return chart.order(text, (cpt,), None)


def test_si_fusion_that_meets(order_sign):
    chart = _si("si-meets")
    assert topics(answer(order_sign, chart, [si_order(chart)])) == {MET}


def test_non_transfixing_device_27278_is_not_supported(order_sign):
    chart = _si("si-27278")
    result = answer(order_sign, chart, [si_order(chart, cpt="27278")])
    assert topics(result) == {SI_NO} and "27278" in card(result, SI_NO)


def test_bilateral_same_day_si_fusion_for_ankylosing_spondylitis(order_sign):
    chart = _si("si-as")
    chart.condition("Ankylosing spondylitis of lumbosacral region", "M45.7", onset="2019-05-01")
    result = answer(order_sign, chart, [si_order(chart, "SI joint fusion, bilateral")])
    text = card(result, SI_NO)
    assert "Ankylosing spondylitis excludes SI-joint fusion" in text and "Both SI joints in one sitting" in text


def test_l5_root_compression_is_another_pain_generator(order_sign):
    chart = _si("si-l5")
    chart.condition("Lumbar radiculopathy, left L5", "M54.16", onset="2025-02-01",
                    note="MRI: L4-5 foraminal disc protrusion compressing the exiting left L5 nerve root.")
    result = answer(order_sign, chart, [si_order(chart)])
    assert "Another pain generator is documented and not addressed: radiculopathy" in card(result, SI_NO)


def test_two_blocks_on_one_day_are_one_sitting(order_sign):
    chart = _si("si-same-day", blocks=(("2025-04-10", 80), ("2025-04-10", 85)))
    assert topics(answer(order_sign, chart, [si_order(chart)])) == {SI_NO}


@pytest.mark.parametrize("guided, profile, met", [
    (False, None, True), (False, "evicore-cmm", False), (True, "evicore-cmm", True)])
def test_image_guided_blocks_by_profile(order_sign, guided, profile, met):
    chart = _si(f"si-guided-{guided}-{profile}", guided=guided)
    assert (topics(answer(order_sign, chart, [si_order(chart)], profile)) == {MET}) is met


def test_open_si_fusion_only_on_its_pathways(order_sign):
    chart = _si("si-open")
    result = answer(order_sign, chart, [si_order(chart, "Open SI joint fusion, right", "27280")])
    assert "Open SI fusion (27280) is covered for trauma" in card(result, SI_NO)


def test_red_flag_never_waives_si_fusion(order_sign):
    """A recent cauda equina syndrome waives the lumbar wait, never the SI-joint fusion's care and PT."""
    chart = _si("si-ces", treated=False)
    chart.condition("Cauda equina syndrome", "G83.4", onset="2025-06-10")
    result = answer(order_sign, chart, [si_order(chart)])
    assert {SI_NO, PT, CARE} <= topics(result)
    assert "Six months of conservative care not documented" in card(result, SI_NO)


# --- item 7: inpatient setting --------------------------------------------------------------------

def _laminectomy(name: str, born: str) -> tuple[Golden, dict]:
    chart = Golden(name, born).treated().mri("Severe central canal stenosis at L3-4 and L4-5.")
    return chart, chart.order("Laminectomy L3-L5, inpatient admission", ("63047", "63048"), "L3-L5")


def test_eighty_year_old_with_sleep_apnoea_and_heart_failure_may_stay(order_sign):
    chart, order = _laminectomy("inpatient-80", "1945-02-01")
    chart.condition("Obstructive sleep apnea", "G47.33", onset="2018-01-01")
    chart.condition("Chronic systolic heart failure", "I50.22", onset="2020-01-01")
    assert topics(answer(order_sign, chart, [order])) == {MET}


@pytest.mark.parametrize("born, extra, supported", [
    ("1965-02-01", None, False),                        # 60, no comorbidity: ambulatory
    ("1965-02-01", ("Chronic kidney disease, stage 3b", "N18.32"), True),
    ("1949-02-01", None, True),                         # 76
    ("1951-02-01", None, False),                        # 74
])
def test_inpatient_by_age_and_comorbidity(order_sign, born, extra, supported):
    chart, order = _laminectomy(f"inpatient-{born}-{bool(extra)}", born)
    if extra:
        chart.condition(*extra, onset="2021-01-01")
    assert (INPATIENT not in topics(answer(order_sign, chart, [order]))) is supported


def test_asa_class_on_the_order(order_sign):
    chart, order = _laminectomy("inpatient-asa", "1965-02-01")
    order["note"] = [{"text": "Pre-anesthesia: ASA class III."}]
    assert INPATIENT not in topics(answer(order_sign, chart, [order]))
    order["note"] = [{"text": "Pre-anesthesia: ASA class II."}]
    assert INPATIENT in topics(answer(order_sign, chart, [order]))


def test_unsupported_levels_do_not_make_a_stay(order_sign):
    chart = Golden("inpatient-unsupported-levels").treated().mri("Mild disc bulges at L2-3 and L3-4.")
    order = chart.order("Posterior fusion L2-L4, inpatient admission", ("22633", "22634"), "L2-L4")
    assert {LEVEL, INPATIENT} <= topics(answer(order_sign, chart, [order]))


# --- item 5: deformity and osteotomy --------------------------------------------------------------

def _deformity(name: str, text: str, born: str = "1953-01-10") -> tuple[Golden, list]:
    chart = Golden(name, born).treated()
    chart.report(code={"text": "XR standing full-length spine"}, conclusion=text,
                 effectiveDateTime="2025-05-12", issued="2025-05-12T16:00:00Z")
    orders = [chart.order("Posterior spinal fusion T10-pelvis with pelvic fixation", ("22800", "22848"), "T10-pelvis"),
              chart.order("L4 pedicle subtraction osteotomy", ("22207",), "L4")]
    return chart, orders


def test_pi_ll_of_12_at_72_supports_no_osteotomy_no_t10_pelvis_no_pelvic_fixation(order_sign):
    chart, orders = _deformity("pi-ll-12", "PI-LL mismatch 12 degrees. SVA 3 cm.")
    found = topics(answer(order_sign, chart, orders))
    assert {OST_NO, LEVEL, PELVIC} <= found and OST_OK not in found


def test_pi_ll_of_25_at_72_supports_the_correction(order_sign):
    chart, orders = _deformity("pi-ll-25", "PI-LL mismatch 25 degrees. SVA 9 cm.")
    found = topics(answer(order_sign, chart, orders))
    assert OST_OK in found and not {OST_NO, LEVEL, PELVIC} & found


def test_thoracic_curve_does_not_support_a_lumbar_osteotomy(order_sign):
    chart = Golden("thoracic-curve", "1970-01-01").treated().mri("Thoracic scoliosis T5-T11, Cobb angle 48 degrees.")
    result = answer(order_sign, chart, [chart.order("Posterior column osteotomy L3", ("22214",), "L3")])
    assert {OST_OK, OST_NO} <= topics(result)
    assert "lies outside the deformity" in card(result, OST_NO)
    assert CPT  # the order carries CPT codes (build_charts' system), as EHRs send them


def test_thoracic_kyphosis_supports_no_lumbar_osteotomy(order_sign):
    """Thoracic kyphosis over 75 degrees is corrected in the thoracic spine (rules/deformity.yaml
    thoracic_region): it meets the deformity threshold, but an L3 pedicle subtraction osteotomy with a
    normal lumbar spine lies outside it. PI-LL 25 degrees (sagittal, T10 to S1) is the control."""
    chart = Golden("thoracic-kyphosis", "1960-01-01").treated().mri("Thoracic kyphosis 82 degrees. Normal lumbar lordosis.")
    result = answer(order_sign, chart, [chart.order("L3 pedicle subtraction osteotomy", ("22207",), "L3")])
    assert {OST_OK, OST_NO} <= topics(result)
    assert "lies outside the deformity" in card(result, OST_NO)
    control = Golden("thoracic-kyphosis-control", "1960-01-01").treated().mri("PI-LL mismatch 25 degrees.")
    assert OST_NO not in topics(answer(order_sign, control, [control.order("L3 pedicle subtraction osteotomy", ("22207",), "L3")]))


def test_a_prior_fusion_named_in_the_order_is_not_an_ordered_level(order_sign):
    """"TLIF L3-L4 with exploration of prior L4-L5 fusion": L4-L5 is what was done before
    (order_words.yaml prior_levels), not a level to fuse and to support."""
    chart = Golden("prior-level-in-order").treated().mri("Grade 2 anterolisthesis at L3-4 with severe stenosis.")
    order = chart.order("TLIF L3-L4 with exploration of prior L4-L5 fusion", ("22633", "22830"), "L3-L4")
    assert LEVEL not in topics(answer(order_sign, chart, [order]))
    unsupported = chart.order("TLIF L3-L4 and L4-L5", ("22633", "22634"), "L3-L5")
    assert LEVEL in topics(answer(order_sign, chart, [unsupported]))


def test_an_osteotomy_without_a_level_needs_documentation(order_sign):
    """A deformity that meets the threshold, and an osteotomy ordered with no level: whether it lies in the
    deformity cannot be checked, so it is never "criteria met" (the contract's determinations)."""
    chart = Golden("osteotomy-no-level", "1960-01-01").treated().mri("PI-LL mismatch 25 degrees.")
    result = answer(order_sign, chart, [chart.order("Pedicle subtraction osteotomy", ("22207",), None)])
    assert OST_NO in topics(result) and MET not in topics(result)
    assert "level is not documented" in card(result, OST_NO)
    placed = Golden("osteotomy-level", "1960-01-01").treated().mri("PI-LL mismatch 25 degrees.")
    assert OST_NO not in topics(answer(order_sign, placed, [placed.order("L3 pedicle subtraction osteotomy", ("22207",), "L3")]))


@pytest.mark.parametrize("name, deformity, supported", [
    ("curve", "Thoracic scoliosis T5-T11, Cobb angle 55 degrees.", False),   # a curve the construct does not reach
    ("kyphosis", "Thoracic kyphosis 82 degrees.", False),
    ("pi-ll", "PI-LL mismatch 25 degrees.", True),                           # sagittal: the correction reaches S1
])
def test_pelvic_fixation_needs_a_deformity_that_reaches_the_sacrum(order_sign, name, deformity, supported):
    chart = Golden(f"pelvic-{name}", "1958-01-01").treated().mri(
        f"Grade 2 anterolisthesis at L4-5 and L5-S1 with severe stenosis. {deformity}")
    order = chart.order("TLIF L4-S1 with pelvic fixation", ("22633", "22634", "22848"), "L4-S1")
    assert (PELVIC not in topics(answer(order_sign, chart, [order]))) is supported


@pytest.mark.parametrize("days, counted", [
    (("2024-02-01", "2024-04-01", "2024-05-25"), True),     # four months of care inside the window
    (("2023-08-01", "2023-10-01", "2023-11-25"), False),    # the same, ending days after the window opens
])
def test_care_before_the_window_is_another_episode(order_sign, days, counted):
    """NASS base window 18 months (from 2023-12-20): care before it is not this episode's, whatever its length."""
    chart = Golden(f"window-edge-{days[0]}").mri(STENOSIS_L45)
    chart.pt_encounters()
    for day in days:
        chart.prescription("naproxen 500 mg tablet", day)
    assert (CARE not in topics(answer(order_sign, chart))) is counted
