"""Facts looked up by (kind, interspace), built once per evaluation."""
from __future__ import annotations

from collections import defaultdict

from fhir_mappings.facts import Facts, LevelFact, Measurement
from terminology.levels import Interspace

from .spec import RuleSpec

STENOSIS_GRADES = ("mild", "mild-moderate", "moderate", "moderate-severe", "severe")


class LevelIndex:
    def __init__(self, facts: Facts):
        self._facts: dict[tuple[str, Interspace | None], list[LevelFact]] = defaultdict(list)
        self._orders = frozenset(o.reference for o in facts.orders)
        for fact in facts.level_facts:
            self._facts[(fact.kind, fact.interspace)].append(fact)
        self._measures: dict[tuple[str, Interspace], list[Measurement]] = defaultdict(list)
        for m in facts.measurements:
            for level in m.levels:
                for space in level.interspaces():
                    self._measures[(m.name, space)].append(m)

    def present(self, kind: str, space: Interspace | None) -> list[LevelFact]:
        return [f for f in self._facts.get((kind, space), ()) if f.present]

    def from_chart(self, kind: str, space: Interspace | None) -> list[LevelFact]:
        """Present facts the chart documents, not what the draft order itself writes."""
        return [f for f in self.present(kind, space) if f.evidence.reference not in self._orders]

    def absent(self, kind: str, space: Interspace | None) -> list[LevelFact]:
        return [f for f in self._facts.get((kind, space), ()) if not f.present]

    def measured(self, name: str, space: Interspace) -> list[Measurement]:
        return self._measures.get((name, space), [])

    def spaces(self, kind: str) -> set[Interspace]:
        return {space for (k, space), facts in self._facts.items()
                if k == kind and space is not None and any(f.present for f in facts)}


def grade_rank(severity: str | None) -> int | None:
    return STENOSIS_GRADES.index(severity) if severity in STENOSIS_GRADES else None



def qualifying_stenosis(index: LevelIndex, space: Interspace, rule: RuleSpec) -> list[LevelFact]:
    """Stenosis at space that needs decompression under rule (decompression_levels): graded at least
    min_stenosis_severity, or ungraded where the profile counts an ungraded mention; the order's own
    words are no imaging."""
    minimum = STENOSIS_GRADES.index(rule["min_stenosis_severity"])
    found = index.from_chart("stenosis", space)
    return [f for f in found if (f.severity is None and rule["ungraded_stenosis_counts"])
            or (grade_rank(f.severity) is not None and grade_rank(f.severity) >= minimum)]
