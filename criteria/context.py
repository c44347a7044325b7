"""What every criterion of one evaluation shares, built once per (Facts, profile): the level
index, the deformity assessment and the procedure classes of each order (the enum in
terminology.procedure_classes). Criteria ask `context_of(facts, profile)` instead of rebuilding
them; the engine builds it before the first criterion runs, and it is dropped with the Facts."""
from __future__ import annotations

import weakref
from typing import TYPE_CHECKING
from functools import cached_property

from fhir_mappings.facts import Facts, Order, OrderedProcedure
from terminology import cpt
from terminology.procedure_classes import DISCECTOMY, ProcedureClass

from .level_index import LevelIndex
from .spec import Profile

if TYPE_CHECKING:
    from .deformity import DeformityAssessment


class EvaluationContext:
    def __init__(self, facts: Facts, profile: Profile):
        # A weak reference: the cache below must not keep a request's facts (clinical data) alive.
        self._facts = weakref.ref(facts)
        self.profile = profile

    @property
    def facts(self) -> Facts:
        facts = self._facts()
        if facts is None:
            raise RuntimeError("the evaluation context outlived its facts")
        return facts

    @cached_property
    def index(self) -> LevelIndex:
        return LevelIndex(self.facts)

    @cached_property
    def deformity(self) -> "DeformityAssessment":
        from .deformity import assess   # deformity.py asks this module for its context
        return assess(self.facts, self.profile.rules["deformity"])

    def classes(self, order: Order) -> frozenset[ProcedureClass]:
        return frozenset(ProcedureClass(c) for c in order.classes)

    @staticmethod
    def is_discectomy(procedure: OrderedProcedure) -> bool:
        """A decompression whose every code is a discectomy (63030, 63035, 63042, 63043): judged by a
        disc herniation with root compression, not by stenosis."""
        return procedure.procedure_class == ProcedureClass.DECOMPRESSION and cpt.judged_as(procedure.codes, DISCECTOMY)

    def discectomies(self, order: Order) -> tuple[OrderedProcedure, ...]:
        return tuple(p for p in order.procedures if self.is_discectomy(p))


# (id(facts), profile id) -> context; an entry goes when its Facts is collected.
_CONTEXTS: dict[tuple[int, str], EvaluationContext] = {}


def context_of(facts: Facts, profile: Profile) -> EvaluationContext:
    key = (id(facts), profile.id)
    found = _CONTEXTS.get(key)
    if found is not None and found.facts is facts and found.profile is profile:
        return found
    made = _CONTEXTS[key] = EvaluationContext(facts, profile)
    weakref.finalize(facts, _CONTEXTS.pop, key, None)
    return made
