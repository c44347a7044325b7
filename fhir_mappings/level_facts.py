"""Conditions, reports, observations, procedures (and the draft orders) -> LevelFacts: what the
chart says at each interspace.

Free text is read by fhir_mappings.text: a mention counts when the text asserts it as present (negated:
an absent fact; history only for a prior fusion; hedged, planned, a relative's or counselling: nothing).
The structure is read clause by clause (text.clause_bounds). Inside a clause, phrases are
split at commas and at "and" / "or" / "with", and a level belongs to the concepts written in
its own phrase ("stenosis at L2-3"); a level standing in a phrase without one (", L4-5 and
L5-S1", ", moderate to severe at L3-4") belongs to the nearest concept before it. Findings of
no interest here (disc bulge, facet arthropathy, laminectomy) are found too, only so that
their levels are not handed to a neighbour: "stenosis at L4-5 and a disc bulge at L5-S1"
puts no stenosis at L5-S1. A concept whose clause names no level takes the levels of a
level-only clause of its sentence ("L4-5: severe stenosis"), then those of a report heading
("L4-5:" opening a line), and otherwise gives one fact with interspace None.

Within one resource there is one fact per (kind, interspace, present): the most severe /
most specific statement wins (stenosis grade, listhesis grade, an unhedged deformity, then a
stated number). A resource that places a kind at levels drops its level-less facts of that
kind and polarity. A positive and a negative fact at one interspace are both kept, and facts
from different resources are never merged: each keeps its own evidence and date.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Callable, Iterable

from terminology import cpt, valuesets
from terminology.conservative_care import procedure_classes_in_text, procedure_gate
from terminology.levels import Interspace, LevelMention, Vertebra, find_levels
from terminology.systems import CPT, ICD10CM
from terminology.phrases import compile_phrases, compile_regex
from terminology.valuesets import PhraseGate

from .attachments import attachment_texts
from .facts import Evidence, LevelFact
from .negation import is_negated
from .observation_findings import CodedDetails, coded_details
from .text import clause_bounds, document
from .text.dates import find_dates
from .text.rules import load_text_data
from .resources import array, clinical_period, codings, concept_texts, is_inactive, is_refuted, reference

LEVEL_KINDS = ("spondylolisthesis", "retrolisthesis", "instability", "stenosis", "deformity", "prior_fusion",
               "pseudarthrosis", "hardware_failure", "destabilizing_decompression")
# A backward slip is its own kind: payers grade anterolisthesis, and hold a retrolisthesis to its millimetres.
FUSION_CLASSES = ("fusion", "deformity_fusion")
# A fusion named in text without any sign that it already happened ("L4-5 fusion is planned"):
# read so it owns its levels, never reported except as the levels of a fusion Procedure.
_FUSION_WORD = "fusion_word"
SPAN_LIMIT = 160         # quote_span's default (the measurement reader's quotes)
QUOTE_LIMIT = 200        # the words a level fact read from text keeps (Evidence.quote)
DESCRIPTION_LIMIT = 96   # its description: the words around the finding, as a card's evidence line shows them

# --- text structure ------------------------------------------------------------------------------

_HEADING_COLON = re.compile(r"\s*:")
_APPOSITIVE_COMMA = re.compile(r"[ \t]*[,:][ \t]*(?:(?:now|currently|today)[ \t]+)?")
_CLOSES = re.compile(r"[ \t]*(?:\([^()]*\))?[ \t]*(?:[.;,\n]|\Z)")
_BLANK_LINE = re.compile(r"\n\s*\n")
# Kinds whose history is the point: a fusion done years ago is still there.
HISTORY_KINDS = frozenset({"prior_fusion"})


def quote_span(text: str, start: int, end: int, focus: tuple[int, int] | None = None, limit: int = SPAN_LIMIT) -> str:
    """The span in curly quotes, whitespace collapsed; a long one is cut around focus with "…"."""
    inner = " ".join(text[start:end].split()).strip(" ,;:")
    if len(inner) + 2 <= limit:
        return f"“{inner}”"
    width = limit - 4
    centre = (focus[0] + focus[1]) // 2 if focus else start
    lo = max(start, min(centre - width // 2, end - width))
    piece = " ".join(text[lo:lo + width].split())[: width]
    return "“" + ("…" if lo > start else "") + piece + ("…" if lo + width < end else "") + "”"


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


# --- concepts ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Mention:
    kind: str | None        # a LevelFact kind, _FUSION_WORD, or None: another finding, read for its levels
    start: int
    end: int

    @property
    def span(self) -> tuple[int, int]:
        return self.start, self.end


def _pattern(phrases: Iterable[str] = (), regexes: Iterable[str] = ()) -> re.Pattern | None:
    """Whole-word alternation by the one phrase compiler: hand-written regexes first, then phrases longest first."""
    return compile_phrases(phrases, regexes=regexes)


def _valueset_text(*names: str) -> list[str]:
    # Claudication is a symptom, not an imaging finding: it never places stenosis at a level.
    return [p for name in names for p in valuesets.get(name).text if "claudication" not in p]


def _valueset_negatives(*names: str) -> list[str]:
    return [p for name in names for p in valuesets.get(name).negative_text]


# How each finding is named in text: terminology/data/text/level_findings.yaml.
_FINDINGS = load_text_data("level_findings.yaml")
_TEXT_SETS = {kind: tuple(sets) for kind, sets in _FINDINGS["text_sets"].items()}
_EXTRA_PHRASES = {kind: tuple(found) for kind, found in _FINDINGS["extra_phrases"].items()}
_EXTRA_REGEXES = {kind: tuple(found) for kind, found in _FINDINGS["extra_regexes"].items()}
_EXTRA_NEGATIVES = {kind: tuple(found) for kind, found in _FINDINGS["not_the_finding"].items()}
# A word every match of each hand-written regex holds as a whole word (tokens of valuesets.text_tokens),
# for the pre-filter: checked against the regexes by tests/test_facts_prefilter.py.
_EXTRA_REGEX_ANCHORS = {kind: tuple(found) for kind, found in _FINDINGS["regex_anchors"].items()}
_STRAIGHTENED_LORDOSIS = _FINDINGS["always_subtle"]
if _STRAIGHTENED_LORDOSIS not in _EXTRA_REGEXES["deformity"]:
    raise ValueError("level_findings.yaml: always_subtle must be one of the deformity regexes")

# Grading words, numbers and cues around a finding: terminology/data/text/level_details.yaml.
_DETAILS = load_text_data("level_details.yaml")
_REGEXES = {name: compile_regex(spec) for name, spec in _DETAILS["regexes"].items()}
_PHRASE_SPLIT, _RETRO, _OTHER_FINDINGS = _REGEXES["phrase_split"], _REGEXES["retro"], _REGEXES["other_findings"]
_HISTORY_CUE, _PLAN_CUE, _SOLID_AFTER = _REGEXES["history_cue"], _REGEXES["plan_cue"], _REGEXES["solid_after"]
_FUSED, _FUTURE_BEFORE = _REGEXES["fused"], _REGEXES["future_before"]
_STENOSIS_GRADE, _LISTHESIS_GRADE = _REGEXES["stenosis_grade"], _REGEXES["listhesis_grade"]
_TRANSLATION_MM, _ANY_MM, _COBB = _REGEXES["translation_mm"], _REGEXES["any_mm"], _REGEXES["cobb"]
_HEDGE, _LINK = _REGEXES["hedge"], _REGEXES["link"]
_STUDY_LEAD_IN = _REGEXES["study_lead_in"]
_NERVE_ROOT = _REGEXES["nerve_root"]
_STRAIGHTENING = compile_regex(_STRAIGHTENED_LORDOSIS)
_STENOSIS_NAMES: dict[str, str | None] = dict(_DETAILS["stenosis_grade_names"])
_NUMERALS: dict[str, int] = {str(word): grade for word, grade in _DETAILS["listhesis_numerals"].items()}
# Destabilising decompression, read in draft orders only.
_DESTABILIZING = tuple(compile_regex(spec) for spec in _DETAILS["destabilizing"])
if set(_STENOSIS_NAMES) != set(_STENOSIS_GRADE.groupindex):
    raise ValueError("level_details.yaml: stenosis_grade_names must name every stenosis_grade group")


def _kind_phrases(kind: str) -> list[str]:
    return _valueset_text(*_TEXT_SETS[kind]) + list(_EXTRA_PHRASES.get(kind, ()))


def _kind_patterns() -> dict[str, tuple[re.Pattern, re.Pattern | None]]:
    patterns = {}
    for kind, sets in _TEXT_SETS.items():
        positive = _pattern(_kind_phrases(kind), _EXTRA_REGEXES.get(kind, ()))
        negative = _pattern(_valueset_negatives(*sets), _EXTRA_NEGATIVES.get(kind, ()))
        patterns[kind] = (positive, negative)
    return patterns


_KIND_PATTERNS = _kind_patterns()
# Which kinds' positive patterns could match a text (a superset: see valuesets.PhraseGate).
_KIND_GATE = PhraseGate({kind: _kind_phrases(kind) for kind in _TEXT_SETS}, _EXTRA_REGEX_ANCHORS)

# Findings of no interest here, read only so that they keep their own levels.


def _history_of_fusion(masked: str, start: int, end: int) -> bool:
    """A fusion that already happened: a history cue before it in the clause with no plan in
    between ("s/p L4-S1 fusion", "prior L1-5 fusion"), or "solid"/"status" after it."""
    lo, hi = clause_bounds(masked, start, end)
    cues = list(_HISTORY_CUE.finditer(masked, lo, start))
    if cues and not _PLAN_CUE.search(masked, cues[-1].end(), start):
        return True
    return bool(_SOLID_AFTER.match(masked, end, hi))


def _procedure_mentions(folded: str, masked: str) -> list[_Mention]:
    mentions = []
    for cls, match in procedure_classes_in_text(folded):
        kind = None
        if cls in FUSION_CLASSES:
            kind = "prior_fusion" if _history_of_fusion(masked, match.start(), match.end()) else _FUSION_WORD
        mentions.append(_Mention(kind, match.start(), match.end()))
    for match in _FUSED.finditer(folded):
        if not _FUTURE_BEFORE.search(folded, max(0, match.start() - 25), match.start()):
            mentions.append(_Mention("prior_fusion", match.start(), match.end()))
    return mentions


def _blank(pattern: re.Pattern | None, text: str) -> str:
    return pattern.sub(lambda m: " " * len(m.group()), text) if pattern else text


_KIND_SETS = frozenset(name for sets in _TEXT_SETS.values() for name in sets)


def _chart_mentions(folded: str, masked: str, has_levels: bool = True) -> list[_Mention]:
    mentions = []
    kinds = _KIND_GATE.candidates(folded)
    for kind, (positive, negative) in _KIND_PATTERNS.items():
        if kind in kinds:
            mentions += [_Mention(kind, m.start(), m.end()) for m in positive.finditer(_blank(negative, folded))]
    mentions += _procedure_mentions(folded, masked)
    if has_levels:
        # Other findings only matter as owners of levels; a text without levels skips them.
        mentions += [_Mention(None, s, e) for name, s, e in valuesets.find_text(folded) if name not in _KIND_SETS]
        mentions += [_Mention(None, m.start(), m.end()) for m in _OTHER_FINDINGS.finditer(folded)]
    return _without_overlaps(mentions)


def _without_overlaps(mentions: list[_Mention]) -> list[_Mention]:
    """Kinds of interest beat other findings where they overlap; within one kind the longest wins.
    Two kinds may share words ("unstable spondylolisthesis" is both)."""
    def rank(m: _Mention) -> tuple:
        return (m.kind in LEVEL_KINDS, m.end - m.start)
    kept: list[_Mention] = []
    for mention in sorted(mentions, key=rank, reverse=True):
        clash = [k for k in kept if _overlaps(k.span, mention.span)
                 and (k.kind == mention.kind or k.kind not in LEVEL_KINDS or mention.kind not in LEVEL_KINDS)]
        if not clash:
            kept.append(mention)
    return sorted(kept, key=lambda m: (m.start, m.end))


def _destabilizing(match: re.Match) -> bool:
    if "pct" not in match.re.groupindex or match["pct"] is None:
        return True
    percent = float(match["pct"])
    return percent >= 50 if match["more"] else percent > 50


def _order_mentions(folded: str, masked: str, has_levels: bool = True) -> list[_Mention]:
    mentions = [_Mention("destabilizing_decompression", m.start(), m.end())
                for pattern in _DESTABILIZING for m in pattern.finditer(folded) if _destabilizing(m)]
    mentions += [_Mention(None, m.start(), m.end()) for _, m in procedure_classes_in_text(folded)]
    return _without_overlaps(mentions)


# --- details: severity and numbers -----------------------------------------------------------------

STENOSIS_ORDER = (None, "mild", "mild-moderate", "moderate", "moderate-severe", "severe")


@dataclass(frozen=True)
class _Detail:
    severity: str | None = None
    value: float | None = None
    span: tuple[int, int] | None = None    # where the grading words stand
    graded: bool = False                    # a real grade ("severe", "grade 2"), not "significant"


def _meyerding(percent: float) -> str:
    return "1" if percent <= 25 else "2" if percent <= 50 else "3" if percent <= 75 else "4" if percent <= 100 else "5"


def _stenosis_detail(match: re.Match) -> _Detail:
    severity = _STENOSIS_NAMES[match.lastgroup]
    return _Detail(severity, None, match.span(), severity is not None)


def _listhesis_detail(match: re.Match) -> _Detail:
    if match["grade"]:
        # "grade 1-2": the lower grade, so the chart is never read as more than it says.
        return _Detail(str(_NUMERALS[match["grade"].lower()]), None, match.span(), True)
    if match["pct"]:
        percent = float(match["pct"])
        return _Detail(_meyerding(percent), percent, match.span(), True)
    # "high-grade" is Meyerding III-V: the lowest of them; "low-grade" says no grade.
    return _Detail("3" if match["high"] else None, None, match.span(), bool(match["high"]))


# --- one text, read --------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Statement:
    kind: str
    interspace: Interspace | None
    present: bool
    quote: str
    severity: str | None = None
    value: float | None = None
    assertion: str = "present"
    from_text: bool = True
    words: str | None = None        # the clause read, trimmed to QUOTE_LIMIT (quote: the part around the finding)
    said: str = ""                  # what a coded Observation adds to the words: " at L4-L5, severe"
    source: str | None = None       # where in the resource the words stand: "presentedForm[0]", "note[1]"


class _Reading:
    """One text with its mentions, levels, clauses and phrases."""

    def __init__(self, text: str, find_mentions: Callable[..., list[_Mention]]):
        self.text = text
        self.bounds = document(text)
        self.folded = self.bounds.folded
        self.masked = self.bounds.masked
        self.levels = [level for level in find_levels(text) if not self._names_a_root(level)]
        self.mentions = find_mentions(self.folded, self.masked, bool(self.levels))
        # "and"/"or"/"," inside a mention or a level ("sacrum and ilium") split nothing.
        covered = bytearray(len(text))
        for start, end in [m.span for m in self.mentions] + [(lv.start, lv.end) for lv in self.levels]:
            covered[start:end] = b"\x01" * (end - start)
        self._splits = [s for s in _PHRASE_SPLIT.finditer(self.masked) if not any(covered[s.start():s.end()])]
        self.owners = self._assign_levels()

    def _names_a_root(self, level: LevelMention) -> bool:
        """A lone vertebra written as a nerve root ("traversing L5 nerve root") is no level of a finding."""
        if level.range.interspaces():
            return False
        before = _NERVE_ROOT.search(self.masked, max(0, level.start - 40), level.start)
        return bool((before and before.end() == level.start) or _NERVE_ROOT.match(self.masked, level.end))

    # structure
    def clause(self, start: int, end: int) -> tuple[int, int]:
        return self.bounds.clause(start, end)

    def phrases(self, clause: tuple[int, int]) -> list[tuple[int, int]]:
        bounds, left = [], clause[0]
        for split in self._splits:
            if clause[0] <= split.start() and split.end() <= clause[1]:
                bounds.append((left, split.start()))
                left = split.end()
        return bounds + [(left, clause[1])]

    def phrase(self, start: int, end: int) -> tuple[int, int]:
        phrases = self.phrases(self.clause(start, end))
        return next((p for p in phrases if p[0] <= start <= p[1]), phrases[-1])

    def comma_segment(self, start: int, end: int) -> tuple[int, int]:
        lo, hi = self.clause(start, end)
        left = self.masked.rfind(",", lo, start)
        right = self.masked.find(",", end, hi)
        return (left + 1 if left >= 0 else lo), (right if right >= 0 else hi)

    def _within(self, span: tuple[int, int], items):
        return [x for x in items if span[0] <= x.start and x.end <= span[1]]

    # levels
    def _assign_levels(self) -> dict[int, list[int]]:
        """Mention index -> indexes of the levels it owns."""
        owners: dict[int, list[int]] = {i: [] for i in range(len(self.mentions))}
        indexed = list(enumerate(self.mentions))
        for li, level in enumerate(self.levels):
            clause = self.clause(level.start, level.end)
            in_clause = [(i, m) for i, m in indexed if clause[0] <= m.start and m.end <= clause[1]]
            if not in_clause:
                continue
            phrase = self.phrase(level.start, level.end)
            targets = [i for i, m in in_clause if phrase[0] <= m.start and m.end <= phrase[1]]
            if not targets:
                before = [m for _, m in in_clause if m.end <= level.start]
                nearest = before[-1] if before else in_clause[0][1]
                near_phrase = self.phrase(nearest.start, nearest.end)
                targets = [i for i, m in in_clause if near_phrase[0] <= m.start and m.end <= near_phrase[1]]
            for i in targets:
                owners[i].append(li)
        return owners

    def _owned_by_a_kind(self, level_index: int) -> bool:
        return any(level_index in lis and self.mentions[i].kind in LEVEL_KINDS for i, lis in self.owners.items())

    def levels_of(self, index: int) -> tuple[list[LevelMention], tuple[int, int], str]:
        """The levels a concept mention speaks of, the span to quote, and a prefix for the quote."""
        mention = self.mentions[index]
        clause = self.clause(mention.start, mention.end)
        owned = [self.levels[li] for li in self.owners[index]]
        if owned:
            return owned, clause, ""
        phrases = self.phrases(clause)
        here = next(k for k, p in enumerate(phrases) if p[0] <= mention.start <= p[1])
        for k in (here - 1, here + 1):
            if 0 <= k < len(phrases):
                near = [lv for li, lv in enumerate(self.levels) if phrases[k][0] <= lv.start and lv.end <= phrases[k][1]
                        and self._owned_by_a_kind(li)]
                if near:
                    return near, clause, ""
        if self._within(clause, self.levels):
            return [], clause, ""
        sentence = self.bounds.sentence(mention.start, mention.end)
        loose = [lv for lv in self._within(sentence, self.levels)
                 if not self._within(self.clause(lv.start, lv.end), self.mentions)]
        if loose:
            return loose, sentence, ""
        if self._within(sentence, self.levels):
            return [], clause, ""
        heading = self._heading_before(mention.start)
        if heading is not None:
            return [heading], sentence, f"{heading.text}: … "
        return [], clause, ""

    def study_lead_in(self, start: int) -> str | None:
        """The study and date opening start's line before a colon ("MRI lumbar spine 10/2/2024: ..."),
        when the words at start follow that colon and the lead-in holds a date: the quote keeps them,
        so the finding is dated by the study, not by the note quoting it."""
        line = self.text.rfind("\n", 0, start) + 1
        lead = _STUDY_LEAD_IN.match(self.text, line)
        if lead is None or self.text.find(":", lead.end()) >= start or not find_dates(lead["study"]):
            return None
        return " ".join(lead["study"].split())

    def _heading_before(self, position: int) -> LevelMention | None:
        """A level opening a line and followed by a colon ("L4-5: ...") heads what follows it,
        up to the next heading or a blank line."""
        found = None
        for level in self.levels:
            if level.start >= position:
                break
            before = self.masked[:level.start].rstrip(" \t")
            opens = not before or before.endswith("\n") or before[-1] in ".!?"
            if opens and _HEADING_COLON.match(self.masked, level.end):
                found = level
        if found is not None and _BLANK_LINE.search(self.masked, found.end, position):
            return None
        return found

    # details
    def nearest_detail(self, pattern: re.Pattern, read: Callable[[re.Match], _Detail], mention: _Mention,
                       level: LevelMention | None) -> _Detail:
        """Grading words for the mention at this level: the nearest before the level (not past
        the concept's phrase nor another finding), else in the concept's phrase, else right after."""
        phrase = self.phrase(mention.start, mention.end)
        if level is not None and mention.end <= level.start:
            # A list of levels each graded after it ("Stenosis: L3-4 mild, L4-5 severe, L5-S1 moderate"): the
            # grade in the level's own comma segment, written right after it, is that level's.
            lo, hi = self.comma_segment(level.start, level.end)
            if not pattern.search(self.folded, max(lo, mention.end), level.start):
                link = _LINK.match(self.folded, level.end, hi)
                after = pattern.match(self.folded, link.end(), hi) if link else None
                if after:
                    return read(after)
        if level is not None:
            lo = phrase[0] if mention.start < level.start else self.clause(level.start, level.end)[0]
            for other in self.mentions:
                # Another finding between them takes the grades after it; so does another mention of
                # this kind ("moderate to severe left foraminal stenosis and mild right foraminal
                # stenosis at L5-S1": "mild" is the right side's).
                if other is not mention and lo <= other.start and other.end <= level.start \
                        and not _overlaps(other.span, mention.span):
                    lo = max(lo, other.end)
            found = list(pattern.finditer(self.folded, lo, level.start))
            if found:
                coordinated = self._coordinated_grades(phrase, pattern) if lo == phrase[0] else []
                return _worst(read, coordinated + found) if coordinated else read(found[-1])
        found = list(pattern.finditer(self.folded, phrase[0], mention.start))
        coordinated = self._coordinated_grades(phrase, pattern)
        if coordinated:
            # "Severe left and mild right foraminal narrowing": the grades of one finding, the worst kept.
            return _worst(read, coordinated + found)
        if found:
            return read(found[-1])
        anchors = [(mention.end, phrase[1])]
        if level is not None:
            anchors.append((level.end, self.phrase(level.start, level.end)[1]))
        for anchor, limit in anchors:
            link = _LINK.match(self.folded, anchor, limit)
            after = pattern.match(self.folded, link.end(), limit) if link else None
            if after:
                return read(after)
        # A grade standing alone after a comma or a colon, closing its clause: "L4-5 stenosis, moderate.",
        # "Canal stenosis: moderate.", "Stenosis has progressed, now severe (previously moderate)."
        hi = self.bounds.sentence(mention.start, mention.end)[1]
        for _, limit in anchors:
            comma = _APPOSITIVE_COMMA.match(self.folded, limit, hi)
            after = pattern.match(self.folded, comma.end(), hi) if comma else None
            if after and _CLOSES.match(self.folded, after.end(), hi):
                return read(after)
        return _Detail()

    def _coordinated_grades(self, phrase: tuple[int, int], pattern: re.Pattern) -> list[re.Match]:
        """Grades in the phrases right before this one that hold nothing else of note (no finding, no
        level: "Severe left | and mild right foraminal narrowing"), back to one that does."""
        phrases = self.phrases(self.clause(*phrase))
        k = next((i for i, p in enumerate(phrases) if p == phrase), None)
        found: list[re.Match] = []
        while k:
            k -= 1
            lo, hi = phrases[k]
            if self._within((lo, hi), self.mentions) or self._within((lo, hi), self.levels):
                break
            grades = list(pattern.finditer(self.folded, lo, hi))
            if not grades:
                break
            found = grades + found
        return found

    def nearest_number(self, patterns: tuple[re.Pattern, ...], anchor: tuple[int, int]) -> float | None:
        """The number of the first pattern that has one in the clause, nearest to anchor."""
        lo, hi = self.clause(*anchor)
        for pattern in patterns:
            found = list(pattern.finditer(self.folded, lo, hi))
            if found:
                best = min(found, key=lambda m: abs(m.start() - anchor[0]))
                return float(next(g for g in best.groups() if g is not None))
        return None

    def hedged(self, mention: _Mention) -> bool:
        """Deformity hedged in its phrase, or in an appositive right after it ("curvature, very subtle")."""
        if _STRAIGHTENING.fullmatch(self.folded, mention.start, mention.end):
            return True
        clause = self.clause(mention.start, mention.end)
        phrases = self.phrases(clause)
        here = next(k for k, p in enumerate(phrases) if p[0] <= mention.start <= p[1])
        spans = [phrases[here]]
        if here + 1 < len(phrases) and not self._within(phrases[here + 1], self.mentions) \
                and not self._within(phrases[here + 1], self.levels):
            spans.append(phrases[here + 1])
        return any(_HEDGE.search(self.folded, lo, hi) for lo, hi in spans)

    def assertion(self, mention: _Mention) -> str:
        return self.bounds.assertion(mention.start, mention.end)

    def graded_here(self, detail: _Detail, anchor: tuple[int, int]) -> bool:
        """A real grade in the comma segment of the level, with no negation cue of its own,
        outweighs a negation earlier in the clause: "no stenosis at L2-3, severe at L4-5"."""
        if not detail.graded or detail.span is None:
            return False
        lo, hi = self.comma_segment(*anchor)
        if not (lo <= detail.span[0] and detail.span[1] <= hi):
            return False
        segment = self.masked[lo:hi]
        return not is_negated(segment, detail.span[0] - lo, detail.span[1] - lo)


def _interspaces_of(kind: str, level: LevelMention) -> tuple[Interspace, ...]:
    spaces = level.range.interspaces()
    if spaces or kind != "spondylolisthesis":
        return spaces
    # "anterolisthesis of L4": the slipped vertebra over the one below it.
    vertebra = level.range.start
    try:
        return (Interspace(vertebra, Vertebra(vertebra.index + 1)),)
    except ValueError:
        return ()


def _detail_for(reading: _Reading, mention: _Mention, level: LevelMention | None) -> _Detail:
    anchor = (level.start, level.end) if level is not None else mention.span
    if mention.kind == "stenosis":
        return reading.nearest_detail(_STENOSIS_GRADE, _stenosis_detail, mention, level)
    if mention.kind == "spondylolisthesis":
        return reading.nearest_detail(_LISTHESIS_GRADE, _listhesis_detail, mention, level)
    if mention.kind == "instability":
        return _Detail(value=reading.nearest_number((_TRANSLATION_MM, _single(_ANY_MM, reading, anchor)), anchor))
    if mention.kind == "deformity":
        return _Detail(severity="subtle" if reading.hedged(mention) else None,
                       value=reading.nearest_number((_COBB,), mention.span))
    return _Detail()


# How a grade written apart from the finding (an interpretation, a grade component) reads, per kind.
_GRADES = {"stenosis": (_STENOSIS_GRADE, _stenosis_detail), "spondylolisthesis": (_LISTHESIS_GRADE, _listhesis_detail)}


def _single(pattern: re.Pattern, reading: _Reading, anchor: tuple[int, int]) -> re.Pattern:
    """pattern when it occurs exactly once in the clause (one unlabelled "4 mm" is the translation), else a
    pattern that never matches."""
    lo, hi = reading.clause(*anchor)
    return pattern if len(list(pattern.finditer(reading.folded, lo, hi))) == 1 else _NEVER


_NEVER = re.compile(r"(?!x)x")


# A text states something only through a mention with a kind (_chart_mentions): a kind's phrase,
# a fusion named as a procedure, or "fused". Without one, _read says nothing: the other findings
# and levels only decide whose levels are whose.
_FUSED_GATE = PhraseGate({}, {"prior_fusion": ("fused",)})


def may_state(text: str) -> bool:
    """False only when _read(text) is certainly empty (the pre-filter; a superset test)."""
    return (_KIND_GATE.could_match(text) or _FUSED_GATE.could_match(text)
            or not procedure_gate().candidates(text).isdisjoint(FUSION_CLASSES))


def _read(text: str, find_mentions: Callable[..., list[_Mention]] = _chart_mentions) -> tuple[_Statement, ...]:
    if not text or (find_mentions is _chart_mentions and not may_state(text)):
        return ()
    return _read_cached(text, find_mentions)


@lru_cache(maxsize=4096)
def _read_cached(text: str, find_mentions: Callable[..., list[_Mention]]) -> tuple[_Statement, ...]:
    """Pure in the text: cached, as charts repeat the same notes and report conclusions."""
    if not text.strip():
        return ()
    reading = _Reading(text, find_mentions)
    statements = []
    for index, mention in enumerate(reading.mentions):
        if mention.kind is None:
            continue
        levels, quoted, prefix = reading.levels_of(index)
        quote = quote_span(text, *quoted, focus=mention.span, limit=DESCRIPTION_LIMIT)
        words = quote_span(text, *quoted, focus=mention.span, limit=QUOTE_LIMIT)[1:-1]
        if not prefix and (lead := reading.study_lead_in(quoted[0])):
            prefix = f"{lead}: "
        if prefix:
            quote, words = f"“{prefix}{quote[1:]}", f"{prefix}{words}"
        assertion = written = reading.assertion(mention)
        if mention.kind == _FUSION_WORD:
            assertion = "negated" if assertion == "negated" else "present"   # read only for its levels
        elif assertion == "historical" and mention.kind in HISTORY_KINDS:
            assertion = "present"
        elif assertion == "hypothetical" and find_mentions is _order_mentions:
            assertion = "present"     # a draft order is a plan by nature
        if assertion not in ("present", "negated"):
            continue     # hedged, planned, a relative's, counselling, or history that is no finding now
        negated = assertion == "negated"
        targets = [(lv, s) for lv in levels for s in _interspaces_of(mention.kind, lv)] or [(None, None)]
        kind = mention.kind
        if kind == "spondylolisthesis" and _RETRO.match(text, mention.start):
            kind = "retrolisthesis"
        for level, space in targets:
            detail = _detail_for(reading, mention, level)
            anchor = (level.start, level.end) if level is not None else mention.span
            if kind == "retrolisthesis":
                detail = _Detail(value=reading.nearest_number((_TRANSLATION_MM, _single(_ANY_MM, reading, anchor)), anchor))
            present = not negated or reading.graded_here(detail, anchor)
            # An absent finding carries no grade: "no moderate or severe stenosis" denies the grade.
            severity = detail.severity if present else None
            statements.append(_Statement(kind, space, present, quote, severity, detail.value,
                                         written if present else "negated", words=words))
    return tuple(statements)


# --- resources -------------------------------------------------------------------------------------

_CODED_KINDS = {
    "spondylolisthesis": "spondylolisthesis", "spinal_instability": "instability", "stenosis": "stenosis",
    "stenosis_with_claudication": "stenosis", "stenosis_without_claudication": "stenosis",
    "scoliosis": "deformity", "kyphosis": "deformity", "flat_back": "deformity",
    "pseudarthrosis": "pseudarthrosis", "hardware_failure": "hardware_failure",
}
_ARTHRODESIS_STATUS = "Z98.1"   # ICD-10-CM "arthrodesis status": a prior fusion, coded
# Kinds whose number is a translation in mm (a spondylolisthesis's number is its slip in %).
_TRANSLATED_KINDS = frozenset({"instability", "retrolisthesis"})


def _texts(resource: dict, *fields: str) -> list[str]:
    return list(dict.fromkeys(concept_texts(resource, *fields)))


def _level_spaces(texts: Iterable[str]) -> list[Interspace]:
    spaces = [s for text in texts for lv in find_levels(text) for s in lv.range.interspaces()]
    return list(dict.fromkeys(spaces))


def _coded_statements(resource: dict, field: str, level_texts: list[str],
                      spaces: Iterable[Interspace] = ()) -> list[_Statement]:
    """Kinds coded on the resource, placed at the levels its code text or body site names (or at spaces)."""
    kinds: dict[str, str] = {}
    label = None
    for system, code in codings(resource, field):
        if system is None:
            continue
        names = {_CODED_KINDS[n] for n in valuesets.match_coding(system, code) if n in _CODED_KINDS}
        if system == ICD10CM and valuesets.normalize_icd10cm(code).startswith(_ARTHRODESIS_STATUS):
            names.add("prior_fusion")
        if names and label is None:
            label = next(iter(_texts(resource, field)), "")
        for kind in names:
            kinds.setdefault(kind, f"“{label}” ({code})" if label else code)
    if not kinds:
        return []
    placed = _level_spaces(level_texts) or list(spaces) or [None]
    return [_Statement(kind, space, True, quote, from_text=False) for kind, quote in kinds.items() for space in placed]


def _read_at(sources: Iterable[tuple[str, str]], find_mentions: Callable[..., list[_Mention]] = _chart_mentions
             ) -> list[_Statement]:
    """The statements of each (where in the resource, text), each knowing where its words stand."""
    return [replace(s, source=where) for where, text in sources for s in _read(text, find_mentions)]


def _read_concept_texts(texts: list[tuple[str, str]], site_spaces: list[Interspace]) -> list[_Statement]:
    """Code texts: a concept without a level there takes the body site's levels."""
    return _at_sites(_read_at(texts), site_spaces)


def _at_sites(read: Iterable[_Statement], site_spaces: list[Interspace]) -> list[_Statement]:
    """Each statement without a level of its own, once at each of the body site's levels."""
    statements = []
    for statement in read:
        if statement.interspace is None and site_spaces:
            statements += [replace(statement, interspace=space) for space in site_spaces]
        else:
            statements.append(statement)
    return statements


def _note_sources(resource: dict) -> list[tuple[str, str]]:
    return [(f"note[{i}]", note["text"]) for i, note in enumerate(array(resource.get("note")))
            if isinstance(note, dict) and isinstance(note.get("text"), str)]


def _notes(resource: dict) -> list[_Statement]:
    return _read_at(_note_sources(resource))


def _condition(resource: dict) -> list[_Statement]:
    code_texts = _texts(resource, "code")
    sites = _texts(resource, "bodySite")
    statements = _coded_statements(resource, "code", code_texts + sites)
    statements += _read_concept_texts([("code", t) for t in code_texts], _level_spaces(sites)) + _notes(resource)
    if is_inactive(resource):
        # A resolved condition no longer describes the spine; a fusion, once done, stays done.
        statements = [s for s in statements if s.kind == "prior_fusion"]
    return statements


def _report(resource: dict) -> list[_Statement]:
    # Not the report's code: a title names what was looked for ("XR SCOLIOSIS SURVEY"), not a finding.
    texts = [("conclusionCode", text) for text in _texts(resource, "conclusionCode")]
    if isinstance(resource.get("conclusion"), str):
        texts.append(("conclusion", resource["conclusion"]))
    texts += [(found.source, block) for found in attachment_texts(resource) for block in found.blocks]
    statements = _coded_statements(resource, "conclusionCode", _texts(resource, "conclusionCode"))
    return statements + _read_at(texts) + _notes(resource)


def _with_value(name: str, holder: dict) -> str:
    """An observation's name read together with its value: "Spondylolisthesis grade" + "2"."""
    if holder.get("valueBoolean") is False:
        return f"No {name}" if name else ""
    value = holder.get("valueString")
    if not isinstance(value, str):
        value = next(iter(_texts(holder, "valueCodeableConcept")), "")
    return f"{name} {value}".strip()


def _observation(resource: dict) -> list[_Statement]:
    """An Observation's name read with its value (a finding written as text, or coded with a display),
    placed at the levels of its body site or location component when its words name none, graded by its
    interpretation or grade component, and absent when its value or interpretation says so."""
    if resource.get("dataAbsentReason") is not None:
        return _notes(resource)     # no value: the finding its code names is not asserted
    texts = [("code", _with_value(next(iter(_texts(resource, "code")), ""), resource))]
    for i, component in enumerate(array(resource.get("component"))):
        if isinstance(component, dict) and component.get("dataAbsentReason") is None:
            texts.append((f"component[{i}]", _with_value(next(iter(_texts(component, "code")), ""), component)))
    read = _read_at(texts)
    coded_kinds = [s for field in ("code", "valueCodeableConcept") for s in _coded_statements(resource, field, [])]
    # Most Observations (vital signs, labs) state no level finding: their body site, grade and
    # absence are read only for one that does.
    if not read and not coded_kinds:
        return _notes(resource)
    coded = coded_details(resource)
    read_kinds = {s.kind for s in read}
    statements = _at_sites(read + [s for s in coded_kinds if s.kind not in read_kinds], list(coded.spaces))
    return [_with_coded_details(s, coded) for s in statements] + _notes(resource)


def _with_coded_details(statement: _Statement, coded: CodedDetails) -> _Statement:
    said = [f"at {statement.interspace}"] if statement.interspace in coded.spaces else []
    if coded.absent:
        return replace(statement, present=False, severity=None, value=None, assertion="negated",
                       said=" " + ", ".join([*said, "absent"]))
    if statement.present and statement.severity is None:
        pattern, detail = _GRADES.get(statement.kind, (None, None))
        found = next((m for text in coded.grades if pattern and (m := pattern.search(text))), None)
        if found is not None:
            graded = detail(found)
            statement = replace(statement, severity=graded.severity, value=statement.value or graded.value)
            said.append(" ".join(found.group().split()))
    if statement.present and statement.value is None and coded.translation_mm is not None \
            and statement.kind in _TRANSLATED_KINDS:
        statement = replace(statement, value=coded.translation_mm)
        said.append(f"translation {coded.translation_mm:g} mm")
    return replace(statement, said=" " + ", ".join(said)) if said else statement


def _is_fusion(resource: dict) -> bool:
    for system, code in codings(resource, "code"):
        entry = cpt.lookup(code) if system in (CPT, None) else None
        if entry is not None and entry.procedure_class in FUSION_CLASSES:
            return True
    return any(cls in FUSION_CLASSES for text in _texts(resource, "code") for cls, _ in procedure_classes_in_text(text))


def _procedure(resource: dict) -> list[_Statement]:
    notes = _notes(resource)
    statements = [s for s in notes if s.kind != _FUSION_WORD]
    if resource.get("status") != "completed" or not _is_fusion(resource):
        return statements
    names = _texts(resource, "code")
    codes = [code for system, code in codings(resource, "code") if system in (CPT, None)]
    quote = f"“{names[0]}”" if names else "fusion"
    quote += f" (CPT {', '.join(codes)})" if codes else ""
    spaces = _level_spaces(names + _texts(resource, "bodySite"))
    # Levels only in the operative note: those it gives the fusion ("instrumented fusion L4-5").
    spaces = spaces or list(dict.fromkeys(s.interspace for s in notes if s.kind in (_FUSION_WORD, "prior_fusion")
                                          and s.interspace is not None))
    return statements + [_Statement("prior_fusion", space, True, quote, from_text=False) for space in spaces or [None]]


def _document(resource: dict) -> list[_Statement]:
    """A clinical note: its attachments' text (never its type or title)."""
    return _read_at((found.source, block) for found in attachment_texts(resource) for block in found.blocks)


_READERS: dict[str, Callable[[dict], list[_Statement]]] = {
    "Condition": _condition, "DiagnosticReport": _report, "Observation": _observation, "Procedure": _procedure,
    "DocumentReference": _document,
}


def _order(resource: dict) -> list[_Statement]:
    """Draft ServiceRequest: a destabilising decompression, at the levels of its clause or of the order."""
    texts = [("code", t) for t in _texts(resource, "code")] + [("orderDetail", t) for t in _texts(resource, "orderDetail")]
    texts += _note_sources(resource)
    order_spaces = _level_spaces([t for _, t in texts] + _texts(resource, "bodySite"))
    statements = []
    for statement in _read_at(texts, _order_mentions):
        if statement.interspace is None and order_spaces:
            statements += [replace(statement, interspace=space) for space in order_spaces]
        else:
            statements.append(statement)
    return statements


# --- statements -> facts ---------------------------------------------------------------------------

def _grade_rank(severity: str | None) -> int:
    """How severe a grade is: a stenosis grade by STENOSIS_ORDER, a listhesis grade by its number."""
    if severity in STENOSIS_ORDER:
        return STENOSIS_ORDER.index(severity)
    return int(severity) if severity and severity.isdigit() else 0


def _worst(read: Callable[[re.Match], _Detail], matches: list[re.Match]) -> _Detail:
    """The most severe of the grades read for one finding."""
    return max((read(m) for m in matches), key=lambda detail: _grade_rank(detail.severity))


def _strength(statement: _Statement) -> tuple:
    """How much a statement says, for keeping one per (kind, interspace, present) in a resource."""
    if statement.kind in ("stenosis", "spondylolisthesis"):
        rank = _grade_rank(statement.severity)
    elif statement.kind == "deformity":
        rank = 0 if statement.severity == "subtle" else 1
    else:
        rank = 0
    return rank, statement.value is not None, statement.value or 0


def _facts_of(resource: dict, statements: list[_Statement]) -> list[LevelFact]:
    if not statements:
        return []
    best: dict[tuple, _Statement] = {}
    for statement in statements:
        if statement.kind not in LEVEL_KINDS:
            continue
        key = (statement.kind, statement.interspace, statement.present)
        if key not in best or _strength(statement) > _strength(best[key]):
            best[key] = statement
    located = {(kind, present) for kind, space, present in best if space is not None}
    ref, day = reference(resource), clinical_period(resource)[0]
    return [LevelFact(s.kind, s.interspace, s.present,
                      Evidence(ref, s.quote + s.said, day, quote=(s.words or s.quote.strip("“”")) if s.from_text else None,
                               source=s.source),
                      s.severity, s.value, s.assertion)
            for (kind, space, present), s in best.items() if space is not None or (kind, present) not in located]


def level_facts_of(resource) -> list[LevelFact]:
    """The LevelFacts of one resource of the patient's record."""
    read = _READERS.get(resource.get("resourceType")) if isinstance(resource, dict) else None
    if read is None or is_refuted(resource):
        return []
    return _facts_of(resource, read(resource))


def order_level_facts(draft_orders) -> list[LevelFact]:
    """Destabilising decompressions planned in the draft orders."""
    facts: list[LevelFact] = []
    for order in draft_orders:
        if isinstance(order, dict) and order.get("resourceType") == "ServiceRequest" and not is_refuted(order):
            facts += _facts_of(order, _order(order))
    return facts


def map_level_facts(resources, draft_orders=()) -> tuple[LevelFact, ...]:
    """LevelFacts of the patient's record, plus destabilising decompressions planned in the draft orders."""
    facts = [fact for resource in resources for fact in level_facts_of(resource)]
    return tuple(facts + order_level_facts(draft_orders))
