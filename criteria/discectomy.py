"""A discectomy (63030, 63035, 63042, 63043) needs a disc herniation compressing a nerve root at each
level (rules/discectomy.yaml); decompression_levels judges the other decompressions by stenosis."""
from __future__ import annotations

from fhir_mappings.facts import Facts

from .clinical_facts import of_kind
from .context import context_of
from .finding import Finding, point
from .per_level import judge_order
from .spec import Profile

THRESHOLDS = ("root_compression_required",)


def evaluate(facts: Facts, profile: Profile) -> list[Finding]:
    rule = profile.rules["discectomy"]
    context = context_of(facts, profile)
    herniations = of_kind(facts, "disc_herniation", as_of=facts.order_date())

    def judge(space):
        here = [h for h in herniations if space in h.interspaces]
        ok = [h for h in here if h.root_compression or not rule["root_compression_required"]]
        read = [h.evidence for h in here]
        if ok:
            why = tuple(point("herniation", h.evidence, roots=", ".join(h.roots), side=h.side) for h in ok)
            return True, point("level-supported", level=str(space), why=why), read
        if here:
            why = tuple(point("herniation-no-root", h.evidence) for h in here)
            return False, point("level-unsupported", level=str(space), why=why), read
        return False, point("level-unsupported", level=str(space), why=(point("no-herniation-here"),)), read

    return [judge_order(rule, order, procs, "discectomy", THRESHOLDS, judge)
            for order in facts.spine_orders if (procs := context.discectomies(order))]
