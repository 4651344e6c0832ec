"""Shared discrete-choice maths: multinomial logit (``mnl``), category -> product logit on a tiled
catalogue with inclusive values and inverse-CDF sampling (``tiled``), MNL pricing and the willingness to pay
of a buy-or-not choice (``pricing``).
Every function takes one choice situation; callers vmap."""

from jaxretail.choice import mnl, pricing, tiled

__all__ = ["mnl", "pricing", "tiled"]
