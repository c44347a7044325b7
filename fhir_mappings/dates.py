"""FHIR date/dateTime strings to dates, parsed strictly (FHIR R4 date and dateTime regexes): a
malformed value ("2025/01/06", "2025-1-6", "2025-02-30") is no date and is reported
(date_problems), never guessed. A partial date ("2025", "2025-03") means its first day:
durations then never overstate care. Dates written in prose are fhir_mappings.text.dates'."""
from __future__ import annotations

import calendar
import re
from datetime import date
from functools import lru_cache

_FHIR_DATE = re.compile(
    r"(?P<y>[0-9]{4})(?:-(?P<m>0[1-9]|1[0-2])(?:-(?P<d>0[1-9]|[12][0-9]|3[01])"
    r"(?:T(?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]+)?(?:Z|[+-](?:0[0-9]|1[0-3]):[0-5][0-9]|14:00)"
    r"|T(?:[01][0-9]|2[0-3]):[0-5][0-9](?::(?:[0-5][0-9]|60)(?:\.[0-9]+)?)?)?)?)?")
# (The last alternative accepts a time without a zone: EHRs send it, and the day is still exact.)
DATE_FIELDS = ("performedDateTime", "effectiveDateTime", "onsetDateTime", "occurrenceDateTime", "issued",
               "recordedDate", "authoredOn", "date")
PERIOD_FIELDS = ("performedPeriod", "effectivePeriod", "onsetPeriod", "occurrencePeriod")


def parse_date(value) -> date | None:
    return _parse(value) if isinstance(value, str) else None


@lru_cache(maxsize=8192)
def _parse(value: str) -> date | None:
    """Cached: a chart repeats its dates thousands of times (fhir_mappings.build empties it per chart)."""
    match = _FHIR_DATE.fullmatch(value.strip())
    if match is None:
        return None
    try:
        return date(int(match["y"]), int(match["m"] or 1), int(match["d"] or 1))
    except ValueError:
        return None       # 2025-02-30


def date_precision(value: str) -> str | None:
    """year, month or day: how much of a FHIR date was written (None: malformed)."""
    if parse_date(value) is None:
        return None
    return ("year", "month", "day")[min(2, value.strip().count("-"))] if "T" not in value else "day"


_ALL_DATE_FIELDS = frozenset(DATE_FIELDS + PERIOD_FIELDS)


def date_problems(resource: dict) -> list[str]:
    """Every date field of the resource that is present but not a FHIR date, as a sentence."""
    problems = []
    for field in resource.keys() & _ALL_DATE_FIELDS:     # a set operation: most resources hold one or two
        value = resource[field]
        if field in PERIOD_FIELDS:
            if isinstance(value, dict):
                for end in ("start", "end"):
                    day = value.get(end)
                    if day is not None and (not isinstance(day, str) or _parse(day) is None):
                        problems.append(_problem(resource, f"{field}.{end}", day))
        elif value is not None and (not isinstance(value, str) or _parse(value) is None):
            problems.append(_problem(resource, field, value))
    return problems


def _problem(resource: dict, field: str, value) -> str:
    return (f"{resource.get('resourceType', 'Resource')}/{resource.get('id', '?')} {field} {value!r} is not a "
            "FHIR date; the date was not read")


def add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def months_between(start: date, end: date) -> int:
    """Whole calendar months from start to end (3 for 2025-01-15 -> 2025-04-15)."""
    months = (end.year - start.year) * 12 + end.month - start.month
    if end.day < start.day:
        months -= 1
    return max(months, 0)
