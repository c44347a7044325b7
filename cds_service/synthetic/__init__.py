"""Synthetic charts and order-sign requests for sandboxes, demos and tests."""
from .instances import Synthetic, UnknownScenario, synthesize
from .scenarios import SCENARIOS, Scenario
from .shapes import SHAPES, UnknownShape

__all__ = ["SCENARIOS", "SHAPES", "Scenario", "Synthetic", "UnknownScenario", "UnknownShape", "synthesize"]
