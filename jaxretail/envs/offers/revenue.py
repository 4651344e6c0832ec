"""Revenue of offers made to simulated shoppers whose willingness to pay is known.

For one sample with shelf price ``p``, quantity ``q``, unit cost ``k`` and smallest sufficient discount
``d*`` (see :mod:`jaxretail.envs.offers.generator`), action ``a`` offers ``d = levels[a - 1]`` (action 0:
no offer, ``d = 0``). The shopper buys iff ``d >= d*`` (without an offer: iff ``d* = 0``). Then

    revenue = buy p (1 - d) q,   discount spend = buy p d q,   margin = revenue - buy k q.

:func:`summary` reports per-sample means with standard errors (``std / sqrt(N)``) and, against a
reference policy on the same samples, the paired difference with its standard error.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

OUTCOMES = ("revenue", "margin", "conversion", "discount_spend")


def offer_outcome(action, sufficient_discount, price, quantity, unit_cost, levels) -> dict[str, jax.Array]:
    """Outcomes of one offer (vmap over samples); ``levels [4]`` the discounts of actions 1..4."""
    d = jnp.where(action > 0, jnp.asarray(levels)[jnp.clip(action - 1, 0, 3)], 0.0)
    buy = (d >= sufficient_discount).astype(jnp.float32)
    revenue = buy * price * (1.0 - d) * quantity
    return {
        "revenue": revenue,
        "margin": revenue - buy * unit_cost * quantity,
        "conversion": buy,
        "discount_spend": buy * price * d * quantity,
    }


def outcomes(actions, sufficient_discount, price, quantity, unit_cost, levels) -> dict[str, jax.Array]:
    """Per-sample outcomes ``[N]`` of ``actions [N]``."""
    return jax.vmap(offer_outcome, in_axes=(0, 0, 0, 0, 0, None))(
        actions, sufficient_discount, price, quantity.astype(jnp.float32), unit_cost, jnp.asarray(levels)
    )


def _mean_se(x):
    n = x.shape[0]
    return jnp.mean(x), jnp.std(x, ddof=1) / jnp.sqrt(n)


def summary(out: dict[str, jax.Array], reference: dict[str, jax.Array] | None = None) -> dict[str, jax.Array]:
    """``{name}_mean``, ``{name}_se`` and, given ``reference``, ``{name}_diff`` / ``{name}_diff_se``."""
    res = {}
    for name in OUTCOMES:
        res[f"{name}_mean"], res[f"{name}_se"] = _mean_se(out[name])
        if reference is not None:
            res[f"{name}_diff"], res[f"{name}_diff_se"] = _mean_se(out[name] - reference[name])
    return res
