"""Expand the ICD-10-CM roots of data/valuesets.json into data/valuesets.expanded.json.

Run ``python -m terminology.build_valuesets`` after editing valuesets.json. The runtime loader
reads only the expanded file, so the 2-second simple_icd_10_cm import happens here and in tests,
never while serving requests.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import re
import warnings
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

EXPANDED_NAME = "valuesets.expanded.json"
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "data" / EXPANDED_NAME


class ValueSetBuildError(ValueError):
    """A root in valuesets.json is not a usable ICD-10-CM code in the bundled release."""


def load_icd() -> ModuleType:
    # The library parses its XML with deprecated importlib.resources calls at import time;
    # the warnings are its business, and pytest runs with warnings-as-errors.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import simple_icd_10_cm

    return simple_icd_10_cm


def release_name(icd: ModuleType) -> str:
    version = importlib.metadata.version("simple-icd-10-cm")
    # Private attribute, but it is the only place the library names its CDC data file.
    data_file = getattr(icd.simple_icd_10_cm, "_classification_data_package_file_name", "")
    found = re.search(r"([A-Z][a-z]+)-\d{1,2}-(\d{4})", data_file)
    release = f"{found.group(1)} {found.group(2)}" if found else "unknown"
    return f"ICD-10-CM {release} release (simple-icd-10-cm {version}, {data_file or 'data file not named'})"


def load_curated() -> dict[str, Any]:
    text = resources.files("terminology").joinpath("data", "valuesets.json").read_text(encoding="utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


def expand_root(icd: ModuleType, code: str) -> list[str]:
    if not icd.is_valid_item(code):
        raise ValueSetBuildError(f"{code} is not in the bundled ICD-10-CM release")
    if icd.is_chapter_or_block(code):
        # Block ranges (e.g. M40-M43) would silently pull in unrelated categories.
        raise ValueSetBuildError(f"{code} is a chapter or block; use categories or subcategories as roots")
    return [icd.add_dot(code), *(icd.add_dot(c) for c in icd.get_descendants(code))]


def build(curated: dict[str, Any], icd: ModuleType) -> dict[str, Any]:
    expanded: dict[str, list[str]] = {}
    for vs in curated["valuesets"]:
        codes: set[str] = set()
        for root in vs.get("icd10cm_roots", []):
            code = root["code"]
            described = root.get("description")
            if described is not None and described != icd.get_description(code):
                raise ValueSetBuildError(
                    f"{vs['name']}: {code} is described as {described!r} but the release says {icd.get_description(code)!r}"
                )
            codes.update(expand_root(icd, code))
        expanded[vs["name"]] = sorted(codes)
    return {
        "generated_by": "python -m terminology.build_valuesets",
        "icd10cm_release": release_name(icd),
        "valuesets": expanded,
    }


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="file or directory to write")
    args = parser.parse_args(argv)
    output: Path = args.output
    if output.is_dir():
        output = output / EXPANDED_NAME
    doc = build(load_curated(), load_icd())
    output.write_text(render(doc), encoding="utf-8")
    total = sum(len(v) for v in doc["valuesets"].values())
    print(f"wrote {output}: {len(doc['valuesets'])} value sets, {total} codes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
