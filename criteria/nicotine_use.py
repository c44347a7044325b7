"""Nicotine-free before an elective fusion or SI-joint fusion (rules/nicotine_use.yaml)."""
from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from fhir_mappings.facts import ClinicalFact, Facts

from .clinical_facts import of_kind, orders_for
from .finding import MET, NEEDS_DOCUMENTATION, NOT_MET, WAIVED, Finding, point
from .spec import Profile

# Of records on one day, the one that says more use wins.
_RANK = {"never": 0, "former": 1, "current": 2}
THRESHOLDS = ("min_weeks_free", "si_min_weeks_free", "cotinine_max_ng_ml", "cotinine_window_days", "quit_date_counts",
              "status_required")


def _status(facts: Facts, as_of: date) -> ClinicalFact | None:
    found = of_kind(facts, "nicotine", as_of=as_of)
    return max(found, key=lambda f: (f.evidence.day or date.min, _RANK[f.status]), default=None)


def _quit_date(facts: Facts, status: ClinicalFact, as_of: date) -> tuple[ClinicalFact, tuple]:
    """A former status without a date (the coded "Ex-smoker" every US Core EHR sends) takes its last use
    from the chart's other records of former use that give one ("quit smoking on 4/25/2025" in the H&P):
    the latest such date, or the latest day use was documented after it. Else it stays undated."""
    if status.status != "former" or status.last_use is not None:
        return status, ()
    found = of_kind(facts, "nicotine", as_of=as_of)
    dated = [f for f in found if f.status == "former" and f.last_use is not None and f.last_use <= as_of]
    if not dated:
        return status, ()
    quit = max(dated, key=lambda f: f.last_use)
    used = [f for f in found if f.status == "current" and f.evidence.day and f.evidence.day > quit.last_use]
    if used:      # use documented after that quit date: the patient used nicotine that day at least
        last = max(used, key=lambda f: f.evidence.day)
        return replace(status, last_use=last.evidence.day), (last.evidence,)
    return replace(status, last_use=quit.last_use), (quit.evidence,)


def evaluate(facts: Facts, profile: Profile) -> list[Finding]:
    rule = profile.rules["nicotine_use"]
    orders = orders_for(facts, rule)
    if not orders:
        return []
    as_of = facts.order_date()
    si_only = all(o.classes & rule.applies_to == {"si_fusion"} for o in orders)
    weeks = rule["si_min_weeks_free"] if si_only else rule["min_weeks_free"]
    classes = frozenset(rule.applies_to)

    def finding(status, counted=(), missing=(), evidence=()):
        return [Finding(rule, status, orders, tuple(evidence), tuple(counted), tuple(missing), THRESHOLDS,
                        classes=classes, data={"weeks": weeks})]

    urgent = [o for o in orders if str(o.resource.get("priority", "routine")) in rule["urgent_priorities"]]
    flags = [f for f in facts.red_flags if f.kind in rule["urgent_flags"]]
    status, dated_by = _status(facts, as_of), ()
    if status is not None:
        status, dated_by = _quit_date(facts, status, as_of)
    cotinine = [c for c in of_kind(facts, "cotinine", as_of=as_of)
                if c.value is not None and c.evidence.day and c.evidence.day >= as_of - timedelta(days=rule["cotinine_window_days"])]
    counted = [point("nicotine-status", status.evidence, *dated_by, status=status.status, last_use=status.last_use)] \
        if status else []
    counted += [point("cotinine", c.evidence, value=c.value, limit=rule["cotinine_max_ng_ml"]) for c in cotinine[-1:]]
    evidence = [f.evidence for f in ([status] if status else []) + cotinine[-1:]] + list(dated_by)

    missing, verdict = [], MET
    if cotinine:
        lab = cotinine[-1]
        if not rule.met("cotinine_max_ng_ml", lab.value):
            verdict, missing = NOT_MET, [point("cotinine-high", lab.evidence, value=lab.value, limit=rule["cotinine_max_ng_ml"])]
    elif status is None:
        if not rule["status_required"]:
            return []
        verdict, missing = NEEDS_DOCUMENTATION, [point("nicotine-status-missing", weeks=weeks)]
    elif status.status == "current":
        verdict, missing = NOT_MET, [point("nicotine-current", status.evidence, day=status.evidence.day, weeks=weeks)]
    elif status.status == "former":
        if not rule["quit_date_counts"]:
            verdict, missing = NEEDS_DOCUMENTATION, [point("nicotine-cotinine-needed", limit=rule["cotinine_max_ng_ml"])]
        elif status.last_use is None:
            verdict, missing = NEEDS_DOCUMENTATION, [point("nicotine-quit-date-missing", weeks=weeks)]
        else:
            free = (as_of - status.last_use).days // 7
            if free < weeks:
                verdict, missing = NOT_MET, [point("nicotine-recent", status.evidence, *dated_by, last_use=status.last_use,
                                                   weeks_free=free, weeks=weeks)]
    if verdict != MET and (urgent or flags):
        why = [point("urgent-order", priority=str(o.resource.get("priority"))) for o in urgent]
        why += [point("red-flag", f.evidence, flag=f.kind) for f in flags]
        return finding(WAIVED, counted + why, missing, evidence + [f.evidence for f in flags])
    return finding(verdict, counted, missing, evidence) if verdict != MET or counted else []
