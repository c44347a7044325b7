"""Conservative care written in prose, read into the same shape the coded forms give:
"attended 12 PT visits from 1/6/2025 to 3/28/2025" is a course from 2025-01-06 to 2025-03-28,
"completed 8 weeks of formal physical therapy ending March 2025" a course of 8 weeks ending in
March 2025, "s/p L4-5 ESI on 2/3/2025" one injection on 2025-02-03.

A care mention takes the dates of its own clause: two dates joined by from/between .. to/through
are its start and end; one date with a duration ("8 weeks", "3 months") is the end when
introduced by ending/through/until/in, otherwise the start; one date alone is the day it happened.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from fhir_mappings.dates import add_months

from .dates import ProseDate, find_dates

_RANGE_JOIN = re.compile(r"^\s*(?:-|–|to|through|thru|until|till|and)\s*$", re.IGNORECASE)
_ENDS = re.compile(r"(?:ending|ended|end(?:ing)?\s+(?:in|on)|through|thru|until|till|completed\s+(?:in|on)|"
                   r"concluding|discharged(?:\s+(?:in|on))?|last\s+visit(?:\s+(?:in|on))?)\s*(?:in|on)?\s*$",
                   re.IGNORECASE)
_DURATION = re.compile(
    r"(?<![\w.])(?P<n>\d+(?:\.\d+)?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"
    r"(?:\s*-\s*|\s+)(?P<unit>weeks?|wks?|months?|mos?)\b", re.IGNORECASE)
_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
          "ten": 10, "eleven": 11, "twelve": 12}
_PRECISION = ("year", "month", "day")


@dataclass(frozen=True)
class ProseCourse:
    start: date
    end: date
    period: bool        # a course from start to end, not one visit
    precision: str      # the least precise date written
    words: str          # the dates as written


_OF_CARE = re.compile(r"\s+of\s+(?:[a-z/-]+\s+){0,3}$", re.IGNORECASE)
# Between the care and its duration only the visits' rhythm ("PT 2x/week for 8 weeks", "PT (twice weekly) x 6
# weeks"), never other words: "ESI with relief lasting 6 weeks" is the relief's time, not the care's.
# Matched with fullmatch from the mention's end (pos), so no "^": it would only match at the text's start.
_RHYTHM = r"\(?(?:\d+\s*x(?:\s*/\s*(?:week|wk|day|d))?|\d+\s*/\s*(?:week|wk)|twice|once|three\s+times|times|per|a|weekly|daily|week|wk)\)?"
_FOR = re.compile(rf"\s*(?:{_RHYTHM}\s+){{0,3}}?(?:for|x|×|over)\s+", re.IGNORECASE)


def _duration(text: str, lo: int, hi: int, mention: tuple[int, int]) -> tuple[float, str] | None:
    """The care's own duration: "8 weeks of (formal) PT" or "PT (2x/week) for 8 weeks", never another
    span of time in the sentence ("ESI with 2 weeks of relief")."""
    match = next((m for m in _DURATION.finditer(text, lo, hi)
                  if (m.end() <= mention[0] and _OF_CARE.fullmatch(text, m.end(), mention[0]))
                  or (mention[1] <= m.start() and _FOR.fullmatch(text, mention[1], m.start()))), None)
    if not match:
        return None
    number = match["n"].lower()
    count = float(_WORDS.get(number) or number)
    return count, "weeks" if match["unit"].lower().startswith("w") else "months"


def _shift(day: date, duration: tuple[float, str], sign: int) -> date:
    count, unit = duration
    if unit == "weeks":
        return day + timedelta(weeks=sign * count)
    return add_months(day, sign * int(count))


def _least(*dates: ProseDate) -> str:
    return min((d.precision for d in dates), key=_PRECISION.index)


def course_in(text: str, lo: int, hi: int, mention: tuple[int, int]) -> ProseCourse | None:
    """The dates of the care mentioned at `mention` in text[lo:hi] (its sentence), if it gives any."""
    dates = find_dates(text, lo, hi)
    if not dates:
        return None
    for first, second in zip(dates, dates[1:]):
        if _RANGE_JOIN.match(text[first.end:second.start]) and first.day <= second.day:
            return ProseCourse(first.day, second.day, True, _least(first, second), f"{first.text} to {second.text}")
    only = dates[0]
    duration = _duration(text, lo, hi, mention)
    if duration is not None:
        if _ENDS.search(text[lo:only.start]):
            return ProseCourse(_shift(only.day, duration, -1), only.day, True, only.precision,
                               f"{duration[0]:g} {duration[1]} ending {only.text}")
        return ProseCourse(only.day, _shift(only.day, duration, +1), True, only.precision,
                           f"{duration[0]:g} {duration[1]} from {only.text}")
    return ProseCourse(only.day, only.day, False, only.precision, only.text)
