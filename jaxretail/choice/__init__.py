"""Shared discrete-choice maths (multinomial logit, inclusive values, sampling)."""

from jaxretail.choice import mnl

__all__ = ["mnl"]
