"""Score how each mention of the sentence table (tests/data/sentences.yaml) is asserted: by our
reader (fhir_mappings.text) and by medspaCy's ConText with its default rules.

    PYTHONPATH=. python benchmarks/score_context.py            # both
    PYTHONPATH=. python benchmarks/score_context.py --ours     # ours only (no medspaCy needed)

medspaCy is NOT a dependency of the service or its tests: install it only where you run this
script, best in a separate environment (python -m venv /tmp/medspacy && /tmp/medspacy/bin/pip
install medspacy pyyaml; then run this script with that interpreter and PYTHONPATH=.).

Each mention is scored as one of present, negated, possible, hypothetical, historical, family,
counselling. medspaCy's ConText marks a target with is_negated, is_uncertain, is_hypothetical,
is_historical and is_family; it is read in the same order of precedence as ours (negated, family,
hypothetical, possible, historical; none: present). It has no counselling category, so those rows
count against it: that is a gap of the tool, not of the scoring. The mention's words are given to
both as the target (no concept matching is scored, only assertion), and medspaCy gets its own
sentence splitter (PyRuSH), as it ships.
"""
from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import yaml

from fhir_mappings.text import ASSERTIONS, document

TABLE = Path(__file__).resolve().parent.parent / "tests" / "data" / "sentences.yaml"


def mentions():
    """(text, start, end, expected assertion) for every mention of the table."""
    for row in yaml.safe_load(TABLE.read_text("utf-8")):
        lowered = row["text"].lower()
        for expect in row["expect"]:
            start = -1
            for _ in range(expect.get("nth", 1)):
                start = lowered.index(expect["words"].lower(), start + 1)
            yield row["text"], start, start + len(expect["words"]), expect["assertion"]


def ours(text: str, start: int, end: int) -> str:
    return document(text).assertion(start, end)


class MedspacyContext:
    def __init__(self):
        import medspacy   # only here: not a dependency of the service
        try:
            from loguru import logger   # PyRuSH logs every sentence at DEBUG
            logger.remove()
        except ImportError:
            pass
        self.nlp = medspacy.load()
        names = dict(self.nlp.pipeline)
        self.sentences = names.get("medspacy_pyrush")
        self.context = names["medspacy_context"]

    def __call__(self, text: str, start: int, end: int) -> str:
        doc = self.nlp.make_doc(text)
        if self.sentences is not None:
            doc = self.sentences(doc)
        span = doc.char_span(start, end, label="TARGET", alignment_mode="expand")
        doc.ents = [span]
        doc = self.context(doc)
        (ent,) = doc.ents
        for flag, assertion in (("is_negated", "negated"), ("is_family", "family"), ("is_hypothetical", "hypothetical"),
                                ("is_uncertain", "possible"), ("is_historical", "historical")):
            if getattr(ent._, flag):
                return assertion
        return "present"


def score(name: str, read, items) -> float:
    right, by_expected, confusions = 0, Counter(), Counter()
    for text, start, end, expected in items:
        got = read(text, start, end)
        by_expected[expected, got == expected] += 1
        if got == expected:
            right += 1
        else:
            confusions[expected, got] += 1
    accuracy = right / len(items)
    print(f"{name}: {right}/{len(items)} mentions right, accuracy {accuracy:.1%}")
    for assertion in ASSERTIONS:
        total = by_expected[assertion, True] + by_expected[assertion, False]
        if total:
            print(f"  {assertion:<13} {by_expected[assertion, True]:>3}/{total}")
    if confusions:
        print("  most frequent errors (expected -> read): "
              + ", ".join(f"{e}->{g} x{n}" for (e, g), n in confusions.most_common(6)))
    return accuracy


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ours", action="store_true", help="score our reader only")
    args = parser.parse_args(argv)
    items = list(mentions())
    score("spine-cds (fhir_mappings.text)", ours, items)
    if not args.ours:
        score("medspaCy ConText (default rules)", MedspacyContext(), items)


if __name__ == "__main__":
    main()
