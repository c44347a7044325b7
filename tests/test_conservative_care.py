"""Total conservative care (criteria/rules/conservative_care.yaml): fusion >= 3 months
(BCBSA/NASS, eviCore), decompression alone >= 6 weeks (Aetna CPB 0743), SI fusion >= 6 months
(eviCore CMM-611, MP-555); measured to the order's authoredOn."""
from __future__ import annotations

from datetime import date

import pytest

from tests.stubs import fhir

TOPIC = "conservative-care-insufficient"


def topics(answer):
    return [c["source"]["topic"]["code"] for c in answer["cards"]]


def chart_starting(first_care: str) -> list:
    # PT that satisfies the PT rule by itself, ending just before the order.
    return [fhir.medication("meloxicam 15 mg", first_care)] + fhir.pt_visits(date(2025, 4, 7), 8)


@pytest.mark.parametrize("order, first_care, expect_card", [
    (("Lumbar fusion L4-L5", ["22633"]), "2025-03-20", False),      # exactly 3 months before 2025-06-20
    (("Lumbar fusion L4-L5", ["22633"]), "2025-03-21", True),       # one day short
    (("Laminectomy L4-L5", ["63047"]), "2025-04-07", False),        # decompression alone: 6 weeks (PT from 04-07)
    (("Laminectomy L4-L5", ["63047"]), "2025-05-10", False),        # PT itself started 2025-04-07: > 6 weeks
    (("SI joint fusion, right", ["27279"]), "2024-12-20", False),   # 6 months
    (("SI joint fusion, right", ["27279"]), "2024-12-21", True),
])
def test_thresholds_by_procedure(order_sign, order, first_care, expect_card):
    text, cpts = order
    orders = [fhir.service_request(text, cpts=cpts, body_site="L4-L5" if "63047" in cpts or "22633" in cpts else None)]
    answer = order_sign(fhir.make_request(orders, chart_starting(first_care)))
    assert (TOPIC in topics(answer)) is expect_card


def test_decompression_alone_six_weeks_boundary(order_sign):
    orders = [fhir.service_request("Laminectomy L4-L5", cpts=["63047"], body_site="L4-L5")]
    # PT course of 6 weeks ending right before the order; nothing earlier.
    chart = fhir.pt_visits(date(2025, 5, 9), 6)       # 2025-05-09 + 6 weeks = 2025-06-20
    assert TOPIC not in topics(order_sign(fhir.make_request(orders, chart)))
    chart = fhir.pt_visits(date(2025, 5, 10), 6)      # one day short of 6 weeks
    assert TOPIC in topics(order_sign(fhir.make_request(orders, chart)))


def test_fusion_with_decompression_needs_the_fusion_requirement(order_sign):
    orders = [fhir.service_request("Laminectomy L4-L5", cpts=["63047"], body_site="L4-L5"),
              fhir.service_request("Lumbar fusion L4-L5", cpts=["22633"], body_site="L4-L5")]
    chart = fhir.pt_visits(date(2025, 4, 1), 11)   # ~11 weeks: enough for decompression, not for fusion
    answer = order_sign(fhir.make_request(orders, chart))
    card = next(c for c in answer["cards"] if c["source"]["topic"]["code"] == TOPIC)
    assert "3 months" in card["summary"] and "fusion" in card["summary"]
    assert "3 months are required" in card["detail"]


def test_undated_care_does_not_count(order_sign):
    orders = [fhir.service_request("Lumbar fusion L4-L5", cpts=["22633"], body_site="L4-L5")]
    chart = [fhir.condition("Low back pain", note="Tried chiropractic and NSAIDs for years.")]
    answer = order_sign(fhir.make_request(orders, chart))
    card = next(c for c in answer["cards"] if c["source"]["topic"]["code"] == TOPIC)
    assert "No dated non-operative care; 3 months are required" in card["detail"]
    assert "mentioned without dates" in card["detail"]


def test_red_flag_waives_conservative_care(order_sign):
    orders = [fhir.service_request("Lumbar fusion L4-L5", cpts=["22633"], body_site="L4-L5")]
    # Dated in this episode and graded (CAM 161: 0-3/5): a red flag that deserves the name.
    chart = [fhir.condition("Progressive foot drop, left", onset="2025-06-01", note="Ankle dorsiflexion 2/5, EHL 1/5.")]
    answer = order_sign(fhir.make_request(orders, chart))
    assert TOPIC not in topics(answer) and "pt-documentation-missing" not in topics(answer)
    # The same words without a date, or without a grade, waive nothing (tests/test_payer_rules.py has the rest).
    for flag in (fhir.condition("Progressive foot drop, left", note="Ankle dorsiflexion 2/5."),
                 fhir.condition("Progressive foot drop, left", onset="2025-06-01")):
        assert TOPIC in topics(order_sign(fhir.make_request(orders, [flag])))


@pytest.mark.parametrize("text, kinds", [
    # Classes named in the plural, as notes name them ("failed NSAIDs"), are medication trials.
    ("Failed conservative management including PT, NSAIDs and an epidural steroid injection.",
     ["physical_therapy", "medication", "injection"]),
    ("Tried anti-inflammatories and muscle relaxants without relief.", ["medication", "medication"]),
    ("Analgesics did not help.", ["medication"]),
    ("No NSAIDs due to kidney disease.", []),
    ("Will start NSAIDs.", []),
])
def test_care_classes_named_in_the_plural(text, kinds):
    from fhir_mappings.care import care_of
    from fhir_mappings.build import forget_texts
    forget_texts()
    note = {"resourceType": "DiagnosticReport", "id": "r1", "status": "final", "conclusion": text,
            "effectiveDateTime": "2025-05-01", "code": {"text": "Consult"}}
    assert [episode.kind for episode in care_of(note)] == kinds
