"""SI-joint fusion: provocative tests, diagnostic blocks on separate dates (image-guided where the
profile asks), pain, conservative care, no excluding diagnosis or other pain generator, and the
device and approach the payers cover (rules/si_fusion.yaml)."""
from __future__ import annotations

from collections import Counter

from fhir_mappings.dates import add_months
from fhir_mappings.facts import Facts, Order

from . import conservative_care
from .finding import MET, NOT_MET, Finding, point
from .inpatient import order_texts
from .spec import Profile, RuleSpec
from fhir_mappings.text.rules import load_text_data
from terminology.phrases import compile_phrases

_BILATERAL = compile_phrases(load_text_data("order_words.yaml")["bilateral"])


def _blocks(facts: Facts, rule: RuleSpec):
    """(blocks with the required relief, counted once per day across records; blocks short of it)."""
    blocks = [m for m in facts.measurements if m.name == "si_block_relief" and m.value is not None]
    good = [m for m in blocks if rule.met("block_relief_pct", m.value)
            and (m.guided or not rule["blocks_image_guided"])]
    # Two records of one day are one sitting; one note telling several blocks tells several sittings.
    per_record = Counter((m.evidence.day, m.evidence.reference) for m in good)
    per_day: dict = {}
    for (day, _), n in per_record.items():
        per_day[day] = max(per_day.get(day, 0), n)
    return sum(per_day.values()), blocks, good


def _pathways(facts: Facts, orders, profile: Profile) -> list:
    """What makes an open SI fusion (27280) a covered procedure here."""
    found = []
    for flag in facts.red_flags:
        if flag.kind in ("spinal_fracture", "spinal_infection", "spinal_tumor"):
            found.append(point("si-open-pathway", flag.evidence, pathway=flag.kind))
    fused = {s for o in facts.spine_orders for p in o.of_class("fusion", "deformity_fusion") for s in p.interspaces}
    pelvic = any(o.of_class("pelvic_fixation") for o in facts.spine_orders)
    if pelvic and len(fused) >= profile.rules["pelvic_fixation"]["long_construct_interspaces"]:
        found.append(point("si-open-pathway", pathway="long_construct"))
    for d in facts.diagnoses:
        if d.valueset in ("spinal_fracture", "spinal_infection", "spinal_tumor"):
            found.append(point("si-open-pathway", d.evidence, pathway=d.valueset))
    return found


def _bilateral(orders: tuple[Order, ...]) -> bool:
    sides = [o for o in orders if o.of_class("si_fusion")]
    same_day = len({o.authored_on for o in sides}) < len(sides)
    return same_day or any(_BILATERAL.search(t) for o in sides for t in order_texts(o))


def evaluate(facts: Facts, profile: Profile) -> list[Finding]:
    rule = profile.rules["si_fusion"]
    orders = tuple(o for o in facts.spine_orders if o.of_class("si_fusion"))
    if not orders:
        return []
    as_of = facts.order_date()
    counted, missing, evidence = [], [], []
    codes = {c for o in orders for p in o.of_class("si_fusion") for c in p.codes}

    for code in sorted(codes & set(rule["unsupported_cpt"])):
        missing.append(point("si-device-unsupported", cpt=code))
    if "27280" in codes:
        pathways = _pathways(facts, orders, profile)
        counted += pathways
        evidence += [e for p in pathways for e in p.evidence]
        if not pathways:
            missing.append(point("si-open-no-pathway"))
    if _bilateral(orders) and not rule["bilateral_same_day"]:
        missing.append(point("si-bilateral-same-day"))

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

    sittings, blocks, good = _blocks(facts, rule)
    evidence += [m.evidence for m in blocks]
    counted += [point("si-block", m.evidence, value=m.value, guided=bool(m.guided)) for m in blocks]
    relief = rule.parameters["block_relief_pct"]
    if sittings < rule["min_blocks"]:
        missing.append(point("si-blocks-short", count=sittings, needed=rule["min_blocks"], threshold=relief.value,
                             comparison=relief.comparison, guided=rule["blocks_image_guided"]))

    for d in facts.diagnoses:
        if d.valueset in rule["exclusion_diagnoses"]:
            missing.append(point("si-excluded-diagnosis", d.evidence, diagnosis=d.valueset))
            evidence.append(d.evidence)
    generators = [d for d in facts.diagnoses if d.valueset in rule["other_generator_diagnoses"]]
    generators += [f for f in facts.level_facts if f.kind in rule["other_generator_findings"] and f.present]
    for g in generators[:3]:
        missing.append(point("si-other-generator", g.evidence,
                             generator=getattr(g, "valueset", None) or getattr(g, "kind", None)))
        evidence.append(g.evidence)

    onsets = sorted(d.onset for d in facts.diagnoses if d.valueset == "si_joint_disorder" and d.onset)
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

    # Never waived: conservative_care gives no red-flag waiver to an SI-joint fusion.
    care = conservative_care.evaluate(facts, profile)
    if any(f.status != MET and set(f.orders) & set(orders) for f in care):
        missing.append(point("si-conservative-care"))
    thresholds = tuple(rule.parameters)
    status = NOT_MET if missing else MET
    return [Finding(rule, status, orders, tuple(dict.fromkeys(evidence)), tuple(counted), tuple(missing), thresholds,
                    classes=frozenset({"si_fusion"}), data={"missing_count": len(missing)})]
