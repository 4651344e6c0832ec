"""Shared discrete-choice maths (multinomial logit, inclusive values, sampling, MNL pricing)."""

from jaxretail.choice import mnl, pricing

__all__ = ["mnl", "pricing"]
