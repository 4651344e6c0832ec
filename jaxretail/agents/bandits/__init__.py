"""Contextual bandits."""

from jaxretail.agents.bandits import linear, neural

__all__ = ["linear", "neural"]
