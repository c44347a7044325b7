"""Dates as clinicians write them in prose, with their precision kept.

"1/6/2025", "01/06/25", "2025-01-06" and "March 3, 2025" are days; "12/2024", "March 2025",
"Mar. 2025" are months; "in 2005" / "(2005)" are years. US order (month/day) throughout, as US
charts write it. A month or year means its first day, so a duration read from it never
overstates care; `precision` says how much was written.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

_MONTHS = {name: index for index, names in enumerate(
    (("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",), ("june", "jun"),
     ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"), ("october", "oct"), ("november", "nov"),
     ("december", "dec")), start=1) for name in names}
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DATE = re.compile(
    r"(?<![\w/.-])(?:"
    r"(?P<iy>(?:19|20)\d\d)-(?P<im>\d\d)-(?P<id>\d\d)"
    r"|(?P<m>1[0-2]|0?[1-9])[/-](?P<d>3[01]|[12]\d|0?[1-9])[/-](?P<y>(?:19|20)\d\d|\d\d)"
    r"|(?P<mm>1[0-2]|0?[1-9])/(?P<my>(?:19|20)\d\d)"
    rf"|(?P<wm>{_MONTH})\.?(?:\s+(?P<wd>3[01]|[12]\d|0?[1-9])(?:st|nd|rd|th)?,?)?\s+(?P<wy>(?:19|20)\d\d)"
    rf"|(?P<dd>3[01]|[12]\d|0?[1-9])\s+(?P<dm>{_MONTH})\.?\s+(?P<dy>(?:19|20)\d\d)"
    r"|(?:(?<=\()|(?<=\bin\s)|(?<=\bsince\s))(?P<year>(?:19|20)\d\d)(?=\)|\b)"
    r")(?![\w/])", re.IGNORECASE)


@dataclass(frozen=True)
class ProseDate:
    day: date
    precision: str      # day, month, year
    start: int
    end: int
    text: str


def _year(text: str) -> int:
    year = int(text)
    return year + (2000 if year < 50 else 1900) if year < 100 else year


def _read(match: re.Match) -> tuple[date, str] | None:
    g = match.groupdict()
    try:
        if g["iy"]:
            return date(int(g["iy"]), int(g["im"]), int(g["id"])), "day"
        if g["y"]:
            return date(_year(g["y"]), int(g["m"]), int(g["d"])), "day"
        if g["my"]:
            return date(int(g["my"]), int(g["mm"]), 1), "month"
        if g["wy"]:
            month = _MONTHS[g["wm"].lower()]
            if g["wd"]:
                return date(int(g["wy"]), month, int(g["wd"])), "day"
            return date(int(g["wy"]), month, 1), "month"
        if g["dy"]:
            return date(int(g["dy"]), _MONTHS[g["dm"].lower()], int(g["dd"])), "day"
        return date(int(g["year"]), 1, 1), "year"
    except ValueError:
        return None      # "2/30/2025": no such day; not guessed


_YEARISH = re.compile(r"\d\d")     # every form above writes a year of at least two digits


def find_dates(text: str, lo: int = 0, hi: int | None = None) -> list[ProseDate]:
    hi = len(text) if hi is None else hi
    if not _YEARISH.search(text, lo, hi):
        return []
    found = []
    for match in _DATE.finditer(text, lo, hi):
        read = _read(match)
        if read is not None:
            found.append(ProseDate(read[0], read[1], match.start(), match.end(), match.group()))
    return found
