"""The one phrase compiler: every vocabulary list (value sets, care, procedures, measurements,
assertion triggers) becomes a regex by the same word-boundary and hyphen rules.

* A phrase matches only as whole words: no letter or digit may touch it on either side, so
  "pt" never matches inside "opt" and "non" never inside "nonunion".
* Between two words of a phrase, any run of whitespace or hyphens matches a space or a hyphen
  written in the phrase: "flexion extension" and "flexion-extension" read alike, and a line
  break inside a report sentence splits nothing. Words are never joined ("nonunion" is its own
  phrase), so the pre-filter's tokens (valuesets.PhraseGate) stay a superset.
* Longest phrase first, so the alternation reports the longest hit at a position.
"""
from __future__ import annotations

import re
from typing import Iterable

_WORD_GAP = re.compile(r"[\s\-]+")
_JOIN = r"[\s\-]+"


def phrase_regex(phrase: str) -> str:
    """One phrase as a regex body (no bounds)."""
    return _JOIN.join(re.escape(word) for word in _WORD_GAP.split(phrase.strip()) if word)


def compile_phrases(phrases: Iterable[str], *, case_sensitive: bool = False,
                    regexes: Iterable[str] = ()) -> re.Pattern[str] | None:
    """One bounded alternation: hand-written regexes first, then phrases longest first."""
    unique = {" ".join(p.split()) if case_sensitive else " ".join(p.lower().split()) for p in phrases if p and p.strip()}
    ordered = sorted(unique, key=lambda p: (-len(p), p))
    alternatives = list(regexes) + [phrase_regex(p) for p in ordered]
    if not alternatives:
        return None
    return re.compile(rf"(?<![A-Za-z0-9])(?:{'|'.join(alternatives)})(?![A-Za-z0-9])",
                      0 if case_sensitive else re.IGNORECASE)


def regex_source(spec) -> str:
    """A data file's regex as one pattern: a string as written, or {before, any_of, after}: the
    alternatives one per line (each may be a list of named groups' alternatives under `groups`)."""
    if isinstance(spec, str):
        return spec
    if "groups" in spec:
        body = "|".join(f"(?P<{name}>{'|'.join(alts)})" for name, alts in spec["groups"].items())
    else:
        body = "|".join(spec["any_of"])
    return f"{spec.get('before', '')}(?:{body}){spec.get('after', '')}"


def compile_regex(spec, *, case_sensitive: bool = False) -> re.Pattern[str]:
    """A hand-written regex from a data file (regex_source), compiled with the phrase lists' case rule."""
    return re.compile(regex_source(spec), 0 if case_sensitive else re.IGNORECASE)


# --- literals every match holds (the readers' cheap gates) -------------------------------------------
#
# required_literals(pattern): lower-cased strings one of which every match of the pattern contains,
# read off the pattern's parse tree (a trigram-index style prefilter). A text whose lower-cased form
# holds none of them cannot match, so a reader may skip the pattern there: a superset test, never a
# match. None: the pattern requires no literal (it is always run).

from re import _constants as _sre  # noqa: E402  (the parse tree's opcodes)
from re import _parser  # noqa: E402

_MAX_SET = 64        # the most strings an exact set may hold before it is given up


class _Info:
    """What a part of a pattern matches: `exact`, every string it can match (None: unknown); `need`,
    literal sets one of which every match contains; `prefix`, strings one of which every match starts
    with (None: unknown)."""
    __slots__ = ("exact", "need", "prefix")

    def __init__(self, exact: frozenset[str] | None, need: tuple[frozenset[str], ...] = (),
                 prefix: frozenset[str] | None = None):
        self.exact = exact
        self.need = need
        self.prefix = exact if exact is not None else prefix


_UNKNOWN = _Info(None)
_EMPTY = _Info(frozenset({""}))


def _char(code: int) -> frozenset[str] | None:
    low = chr(code).lower()
    return frozenset({low}) if len(low) == 1 else None


def _charset(items) -> frozenset[str] | None:
    chars: set[str] = set()
    for op, arg in items:
        if op is _sre.LITERAL:
            one = _char(arg)
            if one is None:
                return None
            chars |= one
        elif op is _sre.RANGE and arg[1] - arg[0] < _MAX_SET:
            for code in range(arg[0], arg[1] + 1):
                one = _char(code)
                if one is None:
                    return None
                chars |= one
        else:                       # a negated set, a category (\w, \d), a wide range
            return None
        if len(chars) > _MAX_SET:
            return None
    return frozenset(chars)


def _item(op, arg) -> _Info:
    if op is _sre.LITERAL:
        exact = _char(arg)
        return _Info(exact) if exact else _UNKNOWN
    if op is _sre.IN:
        exact = _charset(arg)
        return _Info(exact) if exact else _UNKNOWN
    if op in (_sre.AT, _sre.ASSERT, _sre.ASSERT_NOT):
        return _EMPTY               # zero width
    if op is _sre.SUBPATTERN:
        return _sequence(arg[-1])
    if op is getattr(_sre, "ATOMIC_GROUP", None):
        return _sequence(arg)
    if op is _sre.BRANCH:
        alternatives = [_sequence(alt) for alt in arg[1]]
        if all(a.exact is not None for a in alternatives):
            union = frozenset().union(*(a.exact for a in alternatives))
            if len(union) <= _MAX_SET:
                return _Info(union)
        needs = [_best(a) for a in alternatives]
        prefixes = [a.prefix for a in alternatives]
        prefix = None
        if all(p is not None and "" not in p for p in prefixes):
            prefix = frozenset().union(*prefixes)
        if any(n is None for n in needs):
            return _Info(None, (), prefix)
        return _Info(None, (frozenset().union(*needs),), prefix)
    if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, getattr(_sre, "POSSESSIVE_REPEAT", None)):
        low, high, body = arg
        inner = _sequence(body)
        if low == high == 1:
            return inner
        if low == 0:
            return _UNKNOWN         # may match nothing
        best = _best(inner)
        return _Info(None, (best,) if best else (), inner.prefix)
    return _UNKNOWN                 # any character, a back reference, ...


def _cross(a: frozenset[str], b: frozenset[str]) -> frozenset[str] | None:
    return frozenset(x + y for x in a for y in b) if len(a) * len(b) <= _MAX_SET else None


def _sequence(items) -> _Info:
    run: frozenset[str] = frozenset({""})     # every string the known text since the last unknown item can be
    needs: list[frozenset[str]] = []
    prefix: frozenset[str] | None = None      # how every match starts, once known
    leading = True
    for op, arg in items:
        info = _item(op, arg)
        needs += info.need
        joined = _cross(run, info.exact) if info.exact is not None else None
        if joined is not None:
            run = joined
            continue
        # The known run and how this item starts are one piece of every match.
        head = _cross(run, info.prefix) if info.prefix is not None else None
        if head is not None and "" not in head:
            needs.append(head)
        elif "" not in run:
            needs.append(run)
        if leading:
            prefix = head if head is not None else (run if "" not in run else None)
            leading = False
        run = info.exact if info.exact is not None else frozenset({""})
    if leading:
        return _Info(run)
    if "" not in run:
        needs.append(run)
    return _Info(None, tuple(needs), prefix)


def _score(literals: frozenset[str]):
    shortest = min(len(s) for s in literals)
    return (min(shortest, 4), any(not s.isalnum() for s in literals if len(s) == shortest), -len(literals))


def _best(info: _Info) -> frozenset[str] | None:
    candidates = list(info.need)
    if info.exact is not None and "" not in info.exact:
        candidates.append(info.exact)
    return max(candidates, key=_score) if candidates else None


def required_literals(pattern: re.Pattern[str] | str) -> frozenset[str] | None:
    """Lower-cased strings one of which every match of pattern contains; None when it needs none.
    (Lower-casing both sides holds for IGNORECASE patterns and case-sensitive ones alike, on text
    without the characters of literal_risks.)"""
    return gate_literals(pattern)[0]


def gate_literals(pattern: re.Pattern[str] | str) -> tuple[frozenset[str] | None, bool]:
    """required_literals, and whether every match starts with one of them (then no match starts
    before the first of them in a text). The strings every match starts with are taken when they
    tell about as much as the best strings anywhere in a match."""
    compiled = pattern if isinstance(pattern, re.Pattern) else re.compile(pattern)
    info = _sequence(_parser.parse(compiled.pattern, compiled.flags))
    best, prefix = _best(info), info.prefix
    if prefix is not None and "" not in prefix and (best is None or _score(prefix) >= _score(best)
                                                   or min(map(len, prefix)) >= 3):
        return prefix, True
    return best, False


def literal_risks(literals) -> frozenset[str]:
    """Characters of a text for which `text.lower()` may not show a literal that an IGNORECASE pattern
    finds: "İ" (lower-cased into two characters) and the extra case partners re knows ("ſ" for s,
    "ı" for i). A text holding one is read without the literal gate."""
    from re import _casefix
    risky = {"\u0130"}
    for char in {c for literal in literals for c in literal}:
        for partner in _casefix._EXTRA_CASES.get(ord(char), ()):
            risky |= {chr(partner), chr(partner).upper()}
    return frozenset(risky)

