"""One clinical text as a reviewer reads it: sections, sentences, clauses, and how each mention
in it is asserted (ConText-style, rules in terminology/data/text/context.yaml).

All offsets index the original text: folding and masking keep its length.

How a mention's assertion is decided:
1. Trigger phrases are found once per text; pseudo-triggers ("no interval change",
   "non-contrast") are matched by the same alternation and, being longer, consume the words that
   would otherwise trigger.
2. In the mention's sentence, a forward trigger before it reaches it unless a clause mark
   (";", ":"), a termination for every category ("but", "however", "now") or for its own
   category stands between them; a backward trigger after it reaches it the same way, over at
   most BACKWARD_WORDS words. A trigger overlapping the mention is part of its name
   ("non-union") and reaches nothing; a trigger in brackets reaches only inside them; a denial
   written as a label ("Denies: ...") reaches across its own colon.
3. A label's value that denies the mention ("Weakness: No") or an unticked box before it
   ("[ ] weakness") decides first; then a negation that reaches the mention ("no prior fusion"),
   then a relative ("father had a spinal tumor"), else the nearest trigger; none: the section's
   default (an INDICATION or PLAN asserts no finding; FAMILY HISTORY is family's), else present.
"""
from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from terminology.valuesets import normalize_text

from .gate import EVERYTHING, LITERALS
from .rules import TOKEN, context_rules, label_rules, phrase_key, section_rules, spaced_words

# Dots that end no sentence: decimals ("3.5 mm") and abbreviations ("vs.", "approx.").
_FALSE_STOPS = re.compile(r"(?<=\d)\.(?=\d)|\b(?:vs|approx|e\.g|i\.e|cf|fig|dr)\.", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n")
_CLAUSE_END = re.compile(r"[.;:!?\n]|\bbut\b|\bhowever\b|\balthough\b|\bexcept\b", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z0-9]+")
BACKWARD_WORDS = 4


# Every dot _FALSE_STOPS blanks is one of these (a superset, found fast: the pattern starts with the dot).
_MAYBE_FALSE_STOP = re.compile(r"\.(?:(?<=\d\.)(?=\d)|(?<=(?i:vs|cf|dr)\.)|(?<=(?i:fig)\.)|(?<=(?i:e\.g)\.)"
                               r"|(?<=(?i:i\.e)\.)|(?<=(?i:approx)\.))")


def fold_text(text: str) -> str:
    """Typographic quotes and dashes folded, same length (offsets index the original)."""
    return text if text.isascii() else normalize_text(text)


# How far before its last dot each kind of _FALSE_STOPS match starts: a decimal's dot is the match;
# "vs." "cf." "dr." start 2 back, "fig." "e.g." "i.e." 3, "approx." 6.
_FALSE_STOP_REACH = (0, 2, 3, 6)


def _blank_false_stops(folded: str) -> str:
    """_FALSE_STOPS.sub(dots to spaces), tried only at the dots _MAYBE_FALSE_STOP finds (a scan for
    a dot is fast; the sub's alternation tried at every position is not)."""
    chars, resume = None, 0
    for candidate in _MAYBE_FALSE_STOP.finditer(folded):
        dot = candidate.start()
        for back in _FALSE_STOP_REACH:
            match = _FALSE_STOPS.match(folded, dot - back) if dot - back >= resume else None
            if match is not None and match.end() == dot + 1:
                resume = dot + 1      # the sub's matches do not overlap ("i.e.g.": "i.e." only)
                chars = list(folded) if chars is None else chars
                for at in range(match.start(), dot + 1):
                    if chars[at] == ".":
                        chars[at] = " "
                break
    return folded if chars is None else "".join(chars)


def mask_text(text: str) -> str:
    """The folded text with dots that end no sentence blanked, same length."""
    return _blank_false_stops(fold_text(text))


def clause_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """The clause around [start, end): sentence punctuation, ";", ":" and "but"/"however"/... bound it.
    (The structure level_facts splits phrases in; assertion scope is Document.assertion's.)"""
    left = 0
    for match in _CLAUSE_END.finditer(text, 0, start):
        left = match.end()
    right_match = _CLAUSE_END.search(text, end)
    return left, (right_match.start() if right_match else len(text))


class Trigger(NamedTuple):     # a tuple: made by the thousand per chart
    category: str
    forward: bool
    backward: bool
    ends: frozenset[str]
    start: int
    end: int
    words: str


@dataclass(frozen=True)
class Section:
    name: str
    asserts: str
    start: int        # where its heading starts
    body: int         # where its text starts


class _once:
    """functools.cached_property without Python 3.11's lock around every first reading (a Document
    is read by one request's thread; and a lock held by another thread when forked_reading forks
    would stay held in the copy); the value then sits in the instance and the descriptor is not
    asked again."""

    def __init__(self, func):
        self.func = func
        self.name = func.__name__

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.func(instance)
        return value


once = _once     # for the other readers' per-text objects


class Document:
    """The reading of one text shared by every reader; each part is made when first asked for."""

    def __init__(self, text: str):
        self.text = text
        self._clauses: dict[tuple[int, int], tuple[int, int]] = {}
        self._assertions: dict[tuple[int, int], str] = {}
        self._found: dict[tuple[int, int, int], dict] = {}    # found_in by (lo, hi, gate version)
        self._matches: dict[int, tuple] = {}                    # matches by gated pattern id
        self._by_sentence: dict[int, list] = {}                 # triggers by sentence start

    @_once
    def folded(self) -> str:
        return fold_text(self.text)

    @_once
    def masked(self) -> str:
        return _blank_false_stops(self.folded)

    @_once
    def _starts(self) -> list[int]:
        return [0] + [match.end() for match in _SENTENCE_END.finditer(self.masked)]

    # --- the readers' gate (fhir_mappings.text.gate) ------------------------------------------------
    _scanned = (-1, None)

    def _literals(self):
        version, literals = self._scanned
        if version != LITERALS.version:    # a reader registered a pattern since (its first use)
            hits = LITERALS.scan(self.folded)
            literals = None if hits is None else (hits, [hit[0] for hit in hits])
            self._scanned = (LITERALS.version, literals)
        return literals

    def found_in(self, lo: int = 0, hi: int | None = None):
        """The gated patterns that may match within text[lo:hi]: id -> where the first of its literals
        there starts (in the text), lo for a pattern that needs none (EVERYTHING: no gate)."""
        literals = self._literals()
        if literals is None:
            return EVERYTHING
        hits, starts = literals
        hi = len(self.text) if hi is None else hi
        key = (lo, hi, LITERALS.version)
        found = self._found.get(key)
        if found is None:
            found = self._found[key] = self._found_between(hits, starts, lo, hi)
        return found

    @staticmethod
    def _found_between(hits, starts, lo: int, hi: int) -> dict:
        found = dict.fromkeys(LITERALS.always, lo)
        for index in range(bisect_left(starts, lo), len(hits)):
            start, end, ids = hits[index]
            if start >= hi:
                break
            if end <= hi:
                for key in ids:
                    if key not in found:
                        found[key] = start
        return found

    def finditer(self, gated, text: str | None = None):
        """gated.pattern.finditer(text) for text = the folded text or one of its length whose letters
        are the folded text's: an anchored pattern is tried only where one of its literals starts."""
        text = self.folded if text is None else text
        literals = self._literals()
        if literals is None or not gated.anchored:
            if literals is None or gated.id in self.found_in():
                yield from gated.pattern.finditer(text)
            return
        resume = 0
        for start in self._starts_by_pattern(literals[0]).get(gated.id, ()):
            if start >= resume:
                match = gated.pattern.match(text, start)
                if match is not None:
                    resume = match.end()
                    yield match

    def matches(self, gated) -> tuple[re.Match, ...]:
        """Every match of a gated pattern in the folded text (finditer's), found once per text: the
        readers that ask twice (a pre-filter, then the reading) share them."""
        found = self._matches.get(gated.id)
        if found is None:
            found = self._matches[gated.id] = tuple(self.finditer(gated))
        return found

    def _starts_by_pattern(self, hits) -> dict[int, list[int]]:
        """Where each gated pattern's literals start, in order, each place once (made on first use:
        an anchored pattern then visits its own places, not every literal of every pattern)."""
        index = self.__dict__.get("_by_pattern")
        if index is None or index[0] is not hits:
            places: dict[int, list[int]] = {}
            for start, _, ids in hits:
                for key in ids:
                    found = places.get(key)
                    if found is None:
                        places[key] = [start]
                    elif found[-1] != start:
                        found.append(start)
            index = self._by_pattern = (hits, places)
        return index[1]

    # --- structure -------------------------------------------------------------------------------
    def sentence(self, start: int, end: int) -> tuple[int, int]:
        starts = self._starts
        lo = starts[bisect_right(starts, start) - 1]
        # Every end mark is one character and the next sentence starts right after it: the first mark
        # at or after max(end, lo) is the one before the first start beyond it.
        following = bisect_right(starts, max(end, lo))
        return lo, starts[following] - 1 if following < len(starts) else len(self.masked)

    def clause(self, start: int, end: int) -> tuple[int, int]:
        key = (start, end)
        if key not in self._clauses:
            lo, hi = self.sentence(start, end)
            left, right = clause_bounds(self.masked[lo:hi], start - lo, end - lo)
            self._clauses[key] = (left + lo, right + lo)
        return self._clauses[key]

    def spans(self):
        """Every non-empty sentence, in order."""
        for index, lo in enumerate(self._starts):
            hi = self._starts[index + 1] - 1 if index + 1 < len(self._starts) else len(self.masked)
            if self.masked[lo:hi].strip():
                yield lo, hi

    @_once
    def sections(self) -> tuple[Section, ...]:
        if ":" not in self.folded and "\n" not in self.folded:
            return ()          # a heading ends with a colon or its line
        rules = section_rules()
        found = []
        for match in _headings(rules.pattern, self.folded):
            name = phrase_key(match["name"])
            found.append(Section(name, rules.asserts[name], match.start("name"), match.end()))
        return tuple(found)

    def section_at(self, position: int) -> Section | None:
        current = None
        for section in self.sections:
            if section.body > position:
                break
            current = section
        return current

    def sentence_key(self, lo: int, hi: int):
        """What reading the sentence text[lo:hi] depends on, as a key: its words, the marks just
        outside it, and the assertion its section gives each part of it. Two sentences with one key
        read the same (sentence readers memoise on it: notes copied forward repeat most sentences).
        None when a trigger phrase runs over its bounds: its reading then depends on its neighbours."""
        text = self.text
        before, after = text[lo - 1:lo] if lo else "", text[hi:hi + 1]
        # A phrase's words are joined by spaces or hyphens only, so only a sentence that a line break or
        # a "?" (itself a trigger) bounds can have a phrase running over its bounds.
        if before in _JOINING_BOUNDS or after in _JOINING_BOUNDS:
            inside = list(self._triggers_within(lo, hi))
            if inside and (inside[0].start < lo or inside[-1].end > hi):
                return None
        return text[lo:hi], before, after, self._sections_over(lo, hi)

    def _sections_over(self, lo: int, hi: int) -> tuple:
        """The assertion of the section each position in [lo, hi) is in: the one at lo, then (offset,
        assertion) for each section whose text starts inside."""
        current, inner = None, []
        for section in self.sections:
            if section.body > lo:
                if section.body >= hi:
                    break
                inner.append((section.body - lo, section.asserts))
            else:
                current = section.asserts
        return current, tuple(inner)

    # --- assertion -------------------------------------------------------------------------------
    @_once
    def triggers(self) -> tuple[Trigger, ...]:
        """Every trigger, pseudo-trigger and termination, leftmost-longest and non-overlapping."""
        starts = self._token_starts
        if starts is None:
            return self.triggers_by_token()
        return tuple(self._scan(starts, 0, len(self.masked)))

    def _scan(self, starts: list[int], first: int, end: int) -> list[Trigger]:
        """The phrases whose first token starts in [first, end), leftmost-longest (a phrase may run on
        past end), none overlapping."""
        rules, found, resume = context_rules(), [], first
        for index in range(bisect_left(starts, first), len(starts)):
            start = starts[index]
            if start >= end:
                break
            if start >= resume:      # else inside the phrase found before
                resume = self._longest_at(rules, start, found) or resume
        return found

    def _longest_at(self, rules, start: int, found: list) -> int | None:
        """The longest phrase whose first token starts at start (walking the phrase trie token by token,
        while only whitespace or hyphens stand between them), added to found; where it ends, or None."""
        masked = self.masked
        token = TOKEN.match(masked, start)
        words = [token.group().lower()]
        node = rules.trie.get(words[0])
        best, end = None, token.end()
        while node is not None:
            if node[0]:
                best = (end, len(words))
            if not node[1]:
                break
            token = TOKEN.search(masked, end)
            if token is None or masked[end:token.start()].strip(" \t\n\r-"):
                break
            words.append(token.group().lower())
            node = node[1].get(words[-1])
            end = token.end()
        if best is None:
            return None
        end, n = best
        for rule in rules.rules[" ".join(words[:n])]:
            found.append(Trigger(rule.category, rule.forward, rule.backward, rule.ends, start, end, masked[start:end]))
        return end

    def triggers_by_token(self) -> tuple[Trigger, ...]:
        """triggers, read token by token over the whole text (the reference the fast path keeps to)."""
        rules = context_rules()
        tokens = [(m.group().lower(), m.start(), m.end()) for m in TOKEN.finditer(self.masked)]
        found, i = [], 0
        while i < len(tokens):
            end = self._phrase_at(rules, tokens, i, found)
            if end is None:
                i += 1
            else:
                while i < len(tokens) and tokens[i][1] < end:
                    i += 1
        return tuple(found)

    def _phrase_at(self, rules, tokens, i: int, found: list) -> int | None:
        """The longest phrase starting at tokens[i], added to found; where it ends, or None."""
        for phrase in rules.by_first.get(tokens[i][0], ()):
            n = len(phrase)
            if tuple(t[0] for t in tokens[i:i + n]) == phrase and self._joined(tokens[i:i + n]):
                start, end = tokens[i][1], tokens[i + n - 1][2]
                for rule in rules.rules[" ".join(phrase)]:
                    found.append(Trigger(rule.category, rule.forward, rule.backward, rule.ends, start, end,
                                         self.masked[start:end]))
                return end
        return None

    def _joined(self, tokens) -> bool:
        """Only whitespace or hyphens between the words of a phrase."""
        return all(not self.masked[a[2]:b[1]].strip(" \t\n\r-") for a, b in zip(tokens, tokens[1:]))

    @_once
    def _token_starts(self) -> list[int] | None:
        return _first_tokens(context_rules(), self.masked)

    def _sentence_triggers(self, first: int, end: int) -> list[Trigger] | None:
        """The triggers that start in the sentence [first, end), its tokens scanned alone: what the whole
        text's scan finds there, since no phrase runs into a sentence that follows a "." or "!" (a
        phrase's words are joined by spaces and hyphens only). A note's readers ask about a few of its
        sentences (the rest are shared by key): the others are never scanned. None: ask the whole text
        (after a line break or a "?", for text the fast scan cannot take, or once that scan is made)."""
        if "triggers" in self.__dict__ or (first and self.masked[first - 1] in _JOINING_BOUNDS):
            return None
        found = self._by_sentence.get(first)
        if found is None:
            starts = self._token_starts
            if starts is None:
                return None
            found = self._by_sentence[first] = self._scan(starts, first, end)
        return found

    @_once
    def _trigger_ends(self) -> list[int]:
        """Where each trigger ends, in order: triggers never overlap, so ends rise with starts."""
        return [trigger.end for trigger in self.triggers]

    def _triggers_within(self, lo: int, hi: int):
        """The triggers that overlap [lo, hi), in order: those of its sentence when it lies in one that
        can be scanned alone (most asks: a mention's sentence), else found by bisection in the text's."""
        starts = self._starts
        index = bisect_right(starts, lo) - 1
        first = starts[index]
        end = starts[index + 1] - 1 if index + 1 < len(starts) else len(self.masked)
        own = self._sentence_triggers(first, end) if hi <= end else None
        if own is not None:
            for trigger in own:
                if trigger.start >= hi:
                    return
                if trigger.end > lo:
                    yield trigger
            return
        triggers = self.triggers
        for index in range(bisect_right(self._trigger_ends, lo), len(triggers)):
            trigger = triggers[index]
            if trigger.start >= hi:
                return
            yield trigger

    def _stops(self, category: str, lo: int, hi: int) -> bool:
        """A clause mark, or a termination for this category, between lo and hi."""
        between = self.masked[lo:hi]
        if any(mark in between for mark in _marks_of(category)):
            return True
        return any(t.category == "end" and ("*" in t.ends or category in t.ends) and lo <= t.start and t.end <= hi
                   for t in self._triggers_within(lo, hi))

    def trigger_of(self, start: int, end: int) -> Trigger | None:
        """The trigger that decides the mention at [start, end), if any."""
        lo, hi = self.sentence(start, end)
        best, distance, negation, family = None, None, None, None
        parenthesised = "(" in self.masked[lo:hi]
        for trigger in self._triggers_within(lo, hi):
            if trigger.category in ("pseudo", "end"):
                continue
            if trigger.start < end and start < trigger.end:
                continue     # part of the mention's own name
            if parenthesised and not self._same_brackets(trigger, start, end, lo, hi):
                continue
            label = _LABEL_COLON.match(self.masked, trigger.end, start) \
                if trigger.category == "negated" and trigger.end <= start else None
            if (trigger.forward or label) and trigger.end <= start \
                    and not self._stops(trigger.category, label.end() if label else trigger.end, start):
                gap = start - trigger.end
            elif trigger.backward and trigger.start >= end and not self._stops(trigger.category, end, trigger.start) \
                    and len(_WORD.findall(self.masked, end, trigger.start)) <= BACKWARD_WORDS:
                gap = trigger.start - end
            else:
                continue
            if distance is None or gap < distance:
                best, distance = trigger, gap
            if trigger.category == "negated" and negation is None:
                negation = trigger
            if trigger.category == "family" and family is None:
                family = trigger
        # A negation anywhere in reach outweighs a nearer history or hedge ("no prior fusion"); whose
        # finding it is outweighs when it happened ("father had a spinal tumor").
        return negation or family or best

    def _same_brackets(self, trigger: Trigger, start: int, end: int, lo: int, hi: int) -> bool:
        """A trigger inside brackets reaches only inside them: "Severe stenosis (previously moderate)" is
        today's severe stenosis, the bracket's "previously" a comparison."""
        masked = self.masked
        opened = masked.rfind("(", lo, trigger.start)
        if opened < 0 or masked.find(")", opened, trigger.start) >= 0:
            return True      # the trigger is in no bracket
        closed = masked.find(")", trigger.end, hi)
        return opened < start and end <= (closed if closed >= 0 else hi)

    def assertion(self, start: int, end: int) -> str:
        key = (start, end)
        found = self._assertions.get(key)
        if found is None:
            lo, hi = self.sentence(start, end)      # trigger_of's span: it holds the mention
            sentence = self.sentence_key(lo, hi)
            shared = (sentence, start - lo, end - lo) if sentence is not None else None
            found = SENTENCE_ASSERTIONS.get(shared) if shared is not None else None
            if found is None:
                found = self._assert(start, end)
                if shared is not None:
                    SENTENCE_ASSERTIONS[shared] = found
            self._assertions[key] = found
        return found

    def _assert(self, start: int, end: int) -> str:
        if self._valued_no(end) or self._unchecked(start, end):
            return "negated"
        trigger = self.trigger_of(start, end)
        if trigger is not None:
            return trigger.category
        section = self.section_at(start)
        return section.asserts if section is not None else "present"

    def _valued_no(self, end: int) -> bool:
        """The mention is a label whose value denies it: "Weakness: No.", "numbness - denies", "PT: none"
        (context.yaml label_values; the value ends its clause, so "pain - no radiation" is not one)."""
        return label_rules().negated.match(self.masked, end) is not None

    def _unchecked(self, start: int, end: int) -> bool:
        """The mention follows an unticked box: "[ ] weakness" states nothing of weakness (a form lists every
        choice; only the ticked ones are the patient's). context.yaml box_qualifiers."""
        lo = max(self.sentence(start, end)[0], start - 80)
        return label_rules().unticked.search(self.masked, lo, start) is not None

    def negated(self, start: int, end: int) -> bool:
        return self.assertion(start, end) == "negated"


# A denial written as a label ("Denies: fever, saddle anesthesia", "Negative for: weakness") heads the
# list after its colon: the colon that would end its clause is its own. Only a denial: a hedge or a plan
# ending a heading ("Assessment and Plan: L5 radiculopathy") heads a section, whose rules decide.
_LABEL_COLON = re.compile(r"[ \t]*:")


# A whole token (as TOKEN's tokenisation of the whole text has it) that starts here.
_TOKEN_AT = re.compile(r"(?<![a-z0-9])(?<![a-z0-9]['/])[a-z0-9]+(?:['/][a-z0-9]+)*", re.IGNORECASE)


_JOINERS = ("'", "/")     # what TOKEN keeps inside a token


def _first_tokens(rules, masked: str) -> list[int] | None:
    """Where a token that begins some phrase starts, in order; None: the text needs the token scan."""
    if not masked.isascii():
        return None
    starts = set()
    for end, (size, plain) in rules.firsts.iter(f" {spaced_words(masked)} "):
        start = end + 1 - size      # the word's start in masked (the spaced text has one more char before)
        if plain and masked[start - 1:start] not in _JOINERS and masked[end - 1:end] not in _JOINERS:
            starts.add(start)       # letters and digits between non-token characters: the token itself
            continue
        token = _TOKEN_AT.match(masked, start)
        if token is not None and token.group().lower() in rules.by_first:
            starts.add(start)
    if "?" in rules.by_first:
        at = masked.find("?")
        while at >= 0:
            starts.add(at)
            at = masked.find("?", at + 1)
    return sorted(starts)


def _headings(pattern: re.Pattern[str], folded: str):
    """pattern.finditer(folded) for section_rules' heading pattern, tried only where a heading may
    start: at a line's start or right after a sentence's end mark."""
    candidates = {0} | {m.end() for m in _HEADING_START.finditer(folded)}
    resume = 0
    for position in sorted(candidates):
        if position < resume:
            continue
        match = pattern.match(folded, position)
        if match is not None:
            resume = match.end()
            yield match


_HEADING_START = re.compile(r"\n|[.!?](?=[ \t])")


_JOINING_BOUNDS = ("\n", "?")


class SentenceMemo(dict):
    """A sentence reader's results by Document.sentence_key, for one chart: emptied with the text
    caches (fhir_mappings.build), so no patient's text outlives its request."""

    def cache_clear(self) -> None:
        self.clear()

    def cache_info(self) -> "MemoInfo":
        return MemoInfo(len(self))


class MemoInfo(NamedTuple):      # functools' cache_info, as much of it as a memo has
    currsize: int


# A mention's assertion by (its sentence's key, where it stands in the sentence): every reader of the
# chart asks for the assertions of the same sentences, and notes copied forward repeat them.
SENTENCE_ASSERTIONS = SentenceMemo()


@lru_cache(maxsize=None)
def _marks_of(category: str) -> tuple[str, ...]:
    """The marks that end a trigger's scope for a category: clause marks and its own terminations."""
    rules = context_rules()
    return tuple(rules.clause_marks | rules.category_marks.get(category, frozenset()))


@lru_cache(maxsize=4096)
def document(text: str) -> Document:
    """The reading of one text. Cached (charts repeat notes); fhir_mappings.build empties it per chart."""
    return Document(text)


def assertion_of(text: str, start: int, end: int) -> str:
    return document(text).assertion(start, end)
