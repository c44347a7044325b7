"""The motor grade a red flag's own words state (fhir_mappings/red_flags.py, terminology/data/text/
red_flag_details.yaml): it decides whether a progressive motor deficit waives conservative care
(criteria/waivers.py, max_motor_grade), so a date must never be read as a grade."""
from __future__ import annotations

import pytest

from fhir_mappings.red_flags import _details


@pytest.mark.parametrize("text, grade", [
    ("Progressive weakness, EHL 4/5.", 4),
    ("Progressive foot drop, dorsiflexion 2/5 on the left, 4+/5 on the right.", 2),
    ("Progressive weakness first noted 2/5/2024; EHL 4/5 today.", 4),
    ("Progressive weakness since 3/5/2025.", None),
    ("Progressive weakness, strength 5/5 throughout.", 5),
])
def test_the_lowest_grade_stated_and_never_a_date(text, grade):
    assert _details([text], ())["motor_grade"] == grade
