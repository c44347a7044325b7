"""Chart -> facts timing on a realistic synthetic chart (the fhir_mappings stage alone).

    PYTHONPATH=. .venv/bin/python benchmarks/profile_facts.py 10000 [--unique] [--repeat N]

The chart is seed 001 padded with ~40 % vital-sign Observations, ~20 % Conditions with short
notes, ~20 % Procedures with notes mentioning PT and meloxicam, 10 % MedicationRequests and
10 % DiagnosticReports with short conclusions. --unique makes every note and conclusion
distinct (no text cache can help: the pre-filter and the readers do all the work).

Each mapper is timed alone with the text caches emptied first, then build_facts (one pass, the
production path) likewise; the best of --repeat runs is printed, in ms. Targets: build_facts
<= 350 ms for 10,000 resources, linear in chart size.
"""
from __future__ import annotations

import argparse
import random
import time
from datetime import date, timedelta

from fhir_mappings import care, diagnoses, level_facts, measures, red_flags, resources
from fhir_mappings.build import TEXT_CACHES, build_facts
from fhir_mappings.chart import Chart
from tests.stubs import fhir, seeds

_CACHES = TEXT_CACHES + (resources._system,)


def clear_caches() -> None:
    for cached in _CACHES:
        cached.cache_clear()


def chart(n: int, unique: bool = False, seed: int = 1) -> list[dict]:
    rnd = random.Random(seed)
    out = seeds.seed_001_chart()
    while len(out) < n:
        k = rnd.random()
        d = (date(2020, 1, 1) + timedelta(days=rnd.randint(0, 1900))).isoformat()
        tag = f" Seen by clinician #{len(out)}." if unique else ""
        if k < .4:
            out.append(fhir.observation("Blood pressure", value=rnd.randint(100, 160), unit="mmHg", effective=d))
        elif k < .6:
            out.append(fhir.condition("Essential hypertension", "I10", onset=d, note="Stable on lisinopril." + tag))
        elif k < .8:
            out.append(fhir.procedure("Office visit", performed=d,
                                      note="Back pain follow-up; continue PT and meloxicam." + tag))
        elif k < .9:
            out.append(fhir.medication("lisinopril 10 mg", d))
        else:
            out.append(fhir.report("XR chest", "No acute cardiopulmonary process. Mild degenerative changes of the "
                                   "thoracic spine." + tag, d))
    return out


MAPPERS = (("care", care.map_care), ("red_flags", red_flags.map_red_flags),
           ("level_facts", level_facts.map_level_facts), ("measures", measures.map_measurements),
           ("diagnoses", diagnoses.map_diagnoses))


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        clear_caches()
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return 1000 * best


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[1000, 10000])
    parser.add_argument("--unique", action="store_true", help="every note and conclusion distinct")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    for n in args.sizes:
        resources = chart(n, args.unique)
        whole = Chart.build("pat-1", [], resources, date(2025, 6, 1))
        times = {name: _best(lambda fn=fn: fn(resources), args.repeat) for name, fn in MAPPERS}
        times["sum"] = sum(times.values())
        times["build_facts"] = _best(lambda: build_facts(whole, orders=()), args.repeat)
        print(f"{n:>6} resources{' (unique texts)' if args.unique else ''}: "
              + "  ".join(f"{name} {ms:.1f}" for name, ms in times.items()) + "  (ms)")


if __name__ == "__main__":
    main()
