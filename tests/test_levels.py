"""Vertebral levels in free text: forms, spans, ordering, interspaces, round trips."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from terminology.levels import (
    PELVIS,
    Interspace,
    LevelMention,
    LevelRange,
    Vertebra,
    find_levels,
    format_interspaces,
    interspaces_in,
    parse_levels,
)

ALL_VERTEBRAE = [Vertebra(i) for i in range(30)]
MOBILE_INTERSPACES = [Interspace(ALL_VERTEBRAE[i], ALL_VERTEBRAE[i + 1]) for i in range(24)]


def v(name: str) -> Vertebra:
    return Vertebra.parse(name)


def rng(text: str) -> LevelRange:
    return LevelRange.parse(text)


def names(items) -> list[str]:
    return [str(item) for item in items]


# --- forms ----------------------------------------------------------------------------

FORMS = [
    ("L4-L5", ["L4-L5"]),
    ("L4-5", ["L4-L5"]),
    ("L45", ["L4-L5"]),
    ("C56", ["C5-C6"]),
    ("L4/5", ["L4-L5"]),
    ("L4 - L5", ["L4-L5"]),
    ("L4 to L5", ["L4-L5"]),
    ("l4-5", ["L4-L5"]),
    ("L5/S1", ["L5-S1"]),
    ("L5-S1", ["L5-S1"]),
    ("L5S1", ["L5-S1"]),
    ("l5s1", ["L5-S1"]),
    ("L3 to S1", ["L3-S1"]),
    ("L3 through S1", ["L3-S1"]),
    ("L3 thru S1", ["L3-S1"]),
    ("L3 TO S1", ["L3-S1"]),
    ("L3\u00a0to\u00a0S1", ["L3-S1"]),
    ("L1-5", ["L1-L5"]),
    ("L2-L4", ["L2-L4"]),
    ("T10-pelvis", ["T10-pelvis"]),
    ("T10-SACRUM/PELVIS", ["T10-pelvis"]),
    ("T10 to the pelvis", ["T10-pelvis"]),
    ("T10-ilium", ["T10-pelvis"]),
    ("T10 to iliac", ["T10-pelvis"]),
    ("T4 to the sacrum", ["T4-S1"]),
    ("T12-S2", ["T12-S2"]),
    ("T12\u2013S2", ["T12-S2"]),
    ("T12\u2014S2", ["T12-S2"]),
    ("L4\u20135", ["L4-L5"]),
    ("L4", ["L4"]),
    ("L5 vertebra", ["L5"]),
    ("L5 nerve root", ["L5"]),
    ("L3-4, L4-5 and L5-S1", ["L3-L4", "L4-L5", "L5-S1"]),
    ("L2-3 and L3-4", ["L2-L3", "L3-L4"]),
    ("L1-S1", ["L1-S1"]),
    ("L4-L5 and L5-S1 levels", ["L4-L5", "L5-S1"]),
    ("C7-T1", ["C7-T1"]),
    ("T12-L1", ["T12-L1"]),
    ("T11-12", ["T11-T12"]),
    ("C1-2", ["C1-C2"]),
    ("C3-7 laminoplasty", ["C3-C7"]),
    ("L5-L3", ["L3-L5"]),                      # reversed: normalised, not dropped
    ("S1-pelvis", ["S1-pelvis"]),
    ("L4/L5/S1 pedicle screws", ["L4-S1"]),    # a trailing adjacent vertebra extends the range
    ("L4-5-S1", ["L4-S1"]),
    ("L2-3/L4-5", ["L2-L3", "L4-L5"]),         # two ranges are never merged
    ("Grade 1 anterolisthesis of L4 on L5", ["L4-L5"]),
    ("retrolisthesis of L3 on L4.", ["L3-L4"]),
    ("L3 on L5", ["L3", "L5"]),                # not adjacent: two vertebrae, no interspace
    ("PSF T10-SACRUM/PELVIS with L5-S1 posterior osteotomy", ["T10-pelvis", "L5-S1"]),
    ("prior L1-5 fusion", ["L1-L5"]),
    ("decompression L1-S1 with fusion T12-S2", ["L1-S1", "T12-S2"]),
    ("L4-5 TLIF", ["L4-L5"]),
    ("fracture at T1-T2", ["T1-T2"]),
    ("(L4-5)", ["L4-L5"]),
    ("stenosis at L4-5.", ["L4-L5"]),
]


@pytest.mark.parametrize("text, expected", FORMS)
def test_forms(text, expected):
    assert names(parse_levels(text)) == expected


@pytest.mark.parametrize("text, expected", FORMS)
def test_mention_text_is_its_span(text, expected):
    for mention in find_levels(text):
        assert text[mention.start:mention.end] == mention.text


INTERSPACES = [
    ("Grade 1 anterolisthesis of L4 on L5", ["L4-L5"]),
    ("L3-4, L4-5 and L5-S1", ["L3-L4", "L4-L5", "L5-S1"]),
    ("L5-S1 and L4-5 and L4-L5", ["L4-L5", "L5-S1"]),
    ("T10-SACRUM/PELVIS", ["T10-T11", "T11-T12", "T12-L1", "L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]),
    ("L4", []),
    ("L4 and L5", []),
    ("S1-S3", []),
    ("C1-2", ["C1-C2"]),
    ("", []),
]


@pytest.mark.parametrize("text, expected", INTERSPACES)
def test_interspaces_in(text, expected):
    assert names(interspaces_in(text)) == expected


def test_negation_sentence_spans():
    text = "No significant canal or foraminal stenosis at L2-3 and L3-4."
    assert find_levels(text) == [
        LevelMention(rng("L2-L3"), 46, 50, "L2-3"),
        LevelMention(rng("L3-L4"), 55, 59, "L3-4"),
    ]


def test_on_pattern_span_covers_both_vertebrae():
    text = "Grade 1 anterolisthesis of L4 on L5"
    [mention] = find_levels(text)
    assert (mention.start, mention.end, mention.text) == (27, 35, "L4 on L5")


def test_non_adjacent_on_pattern_keeps_each_vertebra_span():
    assert [(m.start, m.end, m.text) for m in find_levels("L3 on L5")] == [(0, 2, "L3"), (6, 8, "L5")]


# --- things that are not levels -------------------------------------------------------

NOT_LEVELS = [
    "T84.216A",
    "M43.16",
    "M48.062",
    "S33.6XXA",
    "T84.2",
    "CPT 22630",
    "22612, 22614, 63047",
    "Lumbar",
    "TLIF",
    "PLIF",
    "ALIF",
    "XLIF",
    "L-spine",
    "LS spine",
    "S1Q",
    "L4x",
    "XL4",
    "4L4",
    "L4.5",
    "L4_5",
    "L7",
    "L6",
    "T13",
    "C8",
    "S6",
    "L0",
    "L5-1",          # shorthand must count down within the region; no guessing L5-S1
    "T12-1",
    "L4-13",
    "L35",           # glued digits must be adjacent
    "iliac crest bone graft",
    "pelvic incidence",
    "sacral slope",
    "sacroiliac joint",
    "T2 hyperintense signal",
    "T2-weighted images",
    "sagittal T1 and T2 weighted",
    "hyperintense on T1 and T2",
    "T1/T2 signal",
    "T2* blooming",
    "coccyx",
]


@pytest.mark.parametrize("text", NOT_LEVELS)
def test_not_levels(text):
    assert find_levels(text) == []


def test_icd_code_next_to_a_real_level():
    text = "Dx M43.16 spondylolisthesis L4-5; S33.6XXA"
    assert names(parse_levels(text)) == ["L4-L5"]


def test_pelvis_alone_is_a_single_pseudo_vertebra():
    assert parse_levels("CT abdomen/pelvis") == [LevelRange.single(PELVIS)]
    assert interspaces_in("CT abdomen/pelvis") == ()


# --- Vertebra -------------------------------------------------------------------------

def test_sequence_and_names():
    assert names(ALL_VERTEBRAE) == (
        [f"C{n}" for n in range(1, 8)] + [f"T{n}" for n in range(1, 13)]
        + [f"L{n}" for n in range(1, 6)] + [f"S{n}" for n in range(1, 6)] + ["pelvis"]
    )
    assert ALL_VERTEBRAE == sorted(ALL_VERTEBRAE, key=lambda x: x.index)
    assert v("C7") < v("T1") < v("T12") < v("L1") < v("L5") < v("S1") < v("S5") < PELVIS
    assert Vertebra.PELVIS is PELVIS and PELVIS.is_pelvis


@pytest.mark.parametrize("text, expected", [
    ("L4", "L4"), ("l4", "L4"), (" T12 ", "T12"), ("sacrum", "S1"), ("Sacral", "S1"),
    ("pelvis", "pelvis"), ("ILIUM", "pelvis"), ("iliac", "pelvis"), ("pelvic", "pelvis"),
    ("sacrum/pelvis", "pelvis"),
])
def test_vertebra_parse(text, expected):
    assert str(Vertebra.parse(text)) == expected


@pytest.mark.parametrize("text", ["coccyx", "L6", "T13", "C8", "S6", "", "L4-5", "L", "4"])
def test_vertebra_parse_rejects(text):
    with pytest.raises(ValueError):
        Vertebra.parse(text)


def test_vertebra_attributes_and_invalid_index():
    assert (v("L4").region, v("L4").number) == ("L", 4)
    assert (PELVIS.region, PELVIS.number) == ("pelvis", None)
    for bad in (-1, 30, True):
        with pytest.raises(ValueError):
            Vertebra(bad)


def test_values_are_hashable():
    assert len({v("L4"), Vertebra.parse("l4"), rng("L4-5"), rng("L4-L5"), Interspace.parse("L45")}) == 3


# --- Interspace -----------------------------------------------------------------------

@pytest.mark.parametrize("text", ["L4-5", "L4-L5", "L45", "L4/5", "l4 to l5", "L4 on L5"])
def test_interspace_parse(text):
    assert Interspace.parse(text) == Interspace(v("L4"), v("L5"))


@pytest.mark.parametrize("text, expected", [("L5/S1", "L5-S1"), ("L5S1", "L5-S1"), ("T12-L1", "T12-L1"),
                                            ("C7-T1", "C7-T1"), ("C1-2", "C1-C2")])
def test_interspace_parse_cross_region(text, expected):
    assert str(Interspace.parse(text)) == expected


@pytest.mark.parametrize("text", ["L3-5", "S1-S2", "L4", "L4-5 and L5-S1", "S1-pelvis", "L5-1", "at L4-5"])
def test_interspace_parse_rejects(text):
    with pytest.raises(ValueError):
        Interspace.parse(text)


@pytest.mark.parametrize("upper, lower", [("S1", "S2"), ("S5", "pelvis"), ("L3", "L5"), ("L5", "L4"), ("L4", "L4")])
def test_no_such_interspace(upper, lower):
    with pytest.raises(ValueError):
        Interspace(v(upper), v(lower))


def test_interspaces_order_craniocaudally():
    assert sorted(MOBILE_INTERSPACES, reverse=True)[::-1] == MOBILE_INTERSPACES
    assert str(MOBILE_INTERSPACES[0]) == "C1-C2" and str(MOBILE_INTERSPACES[-1]) == "L5-S1"


# --- LevelRange -----------------------------------------------------------------------

def test_range_rejects_reversed_but_between_swaps():
    with pytest.raises(ValueError):
        LevelRange(v("L5"), v("L3"))
    assert LevelRange.between(v("L5"), v("L3")) == rng("L3-L5")


@pytest.mark.parametrize("text, count", [("T10-pelvis", 8), ("L3-S1", 3), ("T12-S2", 6), ("L4", 0),
                                         ("S1-pelvis", 0), ("L5-S3", 1), ("C2-T1", 6)])
def test_interspace_counts(text, count):
    assert len(rng(text).interspaces()) == count


def test_pelvic_range_interspaces_stop_at_l5_s1():
    assert names(rng("T10-pelvis").interspaces()) == [
        "T10-T11", "T11-T12", "T12-L1", "L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]
    assert names(rng("L3-S1").interspaces()) == ["L3-L4", "L4-L5", "L5-S1"]


def test_range_properties():
    pelvic = rng("T10-pelvis")
    assert pelvic.includes_pelvis and pelvic.includes_sacrum
    assert rng("L5-S1").includes_sacrum and not rng("L5-S1").includes_pelvis
    assert not rng("L1-L5").includes_sacrum
    assert rng("L4").segment_count == 1 and rng("L3-S1").segment_count == 4
    assert pelvic.segment_count == len(pelvic.vertebrae()) == 14
    assert names(rng("L4-S1").vertebrae()) == ["L4", "L5", "S1"]


def test_contains():
    pelvic = rng("T10-pelvis")
    assert pelvic.contains(Interspace.parse("L5-S1")) and Interspace.parse("T10-11") in pelvic
    assert not pelvic.contains(Interspace.parse("T9-10"))
    assert pelvic.contains(v("S3")) and pelvic.contains(PELVIS) and not pelvic.contains(v("T9"))
    assert not rng("S1-pelvis").contains(Interspace.parse("L5-S1"))
    with pytest.raises(TypeError):
        pelvic.contains("L4")


def test_from_interspaces():
    spaces = [Interspace.parse("L4-5"), Interspace.parse("L2-3")]
    assert LevelRange.from_interspaces(spaces) == rng("L2-L5")
    assert LevelRange.from_interspaces(iter([Interspace.parse("L5-S1")])) == rng("L5-S1")
    with pytest.raises(ValueError):
        LevelRange.from_interspaces([])


def test_str():
    assert str(rng("L4")) == "L4"
    assert str(LevelRange(v("T10"), PELVIS)) == "T10-pelvis"
    assert str(LevelRange.single(PELVIS)) == "pelvis"


# --- format_interspaces ---------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("L3-4, L4-5, L5-S1", "L3-S1"),
    ("L4-5, L2-3", "L2-L3, L4-L5"),
    ("L4-5 L4-5", "L4-L5"),
    ("C5-6, C6-7, C7-T1, L4-5", "C5-T1, L4-L5"),
    ("T10-pelvis", "T10-S1"),
    ("", ""),
])
def test_format_interspaces(text, expected):
    assert format_interspaces(interspaces_in(text)) == expected


# --- properties -----------------------------------------------------------------------

level_ranges = st.tuples(st.sampled_from(ALL_VERTEBRAE), st.sampled_from(ALL_VERTEBRAE)).map(
    lambda pair: LevelRange.between(*pair))
fragments = st.sampled_from([
    "L", "T", "C", "S", "l", "4", "5", "1", "12", "-", "\u2013", "/", " ", ".", ",", " to ", " on ",
    " the ", "pelvis", "sacrum", "ilium", "X", "A", "T84.216A", "L4-5", "L5-S1", "T2 ", "weighted", "\n",
])
messy_text = st.lists(fragments | st.text(max_size=4), max_size=30).map("".join)


@given(level_ranges)
def test_printed_range_parses_back(level_range):
    assert parse_levels(str(level_range)) == [level_range]
    assert LevelRange.parse(str(level_range)) == level_range


@given(st.sets(st.sampled_from(MOBILE_INTERSPACES)))
def test_formatted_interspaces_parse_back(spaces):
    assert interspaces_in(format_interspaces(spaces)) == tuple(sorted(spaces))


@given(st.text() | messy_text)
def test_find_levels_never_raises_and_spans_are_sound(text):
    mentions = find_levels(text)
    previous_end = 0
    for mention in mentions:
        assert text[mention.start:mention.end] == mention.text
        assert previous_end <= mention.start < mention.end
        previous_end = mention.end


@given(st.text(max_size=20), level_ranges, st.text(max_size=20))
def test_range_found_between_separating_words(before, level_range, after):
    text = f"{before} fusion {level_range} planned {after}"
    assert level_range in parse_levels(text)
