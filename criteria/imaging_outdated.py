"""The imaging that supports the ordered levels is recent enough (rules/imaging_outdated.yaml).

A level's imaging is the newest report, observation or quoting note that puts an indication
there (stenosis, listhesis, instability, pseudarthrosis, hardware failure, a disc herniation);
its date is the date the text gives the study ("MRI 3/2019") when it names one, else the record's."""
from __future__ import annotations

from fhir_mappings.dates import add_months
from fhir_mappings.facts import Facts
from terminology.levels import format_interspaces

from .clinical_facts import of_kind, stated_date
from .context import context_of
from .finding import MET, NEEDS_DOCUMENTATION, Finding, point
from .spec import Profile

KINDS = ("stenosis", "spondylolisthesis", "instability", "pseudarthrosis", "hardware_failure")
IMAGING_TYPES = ("DiagnosticReport", "ImagingStudy", "Observation", "DocumentReference", "Media")
THRESHOLDS = ("max_age_months", "required")


def evaluate(facts: Facts, profile: Profile) -> list[Finding]:
    rule = profile.rules["imaging_outdated"]
    index = context_of(facts, profile).index
    as_of = facts.order_date()
    oldest_allowed = add_months(as_of, -rule["max_age_months"])
    herniations = of_kind(facts, "disc_herniation", as_of=as_of)
    findings = []
    for order in facts.spine_orders:
        judged = [p for p in order.procedures if p.procedure_class in rule.applies_to]
        ordered = tuple(sorted({s for p in judged for s in p.interspaces}))
        if not ordered:
            continue
        classes = frozenset(p.procedure_class for p in judged) | {"instrumentation", "graft"}
        newest: dict = {}
        for space in ordered:
            sources = [f.evidence for kind in KINDS for f in index.present(kind, space)]
            sources += [h.evidence for h in herniations if space in h.interspaces]
            dated = [(stated_date(e), e) for e in sources if e.reference.split("/")[0] in IMAGING_TYPES]
            dated = [(d, e) for d, e in dated if d and d <= as_of]
            if dated:
                newest[space] = max(dated, key=lambda x: x[0])
        counted = tuple(point("imaging-date", e, level=str(s), day=d) for s, (d, e) in newest.items())
        evidence = tuple(dict.fromkeys(e for _, e in newest.values()))
        old = [s for s, (d, _) in newest.items() if d < oldest_allowed]
        data = {"months": rule["max_age_months"], "levels": format_interspaces(old or ordered)}
        if old:
            first = min(newest[s][0] for s in old)
            findings.append(Finding(rule, NEEDS_DOCUMENTATION, (order,), evidence, counted,
                                    (point("imaging-too-old", levels=format_interspaces(old), day=first,
                                           months=rule["max_age_months"], since=oldest_allowed),),
                                    THRESHOLDS, classes=classes, data=data))
        elif newest:
            findings.append(Finding(rule, MET, (order,), evidence, counted, (), THRESHOLDS, classes=classes))
        elif rule["required"]:
            findings.append(Finding(rule, NEEDS_DOCUMENTATION, (order,), (), (),
                                    (point("imaging-none", levels=format_interspaces(ordered)),), THRESHOLDS,
                                    classes=classes, data=data))
    return findings
