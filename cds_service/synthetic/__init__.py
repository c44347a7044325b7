"""Synthetic charts and order-sign requests for sandboxes, demos and tests."""
from .instances import Synthetic, UnknownScenario, synthesize
from .scenarios import SCENARIOS, Scenario

__all__ = ["SCENARIOS", "Scenario", "Synthetic", "UnknownScenario", "synthesize"]
