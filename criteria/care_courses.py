"""Dated care records -> courses: records joined while the gap between them stays short, each
record covering its own days (a prescription its supply), counted only inside a recent window.

The latest course is presumed to go on to the order (the patient is still being treated when the
surgeon orders surgery: reviewers count "treatment began 12/2024" to the order, seed 001), but only
while the order comes within max_gap_days of its last covered day, or while it holds care still given
(an active prescription with no end: seeds 000 and 002 count "meloxicam since 2024-09" to the order):
the same gap that ends a course between records ends it before the order (seven weeks of PT that
stopped ten months ago is seven weeks, not ten months). Any other course, ended by a long gap, counts
only its own days."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from fhir_mappings.facts import CareEpisode


@dataclass(frozen=True)
class Course:
    records: tuple[CareEpisode, ...]
    start: date
    last: date                 # the last day a record covers
    to_order: bool             # the latest course, not ended by a gap before the order: counted to the order's date

    def end(self, as_of: date) -> date:
        return as_of if self.to_order else self.last

    def days(self, as_of: date) -> int:
        return (self.end(as_of) - self.start).days

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(sorted({r.kind for r in self.records}))


def covered_until(record: CareEpisode, cover_days: dict[str, int]) -> date:
    """The last day a record covers: its end, or for a prescription or an injection on one day, the
    days it stands for (a month's supply, an injection's effect)."""
    end = record.end or record.start
    if not record.period and record.kind in cover_days:
        end = max(end, record.start + timedelta(days=cover_days[record.kind]))
    return end


def courses(records, as_of: date, window_start: date, max_gap_days: int, cover_days: dict[str, int]) -> list[Course]:
    """Courses of the dated records that reach into [window_start, as_of]; a course starting before
    the window counts from the window's start. The latest one counts to as_of when as_of is at most
    max_gap_days after its last covered day, or when it holds a record still given (ongoing care), else
    to that day."""
    dated = sorted((r for r in records if r.start and r.start <= as_of), key=lambda r: r.start)
    found: list[list] = []
    for record in dated:
        until = min(covered_until(record, cover_days), as_of)
        if found and (record.start - found[-1][2]).days <= max_gap_days:
            found[-1][0].append(record)
            found[-1][2] = max(found[-1][2], until)
        else:
            found.append([[record], record.start, until])
    out = []
    for n, (records_, start, last) in enumerate(found):
        if last < window_start:
            continue
        # The gap that would end a course between two records ends it before the order too, unless the
        # course holds care still given (an active prescription: the medication list says so).
        ongoing = n == len(found) - 1 and ((as_of - last).days <= max_gap_days or any(r.ongoing for r in records_))
        out.append(Course(tuple(records_), max(start, window_start), last, ongoing))
    return out
