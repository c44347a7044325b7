"""Where each piece of evidence behind the findings was read: one row per Evidence a rule cited,
with the resource it came from, its date, the words quoted, what the rules counted it as and which
rules used it. The sandbox shows these rows beside the cards; cards and the letter keep their own
short evidence lines (cards/evidence.py)."""
from __future__ import annotations

from functools import cache
from importlib import resources

import yaml

from criteria.finding import Point

from . import wording


@cache
def _words() -> dict:
    return yaml.safe_load(resources.files(__package__).joinpath("text", "evidence_read.yaml").read_text("utf-8"))


def panel_words() -> dict:
    """The panel's headings and phrases, for the sandbox page."""
    return dict(_words()["panel"])


def _cited(point: Point, level: str | None = None):
    """(evidence, what it was counted as) for the point and the points inside its values; an inner
    point is said with the level its outer point names."""
    said = wording.say(point)
    if level is not None:
        said = wording.render(_words()["point_at_level"], point=said, level=level)
    for evidence in point.evidence:
        yield evidence, said
    level = point.values.get("level") if isinstance(point.values.get("level"), str) else level
    for value in point.values.values():
        inner = value if isinstance(value, (tuple, list)) else (value,)
        for item in inner:
            if isinstance(item, Point):
                yield from _cited(item, level)


def evidence_rows(findings) -> list[dict]:
    """Every Evidence the findings cite, once, dated ones first in date order."""
    rows: dict = {}

    def row(evidence) -> dict:
        if evidence not in rows:
            rows[evidence] = {
                "reference": evidence.reference, "resource_type": evidence.reference.split("/", 1)[0],
                "date": evidence.day.isoformat() if evidence.day else None,
                "what": " ".join(evidence.description.split()), "quote": evidence.quote, "source": evidence.source,
                "counted_as": [], "criteria": []}
        return rows[evidence]

    for finding in findings:
        used = {"id": finding.criterion, "title": finding.rule.title, "status": finding.status,
                "topic": finding.card_topic}
        cited = [(e, None) for e in finding.evidence]
        cited += [pair for p in finding.counted + finding.missing for pair in _cited(p)]
        for evidence, said in cited:
            target = row(evidence)
            if said and said not in target["counted_as"]:
                target["counted_as"].append(said)
            if used not in target["criteria"]:
                target["criteria"].append(used)
    return sorted(rows.values(), key=lambda r: (r["date"] is None, r["date"] or "", r["reference"]))
