"""Observations and free text -> Measurements (the names of terminology/data/measurements.json).

Observations are read by their coding (LOINC) or their name, with the value they carry;
components are measurements of their own. Free text (report conclusions, string values,
notes of any resource) is read phrase by phrase: a measurement's phrase takes the number
written right after it ("PI 51°", "pelvic incidence of 51 degrees", "translation at L4-5 of
4 mm") or, failing that, one written just before it ("31 degrees of lumbar lordosis", "a
51-degree pelvic incidence", "80% relief"); each number is read once. A range ("LL 27-28°")
is read as its midpoint. Units are normalised to deg, cm, mm, %, score and count, and SVA
is always in cm.

A pelvic incidence and a lumbar lordosis read from one resource, or from resources of the
same date, give a derived pi_ll_mismatch when none is stated there.
"""
from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from terminology import measurements as terms
from terminology.levels import LevelRange, find_levels
from terminology.systems import LOINC
from terminology.phrases import compile_regex, phrase_regex
from terminology.valuesets import PhraseGate, compile_phrases

from .facts import Evidence, Measurement
from .level_facts import quote_span
from .text import document, fold_text, once
from .text.gate import gated
from .text.rules import load_text_data
from .resources import array, clinical_period, codings, concept_texts, is_refuted, narrative_texts, reference

SI_TEST = "si_provocative_test"
SI_BLOCK = "si_block_relief"
# Measurements that are taken at a level: the nearest level in the clause is kept with them.
LEVELLED = frozenset({"cobb_angle", "thoracic_kyphosis", "translation_flexion_extension",
                      "angulation_flexion_extension", "slip_percent"})
# A bare number after the full name is enough for these ("pelvic incidence 51", "ODI 21");
# abbreviations and number-only phrases always need the unit ("PT 25°", never "PT 2x/week").
UNIT_OPTIONAL = frozenset({"pelvic_incidence", "lumbar_lordosis", "pi_ll_mismatch", "pelvic_tilt", "cobb_angle",
                           "thoracic_kyphosis", "angulation_flexion_extension", "pain_score", "odi"})
# Accepted written units; SVA is written in cm or mm.
_ACCEPTED_UNITS = {"sagittal_vertical_axis": ("cm", "mm")}
# Scoliosis words with a number in degrees are a Cobb angle ("levoscoliosis of 35°").
_EXTRA_PHRASES = (("cobb_angle", terms.Phrase("scoliosis", requires_number=True)),
                  ("cobb_angle", terms.Phrase("dextroscoliosis", requires_number=True)),
                  ("cobb_angle", terms.Phrase("levoscoliosis", requires_number=True)))

# --- numbers ---------------------------------------------------------------------------------------

_DETAILS = load_text_data("measure_details.yaml")
_UNIT_RES = dict(_DETAILS["units"])
_GROUP = {"deg": "deg", "cm": "cm", "mm": "mm", "%": "pct", "score": "score"}   # unit -> its group name
_UNIT_OF_GROUP = {v: k for k, v in _GROUP.items()}
_NUMBER = _DETAILS["number"]
_GAP = _DETAILS["gap"]
_BEFORE_TAIL = _DETAILS["before_tail"]
_WINDOW = 40
_REGEXES = {name: compile_regex(spec) for name, spec in _DETAILS["regexes"].items()}
_SI_WORDS = _REGEXES["si_words"]
_POSTERIOR = _REGEXES["posterior"]
_ANY_VALUE = re.compile(_NUMBER + r"(?:" + "|".join(f"(?P<{_GROUP[u]}>{r})" for u, r in _UNIT_RES.items()) + r")?",
                        re.IGNORECASE)
_PERCENT = re.compile(_NUMBER + _UNIT_RES["%"], re.IGNORECASE)
_SI_INJECTION = _REGEXES["si_injection"]


def _value_pattern(units: tuple[str, ...], optional: bool) -> re.Pattern:
    unit = "|".join(f"(?P<{_GROUP[u]}>{_UNIT_RES[u]})" for u in units)
    return re.compile(_NUMBER + f"(?:{unit}){'?' if optional else ''}" + r"(?![\d])", re.IGNORECASE)


def _number(match: re.Match) -> float:
    """The value written; a range is read as its midpoint."""
    value = float(match["a"]) if match["b"] is None else (float(match["a"]) + float(match["b"])) / 2
    return -value if match["sign"] and match["sign"].strip() in "-\u2212" else value


def _unit(match: re.Match, default: str) -> str:
    return next((_UNIT_OF_GROUP[g] for g in _UNIT_OF_GROUP if g in match.re.groupindex and match[g]), default)


# --- phrases ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Phrase:
    name: str
    phrase: terms.Phrase
    pattern: re.Pattern
    after: re.Pattern          # the number that may follow the name
    before: re.Pattern         # the number that may precede it (always with its unit)

    @property
    def names_si(self) -> bool:
        return bool(_SI_WORDS.search(self.phrase.text))


def _phrase(name: str, phrase: terms.Phrase) -> _Phrase:
    unit = terms.get(name).unit
    units = _ACCEPTED_UNITS.get(name, (unit,)) if unit != "count" else ()
    optional = not (phrase.abbreviation or phrase.requires_number) and name in UNIT_OPTIONAL
    pattern = compile_phrases([phrase.text])
    value = _value_pattern(units, optional) if units else re.compile(r"(?!x)x")
    before = re.compile(_value_pattern(units, False).pattern + _BEFORE_TAIL, re.IGNORECASE) if units else value
    return _Phrase(name, phrase, pattern, value, before)


def _phrases() -> tuple[_Phrase, ...]:
    found = [_phrase(name, p) for name in sorted(terms.all_names()) if name != SI_TEST for p in terms.get(name).phrases]
    return tuple(found + [_phrase(name, p) for name, p in _EXTRA_PHRASES])


_PHRASES = _phrases()
# One alternation, longest phrase first: each finditer hit is the leftmost, longest name, so
# "PI-LL" is read as one name and never as "PI" and "LL" (phrase texts are unique).
_ANY_PHRASE = compile_phrases([p.phrase.text for p in _PHRASES])
_PHRASE_BY_TEXT = {p.phrase.text: p for p in _PHRASES}
_ANY_PHRASE_GATED = gated(_ANY_PHRASE)
_GAP_RE = re.compile(_GAP, re.IGNORECASE)
_NOT_A_LINK = re.compile(r"[^\s:=-]")

# --- SI provocative tests ----------------------------------------------------------------------------

_PROVOCATIVE_PHRASES = [p.text for p in terms.get(SI_TEST).phrases] + ["si provocation", "provocation"]
_PROVOCATIVE = compile_phrases(_PROVOCATIVE_PHRASES)
_PROVOCATIVE_GATED = gated(_PROVOCATIVE) if _PROVOCATIVE else None
_POLARITY = _DETAILS["polarity"]
_POLARITY_RE = re.compile(_POLARITY, re.IGNORECASE)
# A test's own result: the lead, then a result word or sign, or a bare minus (group "bare": negative).
_POLARITY_AFTER = re.compile(_DETAILS["polarity_lead"] + "(?:" + _POLARITY + "|(?P<bare>" + _DETAILS["bare_minus"] + "))",
                             re.IGNORECASE)
_LIST_GLUE = re.compile(_DETAILS["list_glue"], re.IGNORECASE)
_RESULT_BEFORE_GAP = re.compile(_DETAILS["result_before_gap"], re.IGNORECASE)
_SI_SHORT = _REGEXES["si_short"]
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_NOT_SI_COMPRESSION = _REGEXES["not_si_compression"]
_TALLY = _REGEXES["tally"]
_PRESENT_ABSENT = _REGEXES["present_absent"]
_WORD_NUMBERS = dict(_DETAILS["word_numbers"])


# --- pre-filter ------------------------------------------------------------------------------------------
# Which of _PHRASES could match a text (group: its index), and the words without one of which
# no SI test or provocative testing is named. A superset test, see valuesets.PhraseGate.
_PHRASE_GATE = PhraseGate({index: [p.phrase.text] for index, p in enumerate(_PHRASES)})
_PROVOCATIVE_GATE = PhraseGate({SI_TEST: _PROVOCATIVE_PHRASES})
_DIGIT = re.compile(r"\d")     # what _NUMBER needs (re's \d: any Unicode decimal digit)


def names_si_test(text: str) -> bool:
    """False only when no SI test and no provocative testing can be named in text."""
    return _PROVOCATIVE_GATE.could_match(text) or terms.si_test_gate().could_match(text)


def may_measure(text: str) -> bool:
    """False only when _TextReader(text, ...).read() is certainly empty. Every reading is an SI
    test or provocative testing named in the text, pain scores before and after a block, or a
    phrase with a number taken within _WINDOW characters of it (value_after / value_before: a digit
    there)."""
    if names_si_test(text) and (terms.find_si_tests(text) or (_PROVOCATIVE and _PROVOCATIVE.search(fold_text(text)))):
        return True
    if _OUT_OF_TEN.search(text) and any(form.search(fold_text(text)) for form, _ in _RELIEF_AS_SCORES):
        return True        # an SI block's relief as pain scores before and after (_relief_from_scores)
    if _DIGIT.search(text) is None:
        return False
    low = text.lower()
    if "flexion" in low and "extension" in low and _VIEW_DIFFERENCE_RE.search(fold_text(text)):
        return True       # a difference between views names no measurement (view_differences)
    if not _PHRASE_GATE.could_match(text):
        return False
    read = document(text)
    return any(_DIGIT.search(read.folded, max(0, hit.start() - _WINDOW), hit.end() + _WINDOW)
               for hit in read.matches(_ANY_PHRASE_GATED))


# --- reading one text ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Found:
    name: str
    value: float | None
    unit: str
    quote: str
    levels: tuple[LevelRange, ...] = ()
    test: str | None = None
    positive: bool | None = None
    span: tuple[int, int] | None = None    # where in the text (None: a structured value)


# --- prose forms: pairs, several blocks, other injections (terminology/data/text/prose_measures.yaml) ----

_PROSE = load_text_data("prose_measures.yaml")
_PAIR_NUMBER = r"(?P<{g}>\d+(?:\.\d+)?)(?:\s*-?\s*(?:°|º|˚|degrees?(?![a-z])|deg(?![a-z])))?"


def _names_of(name: str) -> str:
    return "|".join(sorted((phrase_regex(p.text) for p in terms.get(name).phrases if not p.requires_number),
                           key=len, reverse=True))


def _pair_patterns() -> tuple[tuple[str, str, re.Pattern], ...]:
    patterns = []
    for first, second in _PROSE["pairs"]:
        x, y = _names_of(first), _names_of(second)
        a, b = _PAIR_NUMBER.format(g="a"), _PAIR_NUMBER.format(g="b")
        joined = (rf"(?<![a-z0-9])(?:{x})\s*[/-]\s*(?:{y})\s*(?:[:=]|of|is|was|were)?\s*{a}\s*[/-]\s*{b}(?![\d])")
        listed = (rf"(?<![a-z0-9])(?:{x})\s*(?:[:=]|of|is|was)?\s*{a}\s*(?:,|;|/|and)\s*(?:{y})\s*(?:[:=]|of|is|was)?"
                  rf"\s*{b}(?![\d])")
        patterns += [(first, second, re.compile(joined, re.IGNORECASE)),
                     (first, second, re.compile(listed, re.IGNORECASE))]
    return tuple(patterns)


_PAIRS = tuple((first, second, gated(pattern)) for first, second, pattern in _pair_patterns())
_VIEWS = _PROSE["view_differences"]
_VIEW_DIFFERENCE_RE = re.compile(_VIEWS["pattern"], re.IGNORECASE)
_VIEW_DIFFERENCE = gated(_VIEW_DIFFERENCE_RE)
_SLIP_WORDS = compile_phrases(_VIEWS["slip_words"])
_SEVERAL_BLOCKS = compile_phrases(_PROSE["several_blocks"])
_OTHER_INJECTION = compile_phrases(_PROSE["other_injections"])
_SCORES = _PROSE["relief_as_scores"]


def _score_forms(kind: str) -> tuple[re.Pattern, ...]:
    score, number = _SCORES["score"], _SCORES["number"]
    return tuple(re.compile(form.format(pre_score=score.format(g="pre"), post_score=score.format(g="post"),
                                        pre_number=number.format(g="pre")), re.IGNORECASE) for form in _SCORES[kind])


# (form, written before and after?) of pain scores before and after a block
_RELIEF_AS_SCORES = tuple((form, True) for form in _score_forms("before_after")) + \
    tuple((form, False) for form in _score_forms("change"))
_AFTER_BLOCK = re.compile(_SCORES["after_block"], re.IGNORECASE)
_OUT_OF_TEN = re.compile(r"\d\s*(?:/\s*10|out\s+of\s+10)", re.IGNORECASE)     # what every form holds
_COUNTS = ("present",)                    # a measurement hedged, planned or not assessable is not one
_TEST_COUNTS = ("present", "negated")     # "FABER negative" is a reading of the test


class _TextReader:
    def __init__(self, text: str, si_context: int):
        self.text = text
        self.bounds = document(text)
        self.folded = self.bounds.folded
        self.masked = self.bounds.masked
        self.levels = find_levels(text)
        self.numbers = "".join(self._level_masked())     # folded, levels as "§"
        self.si_context = si_context
        self.used: list[tuple[int, int]] = []

    def _level_masked(self):
        last = 0
        for level in self.levels:
            yield self.folded[last:level.start]
            yield "§" * (level.end - level.start)
            last = level.end
        yield self.folded[last:]

    def clause(self, start: int, end: int) -> tuple[int, int]:
        return self.bounds.clause(start, end)

    def quote(self, start: int, end: int) -> str:
        return quote_span(self.text, *self.clause(start, end), focus=(start, end))

    def free(self, span: tuple[int, int]) -> bool:
        return not any(span[0] < e and s < span[1] for s, e in self.used)

    def nearest_level(self, span: tuple[int, int]) -> tuple[LevelRange, ...]:
        lo, hi = self.clause(*span)
        here = [lv for lv in self.levels if lo <= lv.start and lv.end <= hi]
        if not here:
            return ()
        best = min(here, key=lambda lv: min(abs(lv.start - span[1]), abs(span[0] - lv.end)))
        return (best.range,)

    # phrase hits
    @once
    def _hits(self) -> tuple[tuple[_Phrase, re.Match], ...]:
        return tuple(self._phrase_hits())

    def hits(self) -> list[tuple[_Phrase, re.Match]]:
        return list(self._hits)

    def _phrase_hits(self):
        kept = []
        for match in self.bounds.matches(_ANY_PHRASE_GATED):
            phrase = _PHRASE_BY_TEXT[" ".join(match.group().lower().split())]
            if phrase.name == SI_BLOCK and not phrase.names_si and not self._si_near(match):
                continue           # "80% relief" is an SI block's only when SI is named nearby
            kept.append((phrase, match))
        return kept

    def _si_near(self, match: re.Match) -> bool:
        """The relief is an SI block's when its sentence names the SI joint; else when its sentence names
        no other injection and the procedure (the resource's code) or the note names an SI-joint injection."""
        lo, hi = self.bounds.sentence(match.start(), match.end())
        if _SI_WORDS.search(self.folded, lo, hi):
            return True
        if _OTHER_INJECTION.search(self.folded, lo, hi):
            return False
        return self.si_context or self._note_names_si_injection()

    def _note_names_si_injection(self) -> bool:
        return bool(_SI_INJECTION.search(self.folded)) and not _OTHER_INJECTION.search(self.folded)

    def value_after(self, phrase: _Phrase, match: re.Match) -> re.Match | None:
        gap = _GAP_RE.match(self.numbers, match.end(), match.end() + _WINDOW)
        value = phrase.after.match(self.numbers, gap.end(), match.end() + _WINDOW) if gap else None
        return value if value and self.free(value.span("a")) else None

    def value_before(self, phrase: _Phrase, match: re.Match) -> re.Match | None:
        lo = max(0, match.start() - _WINDOW)
        value = phrase.before.search(self.numbers, lo, match.start())
        return value if value and self.free(value.span("a")) else None

    def pairs(self) -> list[_Found]:
        """"PI/LL 52/48", "PI-LL 52-48", "PI 51, LL 31": two measurements, their numbers in order."""
        found = []
        gate = self.bounds.found_in()
        for first, second, pattern in _PAIRS:
            for match in pattern.finditer(gate, self.numbers):
                if not self.free(match.span()):
                    continue
                self.used.append(match.span())
                quote = self.quote(*match.span())
                found += [_Found(first, float(match["a"]), terms.get(first).unit, quote, span=match.span()),
                          _Found(second, float(match["b"]), terms.get(second).unit, quote, span=match.span())]
        return found

    def view_differences(self) -> list[_Found]:
        """"measures 2 mm in extension and 6 mm in flexion": the translation between the views is the
        difference (prose_measures.yaml view_differences), at the level nearest in the clause."""
        found = []
        name = _VIEWS["measurement"]
        for match in _VIEW_DIFFERENCE.finditer(self.bounds.found_in(), self.numbers):
            if match["va"].lower() == match["vb"].lower() or not self.free(match.span()) \
                    or not _SLIP_WORDS.search(self.folded, *self.bounds.sentence(*match.span())):
                continue
            self.used.append(match.span())
            value = round(abs(float(match["b"]) - float(match["a"])), 1)
            found.append(_Found(name, value, terms.get(name).unit, self.quote(*match.span()),
                                self.nearest_level(match.span()), span=match.span()))
        return found

    def read(self) -> list[_Found]:
        paired = self.pairs() + self.view_differences() if _DIGIT.search(self.text) else []
        hits = [(p, m) for p, m in self.hits() if self.free(m.span())]
        values: dict[int, re.Match] = {}
        # A number written right against its name is taken first, either side ("PI 51°",
        # "3.5 mm translation at L3-4 (2.5 mm ...)"); then one after the name, then one before.
        passes = ((self.value_after, True), (self.value_before, True), (self.value_after, False),
                  (self.value_before, False))
        for direction, adjacent_only in passes:
            for index, (phrase, match) in enumerate(hits):
                if index in values:
                    continue
                value = direction(phrase, match)
                if value is not None and (not adjacent_only or self._adjacent(match, value)):
                    values[index] = value
                    self.used.append((value.start(), value.end()))
        found = [self._measurement(hits[i][0], hits[i][1], v) for i, v in sorted(values.items())]
        found = [f for f in found if f is not None]
        found = paired + found + self._more_block_reliefs(found) + self._relief_from_scores()
        found = [f for f in found if self.bounds.assertion(*f.span) in _COUNTS]
        tests = [f for f in self.si_tests() if f.span is None or self.bounds.assertion(*f.span) in _TEST_COUNTS]
        return self._one_block(found) + tests

    def _relief_from_scores(self) -> list[_Found]:
        """"Pain 8/10 before, 1/10 after the block": an SI block's relief as the fall of the pain score,
        (before - after) / before, in percent (prose_measures.yaml relief_as_scores); quoted as written."""
        if not _OUT_OF_TEN.search(self.text):
            return []
        found, taken = [], []
        for form, before_after in _RELIEF_AS_SCORES:
            for match in form.finditer(self.numbers):
                pre, post = float(match["pre"]), float(match["post"])
                if any(match.start() < e and s < match.end() for s, e in taken) or not 0 < pre <= 10 or post > 10 \
                        or not self._scores_are_si_block(match, before_after):
                    continue
                taken.append(match.span())
                relief = round(max(0.0, (pre - post) / pre * 100), 1)
                found.append(_Found(SI_BLOCK, relief, "%", self.quote(*match.span()), span=match.span()))
        return found

    def _scores_are_si_block(self, match: re.Match, before_after: bool) -> bool:
        """Scores before and after are an SI block's relief in the record of an SI-joint injection, unless
        their sentence names another injection and not the SI joint; elsewhere when their sentence is an SI
        block's (as _si_near) and ties them to the block: written before and after it, or a change
        written with the block named after "after"."""
        lo, hi = self.bounds.sentence(match.start(), match.end())
        names_si = bool(_SI_WORDS.search(self.folded, lo, hi))
        if not names_si and _OTHER_INJECTION.search(self.folded, lo, hi):
            return False
        if self.si_context == SI_RECORD:
            return True
        if not (names_si or self.si_context or self._note_names_si_injection()):
            return False
        return before_after or bool(_AFTER_BLOCK.search(self.folded, lo, hi))

    def _one_block(self, found: list[_Found]) -> list[_Found]:
        """Several relief figures in a note that reports one block are that block, at its highest."""
        blocks = [f for f in found if f.name == SI_BLOCK]
        if len(blocks) < 2 or _SEVERAL_BLOCKS.search(self.folded):
            return found
        best = max(blocks, key=lambda f: f.value or 0)
        return [f for f in found if f.name != SI_BLOCK or f is best]

    def _adjacent(self, match: re.Match, value: re.Match) -> bool:
        """Only spaces, a colon or a hyphen between name and number ("PI 51°", "51-degree pelvic incidence")."""
        between = value["tail"] if "tail" in value.re.groupindex else self.numbers[match.end():value.start()]
        return len(between) <= 3 and not _NOT_A_LINK.search(between)

    def _measurement(self, phrase: _Phrase, match: re.Match, value: re.Match) -> _Found | None:
        unit = _unit(value, terms.get(phrase.name).unit)
        number = _number(value)
        if phrase.name == "sagittal_vertical_axis":
            number, unit = (number / 10 if unit == "mm" else number), "cm"
            if _POSTERIOR.match(self.folded, value.end()):
                number = -abs(number)
        span = (min(match.start(), value.start()), max(match.end(), value.end()))
        levels = self.nearest_level(span) if phrase.name in LEVELLED else ()
        return _checked(_Found(phrase.name, number, unit, self.quote(*span), levels, span=span))

    def _more_block_reliefs(self, found: list[_Found]) -> list[_Found]:
        """"90% relief after the first block and 75% after the second": every other percentage
        in a sentence that reports SI-block relief is one more block."""
        if not any(f.name == SI_BLOCK for f in found):
            return []
        more = []
        for phrase, match in self.hits():
            if phrase.name != SI_BLOCK:
                continue
            lo, hi = self.bounds.sentence(match.start(), match.end())
            for value in _PERCENT.finditer(self.numbers, lo, hi):
                if self.free(value.span("a")):
                    self.used.append(value.span())
                    more.append(_checked(_Found(SI_BLOCK, _number(value), "%", self.quote(*value.span()),
                                                span=value.span())))
        return [m for m in more if m is not None]

    # SI tests
    def si_tests(self) -> list[_Found]:
        found = []
        # A sentence's words are the text's: a text that names no SI test and no provocative test has
        # no sentence that does (most notes), and its sentences are not read one by one.
        if terms.si_test_gate().candidates(self.text) == frozenset() and not (
                _PROVOCATIVE and _PROVOCATIVE_GATED.id in self.bounds.found_in()):
            return found
        exam = None      # the paragraph of the last sentence naming an SI test or SI provocative testing
        for lo, hi in self._sentences():
            named = [(k, lo + s, lo + e) for k, s, e in terms.find_si_tests(self.text[lo:hi])]
            provocative = _PROVOCATIVE.search(self.folded, lo, hi) \
                if _PROVOCATIVE and _PROVOCATIVE_GATED.id in self.bounds.found_in(lo, hi) else None
            in_exam = False
            if named or provocative:
                named = self._with_short_names(named, lo, hi)
                exam = self._paragraph(named[0][1] if named else provocative.start())
            elif exam is not None:
                # "Thigh thrust positive. Compression positive.": after an SI examination in the same
                # paragraph, "compression" and "distraction" in a sentence of their own are its tests,
                # when a result is written for them; elsewhere they are a fracture's, a root's or a word.
                named = [hit for hit in self._with_short_names([], lo, hi) if self._paragraph(hit[1]) == exam]
                in_exam = True
            for (key, start, end), positive in zip(named, self._polarities(named, lo, hi)):
                if in_exam and positive is None:
                    continue
                found.append(_Found(SI_TEST, None, "count", self.quote(start, end), (), key, positive,
                                    span=(start, end)))
            if provocative:
                tally = self._tally(lo, hi, bool(named))
                if tally is not None:
                    found.append(_Found(SI_TEST, tally, "count", quote_span(self.text, lo, hi)))
        return found

    def _sentences(self):
        return self.bounds.spans()

    @once
    def _paragraph_starts(self) -> tuple[int, ...]:
        return tuple(m.end() for m in _BLANK_LINE.finditer(self.text))

    def _paragraph(self, position: int) -> tuple[int, int | None]:
        """Which paragraph (text between blank lines) and which section heading a position is under."""
        section = self.bounds.section_at(position)
        return bisect_right(self._paragraph_starts, position), section.start if section else None

    def _with_short_names(self, named, lo, hi):
        taken = [(s, e) for _, s, e in named]
        for match in _SI_SHORT.finditer(self.folded, lo, hi):
            if any(match.start() < e and s < match.end() for s, e in taken):
                continue
            if _NOT_SI_COMPRESSION.search(self.folded, max(0, match.start() - 20), match.start()):
                continue
            named.append((match.lastgroup, match.start(), match.end()))
        return sorted(named, key=lambda h: h[1])

    def _polarities(self, named, lo: int, hi: int) -> list[bool | None]:
        """Each test's result in the sentence [lo, hi): its own, written right after it ("FABER +",
        "Gaenslen (-)", "FABER test: positive"), else one written once for the list it is in, after
        the list ("thigh thrust, compression and distraction positive", "... all positive") or before
        it ("positive FABER, thigh thrust and compression tests"). A list is tests with only list glue
        between them, so a result written after one test ends its list and never reaches the next
        ("FABER +, thigh thrust +, distraction -"); a result before a list is looked for only after
        the last result or test before it."""
        runs: list[list[int]] = []
        for index, (_, start, _end) in enumerate(named):
            if runs and _LIST_GLUE.fullmatch(self.folded, named[index - 1][2], start):
                runs[-1].append(index)
            else:
                runs.append([index])
        results: list[bool | None] = [None] * len(named)
        taken = lo           # where the text not yet given to a test starts
        for run in runs:
            first, last = named[run[0]][1], named[run[-1]][2]
            before = self._result_before(taken, first)
            after = self._result_after(last, hi)
            for index in run:
                if after and (index == run[-1] or before is None):
                    results[index] = after[0]     # its own result, or the list's written after it
                else:
                    results[index] = before       # the list's written before it ("positive FABER and ...")
            taken = after[1] if after else last
        return results

    def _result_after(self, end: int, hi: int) -> tuple[bool, int] | None:
        """(positive?, where it ends) of the result written right after a test, in its sentence and line."""
        after = _POLARITY_AFTER.match(self.folded, end, hi)
        if after is None or "\n" in after.group():
            return None
        return after["pos"] is not None, after.end()

    def _result_before(self, lo: int, start: int) -> bool | None:
        """The last result word in [lo, start), when only a short gap without clause marks lies between."""
        before = list(_POLARITY_RE.finditer(self.folded, lo, start))
        if before and _RESULT_BEFORE_GAP.fullmatch(self.folded, before[-1].end(), start):
            return before[-1]["pos"] is not None
        return None

    def _tally(self, lo: int, hi: int, named: bool) -> float | None:
        """Positive tests counted in words: "positive: 3/5", "2 of 5 ... positive"; "provocative
        tests negative" with no test named is a count of 0."""
        polarity = {("pos" if m["pos"] else "neg") for m in _POLARITY_RE.finditer(self.folded, lo, hi)}
        match = _TALLY.search(self.folded, lo, hi)
        if match and match["k"]:
            k, n = int(match["k"]), int(match["n"])
            if k <= n <= 9:
                return float(n - k if polarity == {"neg"} else k)
        elif match:
            return float(_WORD_NUMBERS.get(match["k2"].lower()) or int(match["k2"]))
        if not named and polarity == {"neg"}:
            return 0.0
        return None


def _checked(found: _Found) -> _Found | None:
    """A value outside the measurement's possible range is a misreading (pain 70/10)."""
    bounds = terms.get(found.name).value_range
    if found.value is None or bounds is None:
        return found
    low, high = bounds
    if (low is not None and found.value < low) or (high is not None and found.value > high):
        return None
    return found


# --- structured observations ---------------------------------------------------------------------------

_UNIT_WORDS = {"deg": "deg", "°": "deg", "degree": "deg", "degrees": "deg", "[deg]": "deg", "cm": "cm", "mm": "mm",
               "%": "%", "percent": "%", "{score}": "score", "score": "score", "/10": "score", "{count}": "count",
               "count": "count", "{#}": "count", "1": "count"}


def _quantity(holder: dict) -> tuple[float | None, str]:
    quantity = holder.get("valueQuantity")
    if isinstance(quantity, dict) and isinstance(quantity.get("value"), (int, float)):
        # The UCUM code is the unit; the display unit is only words ("degrees", "Deg").
        unit = quantity.get("code") or quantity.get("unit") or ""
        return float(quantity["value"]), _UNIT_WORDS.get(str(unit).strip().lower(), str(unit).strip())
    if isinstance(holder.get("valueInteger"), int) and not isinstance(holder.get("valueInteger"), bool):
        return float(holder["valueInteger"]), ""
    if isinstance(holder.get("valueString"), str):
        match = _ANY_VALUE.search(fold_text(holder["valueString"]))
        if match:
            return _number(match), _unit(match, "")
    return None, ""


def _polarity_of(holder: dict) -> bool | None:
    if isinstance(holder.get("valueBoolean"), bool):
        return holder["valueBoolean"]
    words = [holder.get("valueString")] + list(concept_texts(holder, "valueCodeableConcept"))
    for text in (w for w in words if isinstance(w, str)):
        match = _POLARITY_RE.search(text) or _PRESENT_ABSENT.search(text)
        if match:
            return match["pos"] is not None
    return None


def _name_of(holder: dict, label: str, unit: str) -> str | None:
    for system, code in codings(holder, "code"):
        name = terms.match_coding(system, code) if system == LOINC else None
        if name:
            return name
    if not label:
        return None
    return _name_of_label(label, unit)


@lru_cache(maxsize=4096)
def _name_of_label(label: str, unit: str) -> str | None:
    """The measurement an observation's name names. Cached: charts repeat the same few names."""
    if names_si_test(label) and (terms.find_si_tests(label) or (_PROVOCATIVE and _PROVOCATIVE.search(label))):
        return SI_TEST
    candidates = _PHRASE_GATE.candidates(label)
    if not candidates:
        return None
    folded = fold_text(label)
    # The value is structured, so any phrase of the name counts; an abbreviation only with its unit.
    hits = [(len(m.group()), p.name) for index, p in enumerate(_PHRASES) if index in candidates
            for m in p.pattern.finditer(folded) if not p.phrase.abbreviation or unit == terms.get(p.name).unit]
    return max(hits)[1] if hits else None


def _structured(holder: dict, label: str) -> _Found | None:
    value, unit = _quantity(holder)
    name = _name_of(holder, label, unit)
    if name is None:
        return None
    if name == SI_TEST:
        tests = terms.find_si_tests(label)
        if len(tests) == 1:
            return _Found(SI_TEST, None, "count", label, (), tests[0][0], _polarity_of(holder))
        return _Found(SI_TEST, value, "count", f"{label}: {value:g}") if value is not None else None
    if value is None:
        return None
    unit = unit or terms.get(name).unit
    if name == "sagittal_vertical_axis" and unit == "mm":
        value, unit = value / 10, "cm"
    if unit != terms.get(name).unit:
        # Never compared as if it were in the threshold's unit: kept as evidence, without a value.
        return _Found(name, None, unit, f"{label}: {value:g} {unit}, left out: the service does not convert {unit} "
                      f"to {terms.get(name).unit}")
    levels = tuple(lv.range for lv in find_levels(label)) if name in LEVELLED else ()
    return _checked(_Found(name, value, unit, f"{label}: {value:g} {unit}".strip(), levels))


def _observation(resource: dict) -> list[_Found]:
    found = []
    for holder in [resource] + [c for c in array(resource.get("component")) if isinstance(c, dict)]:
        label = next(iter(concept_texts(holder, "code")), "")
        item = _structured(holder, label)
        if item is not None:
            found.append(item)
    return found


# --- resources -> measurements ------------------------------------------------------------------------

_SI_INJECTION_CODES = frozenset(_PROSE["si_injection_codes"])


_SI_INJECTION_NAMED = gated(re.compile(_PROSE["si_injection_named"], re.IGNORECASE))


def _names_si_injection(text: str) -> bool:
    return _SI_INJECTION_NAMED.search(document(text).found_in(), text) is not None


# How a resource tells of an SI-joint injection (_si_context).
SI_RECORD, SI_NAMED = 2, 1


def _si_context(resource: dict) -> int:
    """An SI-joint injection or block, coded or named: relief written in its notes is that block's.
    SI_RECORD: the resource is one (its CPT code; its code, or a note's type or description, names
    one), so pain scores before and after in it are that block's too. SI_NAMED: a note names one in
    its own text, or a record's code names the SI joint. 0: neither. A note must name an injection:
    a consult about SI-joint pain does not make an epidural's relief an SI block's."""
    if any(code.upper() in _SI_INJECTION_CODES for _, code in codings(resource, "code")):
        return SI_RECORD
    titles = list(concept_texts(resource, "code"))
    if resource.get("resourceType") == "DocumentReference":
        titles += [*concept_texts(resource, "type"), resource.get("description") or ""]
    if any(isinstance(t, str) and _names_si_injection(t) for t in titles):
        return SI_RECORD
    if resource.get("resourceType") == "DocumentReference":
        return SI_NAMED if any(isinstance(t, str) and _names_si_injection(t) for t in narrative_texts(resource)) else 0
    return SI_NAMED if any(_SI_WORDS.search(text) for text in concept_texts(resource, "code")) else 0


@lru_cache(maxsize=4096)
def _read_text(text: str, si_context: int) -> tuple[_Found, ...]:
    """Pure in its arguments: cached, as charts repeat the same notes and conclusions."""
    return tuple(_TextReader(text, si_context).read())


_SI_BLOCK_DATA = load_text_data("si_blocks.yaml")
_GUIDANCE = compile_phrases(_SI_BLOCK_DATA["image_guidance"])


def _image_guided(resource: dict) -> bool:
    """The record of a block says fluoroscopic or CT guidance, in words or by its CPT code."""
    if any(code in _SI_BLOCK_DATA["guided_cpt"] for _, code in codings(resource, "code")):
        return True
    return any(_GUIDANCE.search(t) for t in list(concept_texts(resource, "code")) + list(narrative_texts(resource)))


def _measurements_of(resource: dict) -> list[Measurement]:
    found = _observation(resource) if resource.get("resourceType") == "Observation" else []
    si_context = None
    for text in dict.fromkeys(narrative_texts(resource)):
        if not may_measure(text):
            continue
        if si_context is None:
            si_context = _si_context(resource)
        found += _read_text(text, si_context)
    if not found:
        return []
    ref, day = reference(resource), clinical_period(resource)[0]
    guided = _image_guided(resource) if any(f.name == SI_BLOCK for f in found) else None
    unique = list(dict.fromkeys((f.name, f.value, f.unit, f.levels, f.test, f.positive, f.quote) for f in found))
    seen, out = set(), []
    for name, value, unit, levels, test, positive, quote in unique:
        if (name, value, unit, levels, test, positive) in seen:
            continue
        seen.add((name, value, unit, levels, test, positive))
        out.append(Measurement(name, Evidence(ref, quote, day, quote=quote.strip("“”")), value, unit, levels, test,
                               positive, guided if name == SI_BLOCK else None))
    return out


def _derived(pi: Measurement, ll: Measurement) -> Measurement:
    # Lordosis is sometimes written negative (Cobb sign convention): the mismatch uses its size.
    mismatch = abs(pi.value) - abs(ll.value)
    refs = pi.evidence.reference if pi.evidence.reference == ll.evidence.reference \
        else f"{pi.evidence.reference}, {ll.evidence.reference}"
    description = (f"PI-LL mismatch {mismatch:g}° derived: pelvic incidence {abs(pi.value):g}° − "
                   f"lumbar lordosis {abs(ll.value):g}° ({refs})")
    return Measurement("pi_ll_mismatch", Evidence(pi.evidence.reference, description, pi.evidence.day or ll.evidence.day),
                       mismatch, "deg")


def _pairs(pis: list[Measurement], lls: list[Measurement]) -> list[Measurement]:
    return [_derived(pi, ll) for pi, ll in zip(pis, lls)]


def derive_mismatches(measured: list[Measurement]) -> list[Measurement]:
    """PI - LL where both were read from one resource, or else from one date, with no mismatch stated there."""
    def of(name, group):
        return [m for m in group if m.name == name and m.value is not None]

    by_resource: dict[str, list[Measurement]] = {}
    for m in measured:
        by_resource.setdefault(m.evidence.reference, []).append(m)
    derived, left = [], []
    for group in by_resource.values():
        if of("pi_ll_mismatch", group):
            continue
        pis, lls = of("pelvic_incidence", group), of("lumbar_lordosis", group)
        derived += _pairs(pis, lls)
        n = min(len(pis), len(lls))
        left += pis[n:] + lls[n:]
    stated_days = {m.evidence.day for m in measured + derived if m.name == "pi_ll_mismatch"}
    by_day: dict[date, list[Measurement]] = {}
    for m in left:
        if m.evidence.day is not None and m.evidence.day not in stated_days:
            by_day.setdefault(m.evidence.day, []).append(m)
    for group in by_day.values():
        derived += _pairs(of("pelvic_incidence", group), of("lumbar_lordosis", group))
    return derived


def measurements_of(resource) -> list[Measurement]:
    """The measurements one resource states (derived PI-LL mismatches are map_measurements')."""
    if isinstance(resource, dict) and resource.get("resourceType") not in (None, "Patient", "Coverage") \
            and not is_refuted(resource):
        return _measurements_of(resource)
    return []


def map_measurements(resources) -> tuple[Measurement, ...]:
    measured = [m for resource in resources for m in measurements_of(resource)]
    return tuple(measured + derive_mismatches(measured))

