"""Contextual bandits."""

from jaxretail.agents.bandits import linear

__all__ = ["linear"]
