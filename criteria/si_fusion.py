"""SI-joint fusion: provocative tests, diagnostic blocks, pain, conservative care (rules/si_fusion.yaml)."""
from __future__ import annotations

from fhir_mappings.dates import add_months
from fhir_mappings.facts import Facts

from . import conservative_care
from .finding import MET, NOT_MET, Finding
from .spec import Profile


def evaluate(facts: Facts, profile: Profile) -> list[Finding]:
    rule = profile.rules["si_fusion"]
    orders = tuple(o for o in facts.spine_orders if o.of_class("si_fusion"))
    if not orders:
        return []
    as_of = facts.order_date()
    counted, missing, evidence = [], [], []

    tests = {}
    for m in facts.measurements:
        if m.name == "si_provocative_test" and m.test in rule["counted_tests"] and m.positive is not None:
            tests[m.test] = tests.get(m.test) or m.positive
            evidence.append(m.evidence)
    tallies = [m for m in facts.measurements if m.name == "si_provocative_test" and m.test is None and m.value is not None]
    positive = max([sum(tests.values())] + [int(m.value) for m in tallies])
    evidence += [m.evidence for m in tallies]
    counted.append(f"Positive provocative tests: {positive} ({', '.join(t for t, p in tests.items() if p) or 'none named'})")
    if positive < rule["min_positive_tests"]:
        missing.append(f"{positive} of the required {rule['min_positive_tests']} positive provocative tests "
                       f"({', '.join(rule['counted_tests'])})")

    blocks = [m for m in facts.measurements if m.name == "si_block_relief" and m.value is not None]
    good = [m for m in blocks if rule.met("block_relief_pct", m.value)]
    evidence += [m.evidence for m in blocks]
    counted += [f"SI block relief {m.value:g}% — {m.evidence.render()}" for m in blocks]
    if len(good) < rule["min_blocks"]:
        missing.append(f"{len(good)} of {rule['min_blocks']} diagnostic SI-joint blocks with "
                       f"{rule.parameters['block_relief_pct'].describe()} relief")

    onsets = sorted(d.onset for d in facts.diagnoses if d.valueset in ("si_joint_disorder", "ankylosing_spondylitis") and d.onset)
    if onsets and add_months(onsets[0], rule["min_pain_months"]) <= as_of:
        counted.append(f"SI-joint pain documented since {onsets[0].isoformat()}")
    else:
        missing.append(f"SI-joint pain of at least {rule['min_pain_months']} months is not documented"
                       + (f" (onset {onsets[0].isoformat()})" if onsets else ""))
    scores = [m for m in facts.measurements if m.name == "pain_score" and m.value is not None]
    if scores and max(m.value for m in scores) >= rule["min_pain_score"]:
        top = max(scores, key=lambda m: m.value)
        counted.append(f"Pain {top.value:g}/10 — {top.evidence.render()}")
        evidence.append(top.evidence)
    else:
        missing.append(f"pain of at least {rule['min_pain_score']}/10 is not documented"
                       + (f" (highest {max(m.value for m in scores):g}/10)" if scores else ""))

    care = conservative_care.evaluate(facts, profile)
    if care and care[0].status not in ("met", "waived"):
        missing.append("six months of conservative care are not documented (see the conservative-care card)")
    thresholds = tuple(rule.parameters)
    status = NOT_MET if missing else MET
    return [Finding(rule, status, orders, tuple(dict.fromkeys(evidence)), tuple(counted), tuple(missing), thresholds)]
