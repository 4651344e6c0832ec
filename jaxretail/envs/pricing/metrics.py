"""Reward and evaluation metrics of the pricing system: RCR, PCR, DRCR (Liu et al. 2019, Eq. 1).

* ``RCR_t = revenue_t / UV_t`` (revenue conversion rate) and ``PCR_t = profit_t / UV_t``.
  **UV = 0 is explicit**: a day without visitors has no defined rate; :func:`conversion_rate`
  returns 0 for it (no sale is possible) together with a ``defined`` flag.
* ``DRCR_t = RCR_t - RCR_{t - lag}`` (plain difference, the default reading of Eq. 1) or, opt-in,
  the growth ratio ``(RCR_t - RCR_{t - lag}) / |RCR_{t - lag}|``. A difference that involves an
  undefined rate (either day had UV = 0) or, for the ratio, a zero base is 0: the step is skipped.

All functions are elementwise JAX maths (work on scalars or any batch shape).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def conversion_rate(amount: jax.Array, uv: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(amount / uv, uv > 0)`` with the rate set to 0 where ``uv == 0``.

    Args:
      amount: revenue (RCR) or profit (PCR), any shape.
      uv: unique visitors (>= 0), same shape.
    """
    defined = uv > 0
    return jnp.where(defined, amount / jnp.where(defined, uv, 1.0), 0.0), defined


def rate_difference(
    now: jax.Array, before: jax.Array, defined_now: jax.Array, defined_before: jax.Array, relative: bool
) -> jax.Array:
    """DRCR (or DPCR) from two rates; 0 where either is undefined (see the module docstring)."""
    ok = defined_now & defined_before
    if relative:
        ok = ok & (before != 0)
        diff = (now - before) / jnp.where(ok, jnp.abs(before), 1.0)
    else:
        diff = now - before
    return jnp.where(ok, diff, 0.0)


def drcr_series(revenue: jax.Array, uv: jax.Array, lag: int = 1, relative: bool = False) -> jax.Array:
    """DRCR of a daily series: ``revenue``, ``uv`` shaped ``[T, ...]``; returns ``[T - lag, ...]``
    (entry ``i`` is day ``i + lag`` compared with day ``i``)."""
    if int(lag) != lag or lag < 1:
        raise ValueError(f"lag must be an integer >= 1, got lag={lag!r}")
    rate, defined = conversion_rate(revenue, uv)
    return rate_difference(rate[lag:], rate[:-lag], defined[lag:], defined[:-lag], relative)


def summarize_days(info: dict) -> dict:
    """Aggregate a ``[T, B]`` record of step infos into pooled metrics (floats).

    Pooled RCR is total revenue over total UV (not the mean of daily rates), as in the paper's
    group-level comparisons.
    """
    uv = jnp.sum(info["uv"])
    return {
        "revenue": float(jnp.sum(info["revenue"])),
        "profit": float(jnp.sum(info["profit"])),
        "units": float(jnp.sum(info["units"])),
        "uv": float(uv),
        "rcr": float(jnp.sum(info["revenue"]) / jnp.maximum(uv, 1.0)),
        "pcr": float(jnp.sum(info["profit"]) / jnp.maximum(uv, 1.0)),
        "below_cost_days": float(jnp.mean(info["price"] < info["unit_cost"])),
    }
