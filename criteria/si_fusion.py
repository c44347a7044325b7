"""SI-joint fusion: provocative tests, diagnostic blocks, pain, conservative care (rules/si_fusion.yaml)."""
from __future__ import annotations

from fhir_mappings.dates import add_months
from fhir_mappings.facts import Facts

from . import conservative_care
from .finding import MET, NOT_MET, Finding, point
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
    counted.append(point("si-tests", count=positive, tests=tuple(t for t, p in tests.items() if p)))
    if positive < rule["min_positive_tests"]:
        missing.append(point("si-tests-short", count=positive, needed=rule["min_positive_tests"],
                             tests=tuple(rule["counted_tests"])))

    blocks = [m for m in facts.measurements if m.name == "si_block_relief" and m.value is not None]
    good = [m for m in blocks if rule.met("block_relief_pct", m.value)]
    evidence += [m.evidence for m in blocks]
    counted += [point("si-block", m.evidence, value=m.value) for m in blocks]
    relief = rule.parameters["block_relief_pct"]
    if len(good) < rule["min_blocks"]:
        missing.append(point("si-blocks-short", count=len(good), needed=rule["min_blocks"], threshold=relief.value,
                             comparison=relief.comparison))

    onsets = sorted(d.onset for d in facts.diagnoses if d.valueset in ("si_joint_disorder", "ankylosing_spondylitis") and d.onset)
    if onsets and add_months(onsets[0], rule["min_pain_months"]) <= as_of:
        counted.append(point("si-pain-since", start=onsets[0]))
    else:
        missing.append(point("si-pain-duration", months=rule["min_pain_months"], onset=onsets[0] if onsets else None))
    scores = [m for m in facts.measurements if m.name == "pain_score" and m.value is not None]
    if scores and max(m.value for m in scores) >= rule["min_pain_score"]:
        top = max(scores, key=lambda m: m.value)
        counted.append(point("pain-score", top.evidence, value=top.value))
        evidence.append(top.evidence)
    else:
        missing.append(point("si-pain-score", needed=rule["min_pain_score"],
                             highest=max(m.value for m in scores) if scores else None))

    care = conservative_care.evaluate(facts, profile)
    if care and care[0].status not in ("met", "waived"):
        missing.append(point("si-conservative-care"))
    thresholds = tuple(rule.parameters)
    status = NOT_MET if missing else MET
    return [Finding(rule, status, orders, tuple(dict.fromkeys(evidence)), tuple(counted), tuple(missing), thresholds,
                    classes=frozenset({"si_fusion"}), data={"missing_count": len(missing)})]
