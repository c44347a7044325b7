"""Vertebral levels written in free text: find them, order them, print them canonically.

Surgeons and radiologists write one level many ways ("L4-5", "L45", "L4/5", "L4 to L5",
"L4 on L5") and ranges that run into the pelvis ("T10-SACRUM/PELVIS"). Everything here
reduces those to three values:

* ``Vertebra``   one segment of C1..C7, T1..T12, L1..L5, S1..S5, then the pelvis
                 (a pseudo-segment so that "T10-pelvis" is an ordinary range);
* ``Interspace`` a mobile motion segment between adjacent vertebrae (C1-C2 .. L5-S1);
* ``LevelRange`` a run of vertebrae, "L4" or "L3-S1".

``find_levels`` keeps the character span of every mention so callers can scope negation
("no stenosis at L2-3") to the sentence the level sits in.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import ClassVar, Iterable

__all__ = [
    "Vertebra",
    "Interspace",
    "LevelRange",
    "LevelMention",
    "PELVIS",
    "find_levels",
    "parse_levels",
    "interspaces_in",
    "format_interspaces",
]

_REGION_SIZES = (("C", 7), ("T", 12), ("L", 5), ("S", 5))
_NAMES = tuple(f"{region}{n}" for region, size in _REGION_SIZES for n in range(1, size + 1)) + ("pelvis",)
_INDEX = {name: index for index, name in enumerate(_NAMES)}
_S1_INDEX = _INDEX["S1"]
_PELVIS_INDEX = _INDEX["pelvis"]


@dataclass(frozen=True, order=True, repr=False)
class Vertebra:
    """One segment; compares by its position in the craniocaudal sequence."""

    index: int
    PELVIS: ClassVar[Vertebra]

    def __post_init__(self) -> None:
        # bool is an int subclass; Vertebra(True) would silently be C2.
        if type(self.index) is not int or not 0 <= self.index < len(_NAMES):
            raise ValueError(f"no vertebra at index {self.index!r}")

    @classmethod
    def parse(cls, text: str) -> Vertebra:
        """"L4", "s1", "sacrum" (S1), "pelvis"/"ilium"/"iliac"/"pelvic" (the pelvis)."""
        match = _VERTEBRA_RE.fullmatch(text.strip())
        vertebra = _endpoint_of(match, "v") if match else None
        if vertebra is None:
            raise ValueError(f"not a vertebral level: {text!r}")
        return vertebra

    @property
    def region(self) -> str:
        """"C", "T", "L", "S", or "pelvis"."""
        return _NAMES[self.index].rstrip("0123456789")

    @property
    def number(self) -> int | None:
        """4 for L4; None for the pelvis, which has no number."""
        digits = _NAMES[self.index].lstrip("CTLS")
        return int(digits) if digits.isdigit() else None

    @property
    def is_pelvis(self) -> bool:
        return self.index == _PELVIS_INDEX

    def __str__(self) -> str:
        return _NAMES[self.index]

    def __repr__(self) -> str:
        return f"Vertebra({str(self)!r})"


PELVIS = Vertebra(_PELVIS_INDEX)
Vertebra.PELVIS = PELVIS
_S1 = Vertebra(_S1_INDEX)


def _lettered(region: str, digits: str) -> Vertebra | None:
    """The vertebra "L" + "4"; None for numbers no spine has (L7, T13, C8, L04)."""
    # .upper() also folds the long s "ſ", which re.IGNORECASE lets through as "s".
    index = _INDEX.get(region.upper() + digits)
    return None if index is None else Vertebra(index)


@dataclass(frozen=True, order=True)
class Interspace:
    """A mobile motion segment: two adjacent vertebrae, C1-C2 down to L5-S1."""

    upper: Vertebra
    lower: Vertebra

    def __post_init__(self) -> None:
        if not (isinstance(self.upper, Vertebra) and isinstance(self.lower, Vertebra)):
            raise TypeError("an interspace joins two Vertebra values")
        # The sacrum is fused and the pelvis is not a disc: nothing moves below S1.
        if self.lower.index != self.upper.index + 1 or self.lower.index > _S1_INDEX:
            raise ValueError(f"no mobile interspace between {self.upper} and {self.lower}")

    @classmethod
    def parse(cls, text: str) -> Interspace:
        """"L4-5", "L4-L5", "L45", "L5/S1", "L5S1", "L4 on L5" -> that interspace."""
        level_range = LevelRange.parse(text)
        if level_range.segment_count != 2:
            raise ValueError(f"not a single interspace: {text!r}")
        return cls(level_range.start, level_range.end)

    def __str__(self) -> str:
        return f"{self.upper}-{self.lower}"


@functools.cache
def _interspaces_between(start: int, end: int) -> tuple[Interspace, ...]:
    # A range ending anywhere in the sacrum or at the pelvis still crosses L5-S1.
    last = min(end, _S1_INDEX)
    return tuple(Interspace(Vertebra(i), Vertebra(i + 1)) for i in range(start, last))


@dataclass(frozen=True, order=True)
class LevelRange:
    """Vertebrae ``start`` through ``end`` inclusive; a single vertebra has start == end."""

    start: Vertebra
    end: Vertebra

    def __post_init__(self) -> None:
        if not (isinstance(self.start, Vertebra) and isinstance(self.end, Vertebra)):
            raise TypeError("a level range runs between two Vertebra values")
        if self.start > self.end:
            raise ValueError(f"range end {self.end} is above its start {self.start}")

    @classmethod
    def between(cls, a: Vertebra, b: Vertebra) -> LevelRange:
        """The range spanning a and b in whichever order they were written."""
        return cls(min(a, b), max(a, b))

    @classmethod
    def single(cls, vertebra: Vertebra) -> LevelRange:
        return cls(vertebra, vertebra)

    @classmethod
    def parse(cls, text: str) -> LevelRange:
        """Exactly one level written alone ("L3-S1", "T10 to the pelvis")."""
        stripped = text.strip()
        mentions = find_levels(stripped)
        if len(mentions) != 1 or mentions[0].text != stripped:
            raise ValueError(f"not a single vertebral level or range: {text!r}")
        return mentions[0].range

    @classmethod
    def from_interspaces(cls, interspaces: Iterable[Interspace]) -> LevelRange:
        """The smallest range covering every interspace given."""
        spaces = list(interspaces)
        if not spaces:
            raise ValueError("no interspaces to cover")
        return cls(min(s.upper for s in spaces), max(s.lower for s in spaces))

    def interspaces(self) -> tuple[Interspace, ...]:
        return _interspaces_between(self.start.index, self.end.index)

    def vertebrae(self) -> tuple[Vertebra, ...]:
        return tuple(Vertebra(i) for i in range(self.start.index, self.end.index + 1))

    @property
    def segment_count(self) -> int:
        """Vertebrae in the range, the pelvis counting as one (T10-pelvis is 14)."""
        return self.end.index - self.start.index + 1

    @property
    def includes_pelvis(self) -> bool:
        return self.end.is_pelvis

    @property
    def includes_sacrum(self) -> bool:
        return self.end.index >= _S1_INDEX

    def contains(self, item: Vertebra | Interspace) -> bool:
        if isinstance(item, Interspace):
            return item in self.interspaces()
        if isinstance(item, Vertebra):
            return self.start <= item <= self.end
        raise TypeError(f"a level range holds vertebrae and interspaces, not {type(item).__name__}")

    __contains__ = contains

    def __str__(self) -> str:
        if self.start == self.end:
            return str(self.start)
        return f"{self.start}-{self.end}"


@dataclass(frozen=True, order=True)
class LevelMention:
    """One level written in a text; ``text == searched[start:end]``."""

    range: LevelRange
    start: int
    end: int
    text: str


# --- Recognising levels in free text -------------------------------------------------

_DASHES = "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212"  # hyphen, en/em dash, minus sign ...
_SEP = rf"(?:\s*[{_DASHES}/]\s*|\s+(?:to|through|thru)\s+(?:the\s+)?)"
# "sacrum/pelvis", "sacropelvic", "sacrum and ilium" all end a construct at the pelvis.
_PELVIS_WORDS = r"(?:sacr(?:um|al|o)\s*(?:[/&+-]|and)?\s*)?(?:pelvis|pelvic|ilium|iliac|ilia)"
_SACRUM_WORDS = r"(?:sacrum|sacral)"


def _lettered_level(p: str) -> str:
    """"L4", "T12"; group names carry the prefix p because Python forbids repeating them."""
    return rf"(?P<{p}r>[CTLS])(?P<{p}n>[0-9]{{1,2}})"


def _endpoint(p: str) -> str:
    """Any fully written vertebra, anatomical words included."""
    return rf"(?:{_lettered_level(p)}|(?P<{p}pelvis>{_PELVIS_WORDS})|(?P<{p}sacrum>{_SACRUM_WORDS}))"


# A level must stand alone: no letter, digit or "_" either side, and no ".2" after it, which
# is what keeps ICD-10 codes (T84.216A, S33.6XXA), identifiers and CPT numbers out.
_BEFORE = r"(?<!\w)"
_AFTER = r"(?!\w|\.[0-9])"

_MENTION_RE = re.compile(
    rf"""{_BEFORE}
    (?:
        (?P<gr>[CL])(?P<ga>[1-7])(?P<gb>[1-7])              # L45, C56: two glued digits
      | {_lettered_level("a")}
        (?:
            (?:{_SEP})?{_lettered_level("b")}               # L4-L5, L5S1, T12 to L1
          | {_SEP}(?P<short>[0-9]{{1,2}})                   # L4-5, L1-5 (same region)
          | {_SEP}(?P<bpelvis>{_PELVIS_WORDS})              # T10-SACRUM/PELVIS
          | {_SEP}(?P<bsacrum>{_SACRUM_WORDS})              # L4 to the sacrum
          | \s+on\s+{_lettered_level("on")}                 # (listhesis of) L4 on L5
          | (?!\s*[{_DASHES}/]\s*[0-9])                      # alone, unless a bad "L5-1" trails
        )
      | (?P<spelvis>(?:sacrum\s*/\s*)?pelvis)               # alone, only the canonical nouns:
      | (?P<ssacrum>sacrum)                                 # "pelvic"/"iliac" are too often not levels
    ){_AFTER}""",
    re.IGNORECASE | re.VERBOSE,
)
_VERTEBRA_RE = re.compile(_endpoint("v"), re.IGNORECASE)
_SEP_RE = re.compile(_SEP, re.IGNORECASE)

# "T1"/"T2" are also MRI weightings ("T2 hyperintense", "sagittal T1", "T1/T2 signal").
_MRI_AFTER = re.compile(
    r"(?:\s*(?:and|or|/|,)\s*T[12])?[\s-]*"
    r"(?:\*|w(?:eighted|i)?\b|signal|(?:hyper|hypo|iso)-?intens|bright|dark|images?\b|imaging|"
    r"sequences?\b|flair|stir|fat[\s-]*(?:sat|supp)|(?:pre|post)[\s-]*(?:contrast|gad))",
    re.IGNORECASE,
)
_MRI_BEFORE = re.compile(
    r"\b(?:on|sagittal|axial|coronal|stir|flair|dixon|weighted)"
    r"(?:\s+T[12]\s*(?:and|or|,)?)?[\s/,-]*\Z",
    re.IGNORECASE,
)
_MRI_WEIGHTINGS = frozenset({"T1", "T2"})


def _endpoint_of(match: re.Match, p: str) -> Vertebra | None:
    if match[f"{p}pelvis"]:
        return PELVIS
    if match[f"{p}sacrum"]:
        return _S1
    return _lettered(match[f"{p}r"], match[f"{p}n"])


def _glued(match: re.Match) -> LevelRange | None:
    upper = _lettered(match["gr"], match["ga"])
    lower = _lettered(match["gr"], match["gb"])
    # "L35" could be a typo for anything; only adjacent glued digits are a level.
    if upper is None or lower is None or lower.index != upper.index + 1:
        return None
    return LevelRange(upper, lower)


def _shorthand_end(first: Vertebra, digits: str) -> Vertebra | None:
    end = _lettered(first.region, digits)
    # "L1-5" counts down within L; "L5-1" or "T12-1" would be a guess, so it is no level.
    return end if end is not None and end > first else None


def _range_of(match: re.Match) -> LevelRange | None:
    if match["gr"]:
        return _glued(match)
    if match["spelvis"]:
        return LevelRange.single(PELVIS)
    if match["ssacrum"]:
        return LevelRange.single(_S1)
    first = _lettered(match["ar"], match["an"])
    if first is None:
        return None
    if match["br"]:
        last = _lettered(match["br"], match["bn"])
    elif match["short"]:
        last = _shorthand_end(first, match["short"])
    elif match["bpelvis"]:
        last = PELVIS
    elif match["bsacrum"]:
        last = _S1
    else:
        last = first
    return None if last is None else LevelRange.between(first, last)


def _token_mention(match: re.Match, p: str) -> list[LevelMention]:
    vertebra = _lettered(match[f"{p}r"], match[f"{p}n"])
    if vertebra is None:
        return []
    start, end = match.start(f"{p}r"), match.end(f"{p}n")
    return [LevelMention(LevelRange.single(vertebra), start, end, match.string[start:end])]


def _on_mentions(match: re.Match) -> list[LevelMention]:
    """"L4 on L5" names the slipped motion segment; "L3 on L5" is just two vertebrae."""
    first = _lettered(match["ar"], match["an"])
    second = _lettered(match["onr"], match["onn"])
    if first is not None and second is not None and abs(first.index - second.index) == 1:
        return [LevelMention(LevelRange.between(first, second), match.start(), match.end(), match[0])]
    return _token_mention(match, "a") + _token_mention(match, "on")


def _mentions_of(match: re.Match) -> list[LevelMention]:
    if match["onr"]:
        return _on_mentions(match)
    level_range = _range_of(match)
    if level_range is None:
        return []
    return [LevelMention(level_range, match.start(), match.end(), match[0])]


def _is_mri_weighting(mention: LevelMention, text: str) -> bool:
    if {str(mention.range.start), str(mention.range.end)} - _MRI_WEIGHTINGS:
        return False
    if _MRI_AFTER.match(text, mention.end):
        return True
    return bool(_MRI_BEFORE.search(text, max(0, mention.start - 40), mention.start))


def _continues(previous: LevelMention, mention: LevelMention, text: str) -> bool:
    """"L4/L5/S1", "L4-5-S1": a lone vertebra right after a range, one step further down."""
    if mention.range.segment_count != 1 or not _SEP_RE.fullmatch(text, previous.end, mention.start):
        return False
    last, vertebra = previous.range.end, mention.range.start
    return vertebra.index == last.index + 1 or (vertebra.is_pelvis and last.index >= _S1_INDEX)


def _join_continuations(mentions: list[LevelMention], text: str) -> list[LevelMention]:
    joined: list[LevelMention] = []
    for mention in mentions:
        if joined and _continues(joined[-1], mention, text):
            previous = joined.pop()
            span = LevelRange(previous.range.start, mention.range.end)
            mention = LevelMention(span, previous.start, mention.end, text[previous.start:mention.end])
        joined.append(mention)
    return joined


def find_levels(text: str) -> list[LevelMention]:
    """Every vertebral level or range written in text, in order of appearance."""
    mentions = [m for match in _MENTION_RE.finditer(text) for m in _mentions_of(match)]
    mentions = [m for m in mentions if not _is_mri_weighting(m, text)]
    return _join_continuations(mentions, text)


def parse_levels(text: str) -> list[LevelRange]:
    return [mention.range for mention in find_levels(text)]


def interspaces_in(text: str) -> tuple[Interspace, ...]:
    """Sorted, distinct interspaces of every range in text; lone vertebrae add none."""
    return tuple(sorted({space for r in parse_levels(text) for space in r.interspaces()}))


def format_interspaces(interspaces: Iterable[Interspace]) -> str:
    """{L3-L4, L4-L5, L5-S1} -> "L3-S1"; {L2-L3, L4-L5} -> "L2-L3, L4-L5"."""
    runs: list[list[Interspace]] = []
    for space in sorted(set(interspaces)):
        if runs and runs[-1][-1].lower == space.upper:
            runs[-1].append(space)
        else:
            runs.append([space])
    return ", ".join(str(LevelRange.from_interspaces(run)) for run in runs)
