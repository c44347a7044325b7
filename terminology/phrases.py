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
