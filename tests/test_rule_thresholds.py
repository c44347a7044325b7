"""Every threshold tested on both sides, and the payer profile changing a borderline outcome.
Thresholds: criteria/rules/*.yaml; profiles: criteria/profiles/*.yaml."""
from __future__ import annotations

from datetime import date

import pytest

from tests.stubs import fhir


def topics(answer) -> set[str]:
    return {c["source"]["topic"]["code"] for c in answer["cards"]}


def well_treated() -> list[dict]:
    """Conservative care and PT that satisfy those rules, so a test sees only its own rule."""
    return [fhir.medication("meloxicam 15 mg", "2024-10-01")] + fhir.pt_visits(date(2025, 3, 3), 8)


def ask(order_sign, orders, chart, profile=None):
    extra = {"extension": {"spine-cds.profile": profile}} if profile else {}
    return order_sign(fhir.make_request(orders, well_treated() + chart, **extra))


FUSION_L3_L4 = fhir.service_request("TLIF L3-L4", cpts=["22633"], body_site="L3-L4")


@pytest.mark.parametrize("mm, profile, supported", [
    (2.0, None, False), (2.5, None, True),                        # NASS 2014: > 2 mm
    (3.5, "aetna-cpb-0743", False), (4.0, "aetna-cpb-0743", True),  # Aetna: >= 4 mm
    (2.5, "evicore-cmm", False), (3.0, "evicore-cmm", True),        # eviCore (literature): >= 3 mm
])
def test_translation_threshold_by_profile(order_sign, mm, profile, supported):
    chart = [fhir.report("XR lumbar flexion-extension", f"{mm} mm translation at L3-4 on flexion-extension films.",
                         "2025-05-01")]
    answer = ask(order_sign, [FUSION_L3_L4], chart, profile)
    assert ("level-unsupported" not in topics(answer)) is supported


@pytest.mark.parametrize("profile, supported", [(None, True), ("aetna-cpb-0743", False), ("evicore-cmm", False)])
def test_listhesis_grade_by_profile(order_sign, profile, supported):
    # NASS 2014: a grade-1 slip counts with stenosis needing decompression there (tests/test_payer_rules.py
    # holds the same slip without stenosis); Aetna and eviCore want grade 2 whatever the stenosis.
    chart = [fhir.report("MRI lumbar spine", "Grade 1 anterolisthesis of L3 on L4 with severe central stenosis at L3-4.",
                         "2025-05-01")]
    answer = ask(order_sign, [FUSION_L3_L4], chart, profile)
    assert ("level-unsupported" not in topics(answer)) is supported


def test_grade_2_listhesis_meets_every_profile(order_sign):
    chart = [fhir.report("MRI lumbar spine", "Grade 2 anterolisthesis of L3 on L4.", "2025-05-01")]
    for profile in (None, "aetna-cpb-0743", "evicore-cmm"):
        assert "level-unsupported" not in topics(ask(order_sign, [FUSION_L3_L4], chart, profile))


def test_stenosis_alone_does_not_support_fusion(order_sign):
    chart = [fhir.report("MRI lumbar spine", "Severe central canal stenosis at L3-4.", "2025-05-01")]
    answer = ask(order_sign, [FUSION_L3_L4], chart)
    card = next(c for c in answer["cards"] if c["source"]["topic"]["code"] == "level-unsupported")
    assert "stenosis alone does not support fusion" in card["detail"]


@pytest.mark.parametrize("conclusion, profile, indicated", [
    # The patient is 64: the SRS-Schwab 10° counted from the age-group target 6.8° (Lafage 2016).
    ("PI-LL mismatch of 16.8 degrees.", None, False), ("PI-LL mismatch of 17 degrees.", None, True),
    ("PI-LL mismatch of 15 degrees.", "evicore-cmm", False), ("PI-LL mismatch of 16 degrees.", "evicore-cmm", True),
    ("SVA 5 cm.", None, False), ("SVA 5.5 cm.", None, True),
    ("Pelvic tilt 20 degrees.", None, False), ("Pelvic tilt 21 degrees.", None, True),
    ("Lumbar scoliosis, Cobb angle 29 degrees.", None, False), ("Lumbar scoliosis, Cobb angle 30 degrees.", None, True),
    ("Lumbar scoliosis, Cobb angle 50 degrees.", "aetna-cpb-0743", False),
    ("Lumbar scoliosis, Cobb angle 51 degrees. Oswestry Disability Index 42%.", "aetna-cpb-0743", True),
    ("Lumbar scoliosis, Cobb angle 51 degrees.", "aetna-cpb-0743", False),   # no functional impairment
    ("SVA 8 cm.", "evicore-cmm", False), ("SVA 8.5 cm.", "evicore-cmm", True),
    ("Thoracic kyphosis 75 degrees.", None, False), ("Thoracic kyphosis 76 degrees.", None, True),
    ("Very subtle thoracolumbar dextroscoliotic curvature.", None, False),
])
def test_deformity_thresholds(order_sign, conclusion, profile, indicated):
    # A thoracic kyphosis is corrected in the thoracic spine (deformity.yaml thoracic_region): its
    # osteotomy is a thoracic one; the others' is at L3.
    level, cpt = ("T8", "22212") if conclusion.startswith("Thoracic kyphosis") else ("L3", "22214")
    osteotomy = fhir.service_request(f"Posterior osteotomy {level}", cpts=[cpt], body_site=level)
    chart = [fhir.report("XR standing full-length spine", conclusion, "2025-05-01")]
    found = topics(ask(order_sign, [osteotomy], chart, profile))
    assert ("osteotomy-indicated" in found) is indicated
    assert ("osteotomy-unsupported" in found) is (not indicated)


@pytest.mark.parametrize("conclusion, supported", [
    ("Mild central stenosis at L4-5.", False),
    ("Mild to moderate central stenosis at L4-5.", False),
    ("Moderate central stenosis at L4-5.", True),
    ("Spinal stenosis at L4-5.", True),                     # ungraded counts (ungraded_stenosis_counts)
    ("No significant stenosis at L4-5.", False),
])
def test_decompression_needs_stenosis_at_its_levels(order_sign, conclusion, supported):
    laminectomy = fhir.service_request("Laminectomy L4-L5", cpts=["63047"], body_site="L4-L5")
    chart = [fhir.report("MRI lumbar spine", conclusion, "2025-05-01")]
    assert ("level-unsupported" not in topics(ask(order_sign, [laminectomy], chart))) is supported


def test_decompression_without_levels_needs_documentation(order_sign):
    laminectomy = fhir.service_request("Lumbar laminectomy", cpts=["63047"])
    assert "levels-not-documented" in topics(ask(order_sign, [laminectomy], []))


def si_chart(tests_positive=3, relief=(80, 80), pain=6, onset="2024-10-01"):
    names = ["compression", "thigh thrust", "FABER", "distraction", "Gaenslen"]
    positive, negative = names[:tests_positive], names[tests_positive:]
    text = f"Positive {', '.join(positive)} tests" if positive else "No positive SI provocative tests"
    text += f"; negative {', '.join(negative)}." if negative else "."
    chart = [fhir.condition("Sacroiliitis, right", "M46.1", onset=onset),
             fhir.observation("SI joint examination", value_string=text, effective="2025-04-01"),
             fhir.observation("Pain severity 0-10", value=pain, unit="{score}", effective="2025-05-01", loinc="72514-3")]
    for i, pct in enumerate(relief):
        chart.append(fhir.procedure("Right sacroiliac joint injection", performed=f"2025-0{3 + i}-10",
                                    note=f"{pct}% relief of pain after the block."))
    return chart


SI_FUSION = fhir.service_request("SI joint fusion, right", cpts=["27279"])


@pytest.mark.parametrize("kwargs, profile, unsupported", [
    ({}, None, False),
    ({"tests_positive": 2}, None, True),
    ({"relief": (80, 74)}, None, True),
    ({"relief": (80, 74)}, "aetna-cpb-0743", False),   # Aetna: >= 70 %
    ({"relief": (80, 69)}, "aetna-cpb-0743", True),
    ({"relief": (80, 70)}, "aetna-cpb-0743", False),
    ({"relief": (80,)}, None, True),
    ({"pain": 4}, None, True),
    ({"pain": 5}, None, False),
    ({"onset": "2025-01-01"}, None, True),     # under 6 months of SI pain before 2025-06-20
])
def test_si_fusion_criteria(order_sign, kwargs, profile, unsupported):
    found = topics(ask(order_sign, [SI_FUSION], si_chart(**kwargs), profile))
    assert ("si-fusion-unsupported" in found) is unsupported


def test_all_criteria_met_gives_one_info_card(order_sign):
    answer = ask(order_sign, [SI_FUSION], si_chart())
    (card,) = answer["cards"]
    assert card["source"]["topic"]["code"] == "criteria-met" and card["indicator"] == "info"
    assert "Sacroiliac-joint fusion" in card["detail"] and "Formal physical therapy" in card["detail"]
    assert "**Meets criteria:** SI joint fusion" in card["detail"]


@pytest.mark.parametrize("construct, supported", [("L2-S1", True), ("L3-S1", False)])
def test_pelvic_fixation_needs_a_long_construct(order_sign, construct, supported):
    order = fhir.service_request(f"Posterior fusion {construct} with pelvic fixation", cpts=["22633", "22634", "22848"],
                                 body_site=construct)
    chart = [fhir.report("XR lumbar spine", "Grade 1 anterolisthesis at L2-3, L3-4, L4-5 and L5-S1. "
                                                  "Moderate central canal stenosis at L2-3, L3-4, L4-5 and L5-S1.", "2025-05-01")]
    found = topics(ask(order_sign, [order], chart))
    assert "level-unsupported" not in found
    assert ("pelvic-fixation-unsupported" not in found) is supported


@pytest.mark.parametrize("levels, inpatient_supported", [("L4-L5", False), ("L3-L5", True)])
def test_inpatient_setting(order_sign, levels, inpatient_supported):
    order = fhir.service_request(f"TLIF {levels}, inpatient admission", cpts=["22633"], body_site=levels)
    chart = [fhir.report("XR lumbar spine", "Grade 1 anterolisthesis at L3-4 and L4-5. "
                                                  "Moderate central canal stenosis at L3-4 and L4-5.", "2025-05-01")]
    assert ("inpatient-unsupported" not in topics(ask(order_sign, [order], chart))) is inpatient_supported


def test_exploration_bundled_only_beside_other_spine_surgery(order_sign):
    explore = fhir.service_request("Exploration of spinal fusion", cpts=["22830"])
    assert "exploration-bundled" not in topics(ask(order_sign, [explore], []))
    laminectomy = fhir.service_request("Laminectomy L4-L5", cpts=["63047"], body_site="L4-L5")
    chart = [fhir.report("MRI", "Moderate stenosis at L4-5.", "2025-05-01")]
    assert "exploration-bundled" in topics(ask(order_sign, [explore, laminectomy], chart))


def test_destabilising_decompression_supports_fusion(order_sign):
    order = fhir.service_request("TLIF L3-L4 with complete facetectomy at L3-4", cpts=["22633"], body_site="L3-L4")
    chart = [fhir.report("MRI lumbar spine", "Severe stenosis at L3-4.", "2025-05-01")]
    assert "level-unsupported" not in topics(ask(order_sign, [order], chart))


@pytest.mark.parametrize("degrees, supported", [(14, False), (15, True)])   # angulation_deg >= 15 (S19d)
def test_angulation_threshold(order_sign, degrees, supported):
    chart = [fhir.report("XR lumbar flexion-extension", f"{degrees} degrees of angulation at L3-4 on flexion-extension films.",
                         "2025-05-01")]
    assert ("level-unsupported" not in topics(ask(order_sign, [FUSION_L3_L4], chart))) is supported
