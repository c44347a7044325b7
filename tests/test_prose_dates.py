"""Dates: FHIR dates strictly (a malformed one is reported, never guessed), prose dates with their precision."""
from __future__ import annotations

from datetime import date

import pytest

from fhir_mappings.build import build_facts
from fhir_mappings.chart import Chart
from fhir_mappings.dates import date_precision, parse_date
from fhir_mappings.text.dates import find_dates
from tests.stubs import fhir


@pytest.mark.parametrize("value, expected", [
    ("2025", date(2025, 1, 1)), ("2025-03", date(2025, 3, 1)), ("2025-03-04", date(2025, 3, 4)),
    ("2025-03-04T10:00:00Z", date(2025, 3, 4)), ("2025-03-04T10:00:00+05:00", date(2025, 3, 4)),
    ("2025/03/04", None), ("2025-3-4", None), ("2025-02-30", None), ("20250304", None), ("03/04/2025", None),
    ("", None), (None, None), (20250304, None),
])
def test_fhir_dates_are_parsed_strictly(value, expected):
    assert parse_date(value) == expected


def test_precision_of_a_fhir_date():
    assert [date_precision(v) for v in ("2025", "2025-03", "2025-03-04", "2025-03-04T10:00:00Z", "2025/03")] == \
        ["year", "month", "day", "day", None]


def test_a_malformed_date_of_a_fact_is_reported_not_guessed():
    injection = fhir.procedure("Lumbar epidural steroid injection", performed="2025/01/06")
    facts = build_facts(Chart.build("pat-1", [], [injection], date(2025, 6, 1)), orders=())
    (episode,) = facts.care
    assert episode.start is None
    (problem,) = facts.unread
    assert "performedDateTime '2025/01/06' is not a FHIR date" in problem


@pytest.mark.parametrize("text, day, precision", [
    ("seen on 1/6/2025", date(2025, 1, 6), "day"),
    ("seen on 01/06/25", date(2025, 1, 6), "day"),
    ("since 12/2024", date(2024, 12, 1), "month"),
    ("ending March 2025", date(2025, 3, 1), "month"),
    ("on Mar. 3, 2025", date(2025, 3, 3), "day"),
    ("on 3 March 2025", date(2025, 3, 3), "day"),
    ("fracture (2005)", date(2005, 1, 1), "year"),
    ("on 2025-02-03", date(2025, 2, 3), "day"),
])
def test_prose_dates_keep_their_precision(text, day, precision):
    (found,) = find_dates(text)
    assert (found.day, found.precision) == (day, precision)


@pytest.mark.parametrize("text", ["2/30/2025", "L4-5", "grade 2", "12 visits", "13/2025"])
def test_no_date_is_guessed(text):
    assert find_dates(text) == []
