"""Chart -> Facts in one pass over the patient's resources."""
from __future__ import annotations

from .care import map_care
from .chart import Chart
from .diagnoses import map_diagnoses
from .facts import Facts, Order
from .level_facts import map_level_facts
from .measures import map_measurements
from .orders import map_orders
from .red_flags import map_red_flags
from .resources import is_refuted


def build_facts(chart: Chart, orders: tuple[Order, ...] | None = None) -> Facts:
    """orders: the already-mapped draft orders, when the caller mapped them first."""
    record = [r for r in chart.resources if not is_refuted(r)]
    return Facts(
        orders=map_orders(chart.draft_orders) if orders is None else orders,
        care=map_care(record),
        red_flags=map_red_flags(record),
        today=chart.today,
        unavailable=chart.unavailable,
        level_facts=map_level_facts(record, chart.draft_orders),
        measurements=map_measurements(record),
        diagnoses=map_diagnoses(record),
    )
