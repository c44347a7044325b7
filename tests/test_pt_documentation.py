"""Formal physical therapy (criteria/rules/pt_documentation.yaml), over HTTP like an EHR.
Guideline: SUR712.036 / Aetna CPB 0743 — >= 6 weeks of supervised PT, weekly, within 12 months."""
from __future__ import annotations

from datetime import date

import pytest

from tests.stubs import fhir, seeds

TOPIC = "pt-documentation-missing"


def topics(answer: dict) -> list[str]:
    return [c["source"]["topic"]["code"] for c in answer["cards"]]


def card(answer: dict, topic: str) -> dict:
    return next(c for c in answer["cards"] if c["source"]["topic"]["code"] == topic)


def test_seed_001_pt_mentioned_without_dates_is_missing(order_sign):
    answer = order_sign(fhir.make_request(seeds.seed_001_orders(), seeds.seed_001_chart()))
    assert TOPIC in topics(answer)
    pt = card(answer, TOPIC)
    assert pt["indicator"] == "warning"
    assert "PT is mentioned without dates; document 6 weeks of dated, supervised PT visits" in pt["detail"]
    assert "undated · mentioned without dates" in pt["detail"]           # the evidence line
    assert "Formal physical therapy" in pt["detail"]                      # the rule line
    assert any("SUR712.036" in link["url"] for link in pt["links"])      # the policy, as a link
    assert len(pt["summary"]) <= 139
    referral = pt["suggestions"][0]["actions"][0]["resource"]
    assert referral["resourceType"] == "ServiceRequest" and referral["subject"] == {"reference": "Patient/pat-1"}
    # R4 allows no ServiceRequest as a reasonReference: the surgery order is supportingInfo; the code is coded.
    assert "reasonReference" not in referral and referral["supportingInfo"] == [{"reference": "ServiceRequest/sr-fusion"}]
    assert referral["code"]["coding"] == [{"system": "http://snomed.info/sct", "code": "91251008",
                                           "display": "Physical therapy procedure"}]
    assert {r["code"] for r in pt["overrideReasons"]} >= {"documented-elsewhere"}


def test_seed_001_with_eight_weekly_visits_has_no_pt_card(order_sign):
    chart = seeds.seed_001_chart() + fhir.pt_visits(date(2025, 3, 3), 8)
    answer = order_sign(fhir.make_request(seeds.seed_001_orders(), chart))
    assert TOPIC not in topics(answer)


def test_seed_001_with_cauda_equina_has_no_pt_card(order_sign):
    chart = seeds.seed_001_chart() + [fhir.condition("Cauda equina syndrome", "G83.4", onset="2025-06-15")]
    answer = order_sign(fhir.make_request(seeds.seed_001_orders(), chart))
    # The waiver covers the lumbar orders; never the SI-joint fusion (its criteria are diagnostic).
    (pt,) = [c for c in answer["cards"] if c["source"]["topic"]["code"] == TOPIC]
    assert {r["reference"] for r in pt["extension"]["davinci-crd.associated-resource"]} == {"ServiceRequest/sr-si-fusion"}
    assert "conservative-care-insufficient" not in topics(answer)


def test_negated_cauda_equina_does_not_waive(order_sign):
    chart = seeds.seed_001_chart() + [fhir.report("MRI lumbar spine", "No cauda equina compression.", "2025-06-01")]
    answer = order_sign(fhir.make_request(seeds.seed_001_orders(), chart))
    assert TOPIC in topics(answer)


@pytest.mark.parametrize("visits, gap_days, expect_card", [
    (6, 7, False),   # days 0..35: 6 calendar weeks, weekly -> meets 6 weeks
    (5, 7, True),    # 5 weeks: one short
    (8, 14, True),   # fortnightly visits: no visit every week
    (7, 8, False),   # 8-day gaps: 7 visits over 7 calendar weeks, a visit a week counted over the course
    (5, 10, True),   # 10-day gaps: 5 visits over 6 weeks, fewer than one a week
])
def test_pt_course_length_and_weekly_visits(order_sign, visits, gap_days, expect_card):
    chart = [fhir.procedure("Lumbar epidural steroid injection", performed="2024-09-01")]
    chart += fhir.pt_visits(date(2025, 2, 3), visits, every_days=gap_days)
    orders = [fhir.service_request("Lumbar fusion L4-L5", cpts=["22633"], body_site="L4-L5")]
    answer = order_sign(fhir.make_request(orders, chart))
    assert (TOPIC in topics(answer)) is expect_card


@pytest.mark.parametrize("course_end, expect_card", [
    ("2024-06-25", False),   # ended within 12 months of the 2025-06-20 order
    ("2024-06-15", True),    # ended 12 months + 5 days before
])
def test_pt_course_recency(order_sign, course_end, expect_card):
    end = date.fromisoformat(course_end)
    start = date.fromordinal(end.toordinal() - 49)
    chart = fhir.pt_visits(start, 8) + [fhir.procedure("Epidural steroid injection", performed="2024-01-10")]
    orders = [fhir.service_request("Lumbar fusion L4-L5", cpts=["22633"], body_site="L4-L5")]
    answer = order_sign(fhir.make_request(orders, chart))
    assert (TOPIC in topics(answer)) is expect_card


def test_pt_after_the_order_date_does_not_count(order_sign):
    chart = fhir.pt_visits(date(2025, 7, 1), 8) + [fhir.procedure("Epidural steroid injection", performed="2024-01-10")]
    orders = [fhir.service_request("Lumbar fusion L4-L5", cpts=["22633"], body_site="L4-L5", authored="2025-06-20")]
    assert TOPIC in topics(order_sign(fhir.make_request(orders, chart)))


def test_course_recorded_as_one_period_counts(order_sign):
    chart = [fhir.procedure("Physical therapy course, lumbar", cpt="97110", period=("2025-01-06", "2025-03-03")),
             fhir.procedure("Epidural steroid injection", performed="2024-10-01")]
    orders = [fhir.service_request("Lumbar fusion L4-L5", cpts=["22633"], body_site="L4-L5")]
    assert TOPIC not in topics(order_sign(fhir.make_request(orders, chart)))
