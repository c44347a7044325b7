"""The assertion and section rule tables (terminology/data/text/*.yaml), compiled once by the one
phrase compiler (terminology.phrases)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

import ahocorasick
import yaml

from terminology.phrases import compile_phrases

ASSERTIONS = ("present", "negated", "possible", "hypothetical", "historical", "family", "counselling")
_GAP = re.compile(r"[\s\-]+")


def phrase_key(words: str) -> str:
    """How a phrase and the text it matched are compared: lower case, one space for any gap."""
    return " ".join(w for w in _GAP.split(words.lower().strip()) if w)


def _load(name: str) -> dict:
    path = resources.files("terminology").joinpath("data", "text", name)
    return yaml.safe_load(path.read_text("utf-8"))


def load_text_data(name: str) -> dict:
    """Another vocabulary file of terminology/data/text (phrase lists checked like the rule tables')."""
    data = _load(name)
    for key, value in data.items():
        if isinstance(value, list) and value and not isinstance(value[0], list):
            _phrases(value, f"{name} {key}")
    return data


def _phrases(items, where: str) -> list[str]:
    """A phrase list; YAML reads a bare no/yes/on/off as a boolean, so each must come back a string."""
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"{where}: {item!r} is not a string (quote it in the YAML)")
    return list(items)


@dataclass(frozen=True)
class Rule:
    category: str      # an assertion, "pseudo", or "end" (a termination)
    forward: bool      # reaches mentions after it
    backward: bool     # reaches mentions before it
    ends: frozenset[str] = frozenset()   # termination: the categories whose scope it ends ("*": all)


# The words of a text as trigger phrases see them: letters and digits, kept together across "/" and
# "'" ("s/p", "mother's"), and "?" on its own. Phrases are matched as runs of these tokens separated by
# whitespace or hyphens only: the one phrase compiler's rules (terminology.phrases), read token by
# token so that hundreds of triggers cost one pass over the words, not one regex branch per position.
TOKEN = re.compile(r"[a-z0-9]+(?:['/][a-z0-9]+)*|\?", re.IGNORECASE)


_SPACED = bytes(ord(c.lower()) if c.isascii() and c.isalnum() else ord(" ") for c in map(chr, range(256)))


def spaced_words(ascii_text: str) -> str:
    """The text lower-cased with every character but a letter or digit a space (same length): a word
    is then found whole by looking for " word " (Aho-Corasick has no word bounds)."""
    return ascii_text.encode("ascii").translate(_SPACED).decode("ascii")


@dataclass(frozen=True)
class ContextRules:
    pattern: re.Pattern
    rules: dict[str, tuple[Rule, ...]]   # phrase_key -> rules
    clause_marks: frozenset[str]
    category_marks: dict[str, frozenset[str]]
    by_first: dict[str, tuple[tuple[str, ...], ...]]   # first token -> phrases (as tokens), longest first
    firsts: ahocorasick.Automaton                      # " word " of every first token (spaced_words' form)
    trie: dict          # token -> (a phrase ends here, {next token -> ...}): the phrases token by token


@cache
def context_rules() -> ContextRules:
    data = _load("context.yaml")
    rules: dict[str, list[Rule]] = {}
    for category, directions in data["triggers"].items():
        if category not in ASSERTIONS:
            raise ValueError(f"context.yaml: unknown assertion {category!r}")
        for direction, phrases in directions.items():
            for phrase in _phrases(phrases, f"context.yaml {category}"):
                rules.setdefault(phrase_key(phrase), []).append(
                    Rule(category, direction == "forward", direction == "backward"))
    for phrase in _phrases(data["pseudo"], "context.yaml pseudo"):
        rules[phrase_key(phrase)] = [Rule("pseudo", False, False)]
    for scope, phrases in data["terminations"].items():
        for phrase in _phrases(phrases, f"context.yaml terminations {scope}"):
            key = phrase_key(phrase)
            if key in rules and rules[key][0].category != "end":
                continue    # a trigger of its own ("now" is no trigger, but keep the table honest)
            ends = frozenset({"*"} if scope == "all" else {scope})
            old = rules.get(key, [Rule("end", False, False)])[0]
            rules[key] = [Rule("end", False, False, old.ends | ends)]
    merged = {key: _merge(found) for key, found in rules.items()}
    marks = {category: frozenset(found) for category, found in (data.get("category_marks") or {}).items()}
    by_first: dict[str, list[tuple[str, ...]]] = {}
    for key in merged:
        tokens = tuple(TOKEN.findall(key))
        if " ".join(tokens) != key:
            raise ValueError(f"context.yaml: {key!r} is not a run of words")
        by_first.setdefault(tokens[0], []).append(tokens)
    index = {first: tuple(sorted(found, key=len, reverse=True)) for first, found in by_first.items()}
    firsts = ahocorasick.Automaton()
    for first in index:
        if first != "?":
            spaced = f" {spaced_words(first)} "
            firsts.add_word(spaced, (len(spaced), first.isalnum()))
    firsts.make_automaton()
    return ContextRules(compile_phrases(rules), merged, frozenset(data.get("clause_marks", ())), marks, index,
                        firsts, _trie(p for found in index.values() for p in found))


def _trie(phrases) -> dict:
    root: dict = {}
    for phrase in phrases:
        level, node = root, None
        for token in phrase:
            node = level.setdefault(token, [False, {}])
            level = node[1]
        node[0] = True
    return root


def _merge(found: list[Rule]) -> tuple[Rule, ...]:
    by_category: dict[tuple[str, frozenset], Rule] = {}
    for rule in found:
        key = (rule.category, rule.ends)
        old = by_category.get(key)
        by_category[key] = rule if old is None else Rule(rule.category, old.forward or rule.forward,
                                                          old.backward or rule.backward, rule.ends)
    return tuple(by_category.values())


@dataclass(frozen=True)
class LabelRules:
    negated: re.Pattern     # matched where a mention ends: a separator, then a value that denies it
    unticked: re.Pattern    # searched up to where a mention starts: an empty box, then qualifiers only


@cache
def label_rules() -> LabelRules:
    """context.yaml label_values: "Weakness: No", "numbness - denies", "Tobacco: never". The value follows
    the mention's colon or dash and ends its clause (a comma, ".", ";", ")", a line's end)."""
    data = _load("context.yaml")
    values = compile_phrases(_phrases(data["label_values"]["negated"], "context.yaml label_values")).pattern
    qualifiers = compile_phrases(_phrases(data["box_qualifiers"], "context.yaml box_qualifiers")).pattern
    return LabelRules(re.compile(rf"[ \t]*(?::|-{{1,2}}|=)[ \t]*{values}[ \t]*(?=[.,;)\n]|\Z)", re.IGNORECASE),
                      re.compile(rf"(?:\[ ?\]|\u2610|\u25a1)[ \t]*(?:{qualifiers}[ \t]+){{0,3}}\Z", re.IGNORECASE))


@dataclass(frozen=True)
class SectionRules:
    pattern: re.Pattern
    asserts: dict[str, str]    # phrase_key(name) -> assertion


@cache
def section_rules() -> SectionRules:
    asserts = {}
    for section in _load("sections.yaml")["sections"]:
        if section["asserts"] not in ASSERTIONS:
            raise ValueError(f"sections.yaml: unknown assertion {section['asserts']!r}")
        for name in _phrases(section["names"], "sections.yaml"):
            asserts[phrase_key(name)] = section["asserts"]
    names = compile_phrases(asserts)
    # A heading opens a line (or follows a sentence end) and is followed by a colon, or stands alone on its line.
    heading = re.compile(
        rf"(?:^|(?<=[.!?])[ \t]+)[ \t]*(?P<name>{names.pattern})[ \t]*(?::|(?=[ \t]*$))",
        re.IGNORECASE | re.MULTILINE)
    return SectionRules(heading, asserts)
