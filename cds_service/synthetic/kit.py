"""What one synthetic instance is built with: its ids, its patient, dates counted back from
the order, and the date shift that moves the whole chart in time."""
from __future__ import annotations

import random
import re
from datetime import date, timedelta

from . import builders as fhir
from .builders import IdFactory

# Every scenario is written against this order date, then moved by one random shift.
BASE_AUTHORED = date(2025, 6, 20)
LUMBAR_LEVELS = ("L3-L4", "L4-L5", "L5-S1")
_DATE_FIELDS = {"authoredOn", "onsetDateTime", "performedDateTime", "effectiveDateTime", "issued", "recordedDate",
                "birthDate", "occurrenceDateTime", "start", "end"}
_ISO_DAY = re.compile(r"^(\d{4}-\d{2}-\d{2})")


def short_level(level: str) -> str:
    """'L4-L5' as radiologists write it, 'L4-5' (L5-S1 stays)."""
    upper, lower = level.split("-")
    return f"{upper}-{lower[1:]}" if upper[0] == lower[0] else level


def neighbours(level: str) -> list[str]:
    """Ranges one interspace wider than level, within L2-S1."""
    order = ("L2", "L3", "L4", "L5", "S1")
    upper, lower = (order.index(v) for v in level.split("-"))
    wider = []
    if upper > 0:
        wider.append(f"{order[upper - 1]}-{order[lower]}")
    if lower < len(order) - 1:
        wider.append(f"{order[upper]}-{order[lower + 1]}")
    return wider


def shift_dates(value, days: int):
    """A copy with every date field moved by days; durations between dates stay the same."""
    if isinstance(value, list):
        return [shift_dates(v, days) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        match = _ISO_DAY.match(item) if key in _DATE_FIELDS and isinstance(item, str) else None
        if match:
            moved = date.fromisoformat(match.group(1)) + timedelta(days=days)
            out[key] = moved.isoformat() + item[match.end():]
        else:
            out[key] = shift_dates(item, days)
    return out


class Kit:
    """Builders bound to one instance's patient and ids, with dates counted back from the order."""

    def __init__(self, rng: random.Random, index: int):
        self.rng = rng
        self.ids = IdFactory.seeded(rng)
        self.patient_id = f"pat-{self.ids.namespace}-{index}"
        self.authored = BASE_AUTHORED.isoformat()
        self._mine = {"patient_id": self.patient_id, "ids": self.ids}

    def ago(self, days: int = 0, weeks: int = 0) -> str:
        return (BASE_AUTHORED - timedelta(days=days, weeks=weeks)).isoformat()

    def level(self) -> str:
        return self.rng.choice(LUMBAR_LEVELS)

    def patient(self) -> dict:
        # Under 65: the age-dependent rules (inpatient from 75, age-adjusted PI-LL) then leave each
        # scenario about what it is named for.
        age = self.rng.randint(35, 64)
        born = date(BASE_AUTHORED.year - age, 1, 1) + timedelta(days=self.rng.randint(0, 364))
        gender = self.rng.choice(("female", "male"))
        given = self.rng.choice(("Alex", "Sam", "Robin", "Jordan", "Casey", "Morgan"))
        return fhir.patient(self.patient_id, birth_date=born.isoformat(), gender=gender, given=given)

    def coverage(self) -> dict:
        return fhir.coverage(self.patient_id, self.ids.named("cov"))

    def order(self, text: str, cpts=(), body_site: str | None = None, note: str | None = None) -> dict:
        return fhir.service_request(text, cpts=cpts, body_site=body_site, authored=self.authored, note=note,
                                    **self._mine)

    def condition(self, text: str, icd10: str | None = None, onset: str | None = None, note: str | None = None) -> dict:
        return fhir.condition(text, icd10, onset=onset, note=note, **self._mine)

    def procedure(self, text: str, performed: str | None = None, cpt: str | None = None,
                  note: str | None = None) -> dict:
        return fhir.procedure(text, performed, cpt, note=note, **self._mine)

    def pt_visits(self, first_days_ago: int, count: int) -> list[dict]:
        return fhir.pt_visits(BASE_AUTHORED - timedelta(days=first_days_ago), count, **self._mine)

    def medication(self, text: str, authored: str) -> dict:
        return fhir.medication(text, authored, **self._mine)

    def report(self, text: str, conclusion: str, issued: str) -> dict:
        return fhir.report(text, conclusion, issued, **self._mine)

    def observation(self, text: str, value: float | None = None, unit: str | None = None,
                    effective: str | None = None, value_string: str | None = None, loinc: str | None = None) -> dict:
        return fhir.observation(text, value, unit, effective, value_string, loinc=loinc, **self._mine)

    # Charts satisfy physical therapy and conservative care unless a scenario is about them.
    def medication_trial(self) -> dict:
        drug = self.rng.choice(("meloxicam 15 mg tablet", "naproxen 500 mg tablet", "gabapentin 300 mg capsule"))
        # About 7 months before: within six months of the PT course, so one continuous course of care.
        return self.medication(drug, self.ago(days=self.rng.randint(200, 240)))

    def pt_course(self, visits: int = 8) -> list[dict]:
        """Weekly visits, the last one about a month before the order."""
        last = self.rng.randint(25, 35)
        return self.pt_visits(last + 7 * (visits - 1), visits)

    def well_treated(self) -> list[dict]:
        return [self.medication_trial(), *self.pt_course()]
