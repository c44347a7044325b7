"""The readers' cheap gate: where in a text the literals their patterns need stand.

Every reader pattern is registered once (`gated`); terminology.phrases.required_literals reads off
it the lower-cased strings one of which every match contains. One Aho-Corasick automaton holds the
literals of all registered patterns, so one pass over a text (Document.found_in) tells each reader
which of its patterns could match in a sentence; a reader runs a pattern only there. The result of
a gated pattern is the pattern's own: the gate is a superset test (a pattern it lets through may
still not match) and never changes an answer (tests/test_text_gate.py holds it to the patterns).

Why: a note of 10,000 resources' chart is read by some sixty patterns; running each over every
sentence cost ~2 s of the ~4 s a documents-heavy chart took. The literals are found in ~6 µs a text.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import ahocorasick

from terminology.phrases import gate_literals, literal_risks
from terminology.valuesets import normalize_text


@dataclass(frozen=True)
class Gated:
    """A pattern with its gate id. search/finditer give the pattern's own answer over text, run only
    where the gate allows: found is Document.found_in(lo, hi) for text = the document's text[lo:hi].
    A pattern every match of which starts with one of its literals is run from the first of them."""
    pattern: re.Pattern[str]
    id: int
    anchored: bool

    def _start(self, found, lo: int) -> int | None:
        first = found.get(self.id)
        if first is None:
            return None
        return first - lo if self.anchored else 0

    def search(self, found, text: str, lo: int = 0):
        start = self._start(found, lo)
        return None if start is None else self.pattern.search(text, start)

    def finditer(self, found, text: str, lo: int = 0):
        start = self._start(found, lo)
        return iter(()) if start is None else self.pattern.finditer(text, start)


class _Literals:
    def __init__(self) -> None:
        self._needs: list[frozenset[str] | None] = []
        self._by_pattern: dict[tuple[str, int], int] = {}
        self._automaton = None
        self.always: frozenset[int] = frozenset()
        self.risky: re.Pattern[str] | None = None
        self.version = 0          # how many patterns the automaton holds: a scan made before is stale

    def register(self, pattern: re.Pattern[str]) -> tuple[int, bool]:
        key = (pattern.pattern, pattern.flags)
        if key not in self._by_pattern:
            literals, anchored = gate_literals(pattern)
            if literals is not None and min(map(len, literals)) < 2:
                # A one-character literal ("t" of "lt", "/") stands in nearly every sentence: such a
                # gate rules nothing out and its hits were half of all hits scanned. Ungated instead.
                literals = None
            # The text is folded before it is lower-cased, so are the literals (same length, same places).
            self._needs.append(None if literals is None else frozenset(normalize_text(s).lower() for s in literals))
            self._by_pattern[key] = (len(self._needs) - 1, anchored and literals is not None)
            self._automaton = None
            self.version = len(self._needs)
        return self._by_pattern[key]

    def _build(self):
        automaton = ahocorasick.Automaton()
        owners: dict[str, list[int]] = {}
        for index, literals in enumerate(self._needs):
            for literal in literals or ():
                owners.setdefault(literal, []).append(index)
        for literal, ids in owners.items():
            automaton.add_word(literal, (len(literal), tuple(ids)))
        automaton.make_automaton()
        self.always = frozenset(i for i, literals in enumerate(self._needs) if literals is None)
        risks = literal_risks(owners)
        self.risky = re.compile("[" + "".join(re.escape(c) for c in sorted(risks)) + "]")
        self._automaton = automaton
        return automaton

    def scan(self, folded: str) -> tuple[tuple[int, int, tuple[int, ...]], ...] | None:
        """(start, end, pattern ids) of every literal in the folded text; None: the gate cannot be used."""
        automaton = self._automaton if self._automaton is not None else self._build()
        if not self._needs or len(automaton) == 0:
            return ()
        if not folded.isascii() and self.risky.search(folded):
            return None
        hits = [(end + 1 - size, end + 1, ids) for end, (size, ids) in automaton.iter(folded.lower())]
        hits.sort()
        return tuple(hits)


LITERALS = _Literals()


def gated(pattern: re.Pattern[str] | str, flags: int = 0) -> Gated:
    compiled = pattern if isinstance(pattern, re.Pattern) else re.compile(pattern, flags)
    return Gated(compiled, *LITERALS.register(compiled))


class Everything:
    """The gate when it cannot be used: every pattern may match, from the start."""

    def __contains__(self, item) -> bool:
        return True

    def get(self, item, default=None):
        return 0


EVERYTHING = Everything()
