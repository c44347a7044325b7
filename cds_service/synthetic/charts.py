"""One function per scenario: Kit -> (draft orders, clinical resources). Dates are counted
back from the order (Kit.ago); random choices are limited to what cannot change the cards."""
from __future__ import annotations

from . import seeds
from .kit import Kit, neighbours, short_level

Chart = tuple[list[dict], list[dict]]


def _listhesis(k: Kit, level: str) -> dict:
    grade = k.rng.choice((1, 2))
    # NASS 2014: a grade-1 slip supports fusion with stenosis there that needs decompression.
    return k.report("MRI lumbar spine", f"Grade {grade} anterolisthesis at {short_level(level)}. "
                    f"Moderate central canal stenosis at {short_level(level)}.",
                    k.ago(days=k.rng.randint(20, 60)))


def _tlif(k: Kit, levels: str, extra: str = "") -> dict:
    cpts = ["22633"] + (["22634"] if levels not in ("L3-L4", "L4-L5", "L5-S1") else [])
    return k.order(f"TLIF {levels}{extra}", cpts, levels)


def fusion_criteria_met(k: Kit) -> Chart:
    level = k.level()
    return [_tlif(k, level)], [*k.well_treated(), _listhesis(k, level)]


def fusion_pt_missing(k: Kit) -> Chart:
    level = k.level()
    note = "Conservative treatment so far: PT and NSAIDs."
    history = k.condition("Spondylolisthesis, lumbar region", "M43.16", onset=k.ago(days=300), note=note)
    return [_tlif(k, level)], [k.medication_trial(), history, _listhesis(k, level)]


def fusion_pt_too_short(k: Kit) -> Chart:
    level = k.level()
    return [_tlif(k, level)], [k.medication_trial(), *k.pt_course(visits=5), _listhesis(k, level)]


def fusion_red_flag_cauda_equina(k: Kit) -> Chart:
    level = k.level()
    flag = k.condition("Cauda equina syndrome", "G83.4", onset=k.ago(days=k.rng.randint(2, 10)))
    return [_tlif(k, level)], [flag, _listhesis(k, level)]


def fusion_conservative_care_short(k: Kit) -> Chart:
    level = k.level()
    # Six weekly PT visits meet the PT rule, yet the first care is ~6 weeks old: under 3 months.
    return [_tlif(k, level)], [*k.pt_visits(k.rng.randint(38, 45), 6), _listhesis(k, level)]


def decompression_six_weeks_met(k: Kit) -> Chart:
    level = k.level()
    grade = k.rng.choice(("Moderate", "Severe"))
    mri = k.report("MRI lumbar spine", f"{grade} central canal stenosis at {short_level(level)}.", k.ago(days=30))
    # Care began 7-8 weeks ago: enough for decompression alone (6 weeks), not for a fusion.
    return [k.order(f"Laminectomy {level}", ["63047"], level)], [*k.pt_visits(k.rng.randint(49, 56), 6), mri]


def fusion_level_unsupported(k: Kit) -> Chart:
    supported = k.level()
    ordered = k.rng.choice(neighbours(supported))
    return [_tlif(k, ordered)], [*k.well_treated(), _listhesis(k, supported)]


def fusion_stenosis_only(k: Kit) -> Chart:
    level = k.level()
    mri = k.report("MRI lumbar spine", f"Severe central canal stenosis at {short_level(level)}.", k.ago(days=40))
    return [_tlif(k, level)], [*k.well_treated(), mri]


def _translation(mm: float):
    def chart(k: Kit) -> Chart:
        level = k.level()
        films = k.report("XR lumbar flexion-extension",
                         f"{mm:g} mm translation at {short_level(level)} on flexion-extension films.", k.ago(days=45))
        return [_tlif(k, level)], [*k.well_treated(), films]
    return chart


fusion_instability_at_threshold = _translation(2.0)
fusion_instability_over_threshold = _translation(2.5)


def decompression_no_levels(k: Kit) -> Chart:
    mri = k.report("MRI lumbar spine", f"Moderate central stenosis at {short_level(k.level())}.", k.ago(days=30))
    return [k.order("Lumbar laminectomy", ["63047"])], [*k.well_treated(), mri]


def decompression_mild_stenosis(k: Kit) -> Chart:
    level = k.level()
    grade = k.rng.choice(("Mild", "Mild to moderate"))
    mri = k.report("MRI lumbar spine", f"{grade} central stenosis at {short_level(level)}.", k.ago(days=30))
    return [k.order(f"Laminectomy {level}", ["63047"], level)], [*k.well_treated(), mri]


def _osteotomy(k: Kit) -> dict:
    vertebra = k.rng.choice(("L2", "L3", "L4"))
    return k.order(f"Posterior osteotomy {vertebra}", ["22214"], vertebra)


def _alignment(k: Kit, mismatch: int) -> dict:
    incidence = k.rng.randint(45, 65)
    return k.report("XR standing full-length spine", f"Lumbar lordosis {incidence - mismatch} degrees against a "
                    f"pelvic incidence of {incidence} degrees.", k.ago(days=k.rng.randint(15, 40)))


def osteotomy_indicated_pi_ll(k: Kit) -> Chart:
    return [_osteotomy(k)], [*k.well_treated(), _alignment(k, k.rng.randint(15, 25))]


def osteotomy_unsupported(k: Kit) -> Chart:
    return [_osteotomy(k)], [*k.well_treated(), _alignment(k, k.rng.randint(0, 8))]


def osteotomy_subtle_curvature(k: Kit) -> Chart:
    side = k.rng.choice(("dextro", "levo"))
    xr = k.report("XR standing full-length spine", f"Very subtle thoracolumbar {side}scoliotic curvature.",
                  k.ago(days=20))
    return [_osteotomy(k)], [*k.well_treated(), xr]


SI_TESTS = ("compression", "thigh thrust", "FABER", "distraction", "Gaenslen")


def _si(positive: int | None = None, last_relief: int | None = None):
    def chart(k: Kit) -> Chart:
        side = k.rng.choice(("right", "left"))
        count = positive if positive is not None else k.rng.randint(3, 5)
        named = list(SI_TESTS)
        k.rng.shuffle(named)
        text = f"Positive {', '.join(named[:count])} tests"
        text += f"; negative {', '.join(named[count:])}." if count < len(named) else "."
        reliefs = [k.rng.randint(75, 95), last_relief if last_relief is not None else k.rng.randint(75, 95)]
        resources = [
            *k.well_treated(),
            k.condition(f"Sacroiliitis, {side}", "M46.1", onset=k.ago(days=k.rng.randint(260, 320))),
            k.observation("SI joint examination", value_string=text, effective=k.ago(days=120)),
            k.observation("Pain severity 0-10", value=k.rng.randint(6, 9), unit="{score}", effective=k.ago(days=50),
                          loinc="72514-3"),
        ]
        resources += [k.procedure(f"{side.capitalize()} sacroiliac joint injection", performed=k.ago(days=days),
                                  note=f"{pct}% relief of pain after the block.")
                      for days, pct in zip((100, 70), reliefs)]
        return [k.order(f"SI joint fusion, {side}", ["27279"])], resources
    return chart


def pelvic_fixation_short_construct(k: Kit) -> Chart:
    construct = k.rng.choice(("L3-S1", "L4-S1"))
    spaces = {"L3-S1": "L3-4, L4-5 and L5-S1", "L4-S1": "L4-5 and L5-S1"}[construct]
    xr = k.report("XR lumbar spine", f"Grade 1 anterolisthesis at {spaces}. Moderate central canal stenosis at {spaces}.",
                  k.ago(days=40))
    order = k.order(f"Posterior fusion {construct} with pelvic fixation", ["22633", "22634", "22848"], construct)
    return [order], [*k.well_treated(), xr]


def exploration_bundled(k: Kit) -> Chart:
    level = k.level()
    mri = k.report("MRI lumbar spine", f"Moderate stenosis at {short_level(level)}.", k.ago(days=30))
    orders = [k.order("Exploration of spinal fusion", ["22830"]), k.order(f"Laminectomy {level}", ["63047"], level)]
    return orders, [*k.well_treated(), mri]


def inpatient_single_level(k: Kit) -> Chart:
    level = k.level()
    return [_tlif(k, level, ", inpatient admission")], [*k.well_treated(), _listhesis(k, level)]


def not_spine(k: Kit) -> Chart:
    mri = k.order("MRI lumbar spine without contrast", ["72148"])
    return [mri], [*k.well_treated(), _listhesis(k, k.level())]


def _seed(orders, chart):
    def build(k: Kit) -> Chart:
        # The seed's own Patient and Coverage give way to the instance's (Scenario.build adds them).
        resources = [r for r in chart(k.patient_id, k.ids) if r["resourceType"] not in ("Patient", "Coverage")]
        return orders(patient_id=k.patient_id, ids=k.ids), resources
    return build


seed_000 = _seed(seeds.seed_000_orders, seeds.seed_000_chart)
seed_001 = _seed(seeds.seed_001_orders, seeds.seed_001_chart)
seed_002 = _seed(seeds.seed_002_orders, seeds.seed_002_chart)
si_fusion_met = _si()
si_fusion_two_tests = _si(positive=2)
si_fusion_block_74pct = _si(last_relief=74)
