"""Metrics of the coupon benchmark (``shared/specs/coupon.md`` §3.8), from recorded weekly info.

Per evaluation window of ``T`` weeks and ``U`` customers:

* accumulated revenue ``sum_u sum_t r_ut`` and accumulated demand (items);
* customer retention: share of customers with revenue in at least one of the last 3 weeks;
* category penetration, intended: mean number of distinct categories a customer bought in the window;
  as originally coded: total items / U (which is why it equals normalised demand);
* offered coupon discount (mean offered fraction) and redeemed coupon discount (mean over customer-weeks
  of the coupon fraction when a coupon line was bought).

Each metric is also reported relative to the uniformly random policy on the same simulation, and per
price-sensitivity segment (customers split at the median of their mean price coefficient).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxretail.core.rollout import Transition
from jaxretail.core.stats import mean_se

METRICS = (
    "revenue", "demand", "retention", "category_penetration", "category_penetration_as_coded",
    "offered_discount", "redeemed_discount",
)  # fmt: skip
RETENTION_WINDOW = 3


def record_coupon_week(tr: Transition) -> dict[str, jax.Array]:
    """Recorder for :func:`jaxretail.core.scan_steps`: the per-customer weekly quantities, ``[U]`` each."""
    info = tr.info
    keys = ("revenue", "demand", "category_mask", "coupon", "redeemed", "nonfinite")
    return {k: info[k] for k in keys if k in info}


def customer_metrics(records: dict[str, jax.Array], window: int = RETENTION_WINDOW) -> dict[str, jax.Array]:
    """Per-customer totals over the recorded weeks (``records`` leaves ``[T, U]``); each ``[U]``."""
    mask = jnp.bitwise_or.reduce(records["category_mask"], axis=0)
    coupon = records["coupon"]
    return {
        "revenue": records["revenue"].sum(0),
        "demand": records["demand"].sum(0),
        "retention": (records["revenue"][-window:] > 0).any(0).astype(jnp.float32),
        "category_penetration": jax.lax.population_count(mask).astype(jnp.float32),
        "category_penetration_as_coded": records["demand"].sum(0),
        "offered_discount": coupon.mean(0),
        "redeemed_discount": (coupon * records["redeemed"]).mean(0),
        # customer-weeks with a guarded non-finite value (always 0 unless the model breaks; never silent)
        "nonfinite_weeks": records["nonfinite"].sum(0)
        if "nonfinite" in records
        else jnp.zeros_like(coupon[0]),
    }


def aggregate(per_customer: dict[str, np.ndarray], select: np.ndarray | None = None) -> dict[str, float]:
    """Simulation-level metrics from per-customer values (optionally a customer subset)."""
    sel = np.ones_like(np.asarray(per_customer["revenue"]), bool) if select is None else np.asarray(select)
    n = max(int(sel.sum()), 1)
    v = {k: np.asarray(x, np.float64)[sel] for k, x in per_customer.items()}
    return {
        "revenue": v["revenue"].sum(),
        "demand": v["demand"].sum(),
        "retention": v["retention"].mean() if n else np.nan,
        "category_penetration": v["category_penetration"].mean(),
        "category_penetration_as_coded": v["category_penetration_as_coded"].sum() / n,
        "offered_discount": v["offered_discount"].mean(),
        "redeemed_discount": v["redeemed_discount"].mean(),
    }


def summarize(per_sim: list[dict[str, float]], random_per_sim: list[dict[str, float]]) -> dict[str, float]:
    """Mean +- s.e. over simulations of each metric, raw and divided by the random policy's value on the
    same simulation (mean of per-simulation ratios)."""
    out = {}
    for m in METRICS:
        raw = mean_se([s[m] for s in per_sim])
        ratios = [s[m] / r[m] if r[m] else np.nan for s, r in zip(per_sim, random_per_sim, strict=True)]
        rel = mean_se(ratios)
        out[m], out[f"{m}_se"] = raw.mean, raw.se
        out[f"{m}_vs_random"], out[f"{m}_vs_random_se"] = rel.mean, rel.se
    return out


def mean_price_coefficient(scenario, price_scale: float) -> np.ndarray:
    """Per-customer mean over products of ``beta^w_ui = c beta^w_u beta^w_i``, ``[U]``."""
    return (
        price_scale
        * np.asarray(scenario.beta_w_customer)
        * float(np.mean(np.asarray(scenario.beta_w_product)))
    )
