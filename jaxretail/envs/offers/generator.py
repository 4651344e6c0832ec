"""Simulated shoppers for the offer system, drawn from the coupon population (RetailSynth latents).

Each customer ``u`` and product ``i`` carry the coupon model's utility terms (Xia et al. arXiv 2312.14095):
``a_ui = beta^x_ui X_ui + beta^z_ui Z_i`` and the price coefficient ``c_ui = c beta^w_u beta^w_i < 0`` (the
true price sensitivity). A shopping occasion ``(u, i, t)`` at shelf price ``p_it`` (high-low chain of
:func:`jaxretail.envs.coupon.pricing.shelf_step`) buys at a final price ``p`` iff

    a_ui - m + eps_uit + c_ui log(p / P_i) >= 0,       eps ~ Gumbel(0, noise_scale),

so the willingness to pay is ``WTP = P_i exp((a_ui - m + eps) / |c_ui|)`` and the smallest sufficient
discount off the shelf price is ``d* = clip(1 - WTP / p_it, 0, 1)``. The intercept ``m`` is set so that
a share ``full_price_share`` of occasions buys without any offer. The true class is the smallest offer
level ``>= d*`` (actions 1..4), or 0 (no purchase) when even the largest level is not enough.

Occasions where the customer buys without an offer (``d* = 0``) form the purchase history
(transactions in the Complete Journey schema), from which the features S1-S14 are computed exactly as
for real data.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxretail.choice import pricing as choice_pricing
from jaxretail.core.counter_rng import hash_normal, hash_uniform, seed_from_key
from jaxretail.envs.coupon.configs import BENCHMARK_CATEGORY_SIZES, Dist, get_config
from jaxretail.envs.coupon.generator import category_index
from jaxretail.envs.offers.types import DEFAULT_LEVELS


def draw(spec: Dist, key: jax.Array, shape=()) -> jax.Array:
    """A draw of a coupon-configuration distribution with ``jax.random`` (same law as its numpyro
    class, without numpyro's dispatch cost): Normal, LogNormal, HalfNormal, TruncatedNormal,
    Uniform, Gumbel."""
    kw = dict(spec.kwargs)
    if spec.name == "Normal":
        return kw["loc"] + kw["scale"] * jax.random.normal(key, shape)
    if spec.name == "LogNormal":
        return jnp.exp(kw["loc"] + kw["scale"] * jax.random.normal(key, shape))
    if spec.name == "HalfNormal":
        return kw["scale"] * jnp.abs(jax.random.normal(key, shape))
    if spec.name == "TruncatedNormal":
        loc, scale = jnp.broadcast_to(kw["loc"], shape), jnp.broadcast_to(kw["scale"], shape)
        lo = (kw.get("low", -jnp.inf) - loc) / scale
        hi = (kw.get("high", jnp.inf) - loc) / scale
        return loc + scale * jax.random.truncated_normal(key, lo, hi, shape)
    if spec.name == "Uniform":
        return jax.random.uniform(key, shape, minval=kw["low"], maxval=kw["high"])
    if spec.name == "Gumbel":
        return kw["loc"] + kw["scale"] * jax.random.gumbel(key, shape)
    raise ValueError(f"unsupported distribution {spec}")


def occasion_outcome(
    utility: jax.Array,
    price_coef: jax.Array,
    base_price: jax.Array,
    shelf_price: jax.Array,
    levels: jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One occasion: ``(WTP, smallest sufficient discount d* in [0, 1], true class 0..4)``.

    Args:
      utility: ``a_ui - m + eps`` (price-free utility); price_coef: ``c_ui < 0``; base_price: ``P_i``;
      shelf_price: ``p_it``; levels: ``[4]`` offered discount fractions of actions 1..4 (increasing).
    """
    wtp = choice_pricing.willingness_to_pay(utility, price_coef, base_price)
    d_min = jnp.clip(1.0 - wtp / shelf_price, 0.0, 1.0)
    sufficient = levels >= d_min
    label = jnp.where(jnp.any(sufficient), 1 + jnp.argmax(sufficient), 0)
    return wtp, d_min, label.astype(jnp.int32)


def simulate(
    key: jax.Array,
    num_customers: int = 1000,
    num_weeks: int = 26,
    occasions_per_week: int = 8,
    num_categories: int = 6,
    levels=DEFAULT_LEVELS,
    full_price_share: float = 0.2,
    config: str = "benchmark",
    cost_ratio: float = 0.4,
) -> dict[str, dict[str, np.ndarray]]:
    """Draw ``U * W * K`` occasions and the purchase history they imply.

    Args:
      num_customers ``U``, num_weeks ``W``, occasions_per_week ``K`` (products considered per
      customer-week, uniform over the catalogue), num_categories (first category blocks of the
      coupon benchmark catalogue), levels (discounts of actions 1..4), full_price_share (share of
      occasions that buy with no offer; sets ``m``), config (coupon scenario configuration name),
      cost_ratio (unit cost = ``cost_ratio * P_i``).

    Returns:
      ``{"occasions": {...[N]}, "transactions": {...[M]}}`` as NumPy columns. Occasions hold
      ``customer, product, week, day, base_price, shelf_price, shelf_discount, wtp,
      sufficient_discount, label, quantity, unit_cost``; transactions follow the Complete Journey
      schema (``household_id, basket_id, product_id, quantity, sales_value, retail_disc, coupon_disc,
      coupon_match_disc, week, day``).
    """
    for name, v in (("num_customers", num_customers), ("num_weeks", num_weeks),
                    ("occasions_per_week", occasions_per_week),
                    ("num_categories", num_categories)):  # fmt: skip
        if isinstance(v, bool) or int(v) != v or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {name}={v!r}")
    if not 0.0 < full_price_share < 1.0:
        raise ValueError(f"full_price_share must lie in (0, 1), got full_price_share={full_price_share!r}")
    if not 0.0 <= cost_ratio < 1.0:
        raise ValueError(f"cost_ratio must lie in [0, 1), got cost_ratio={cost_ratio!r}")
    if num_categories > len(BENCHMARK_CATEGORY_SIZES):
        raise ValueError(f"num_categories must be <= {len(BENCHMARK_CATEGORY_SIZES)}, got {num_categories}")
    cfg = get_config(config, category_sizes=BENCHMARK_CATEGORY_SIZES[:num_categories])
    out = _simulate(
        key, jnp.asarray(levels, jnp.float32), jnp.float32(full_price_share), cfg,
        int(num_customers), int(num_weeks), int(occasions_per_week),
    )  # fmt: skip
    occ = {k: np.asarray(v) for k, v in out.items()}
    occ["unit_cost"] = (cost_ratio * occ["base_price"]).astype(np.float32)
    bought = occ["sufficient_discount"] <= 0.0
    q = occ["quantity"][bought]
    tx = {
        "household_id": occ["customer"][bought].astype(np.int64),
        "basket_id": (occ["customer"][bought].astype(np.int64) * num_weeks + occ["week"][bought]),
        "product_id": occ["product"][bought].astype(np.int64),
        "quantity": q.astype(np.int64),
        "sales_value": (occ["shelf_price"][bought] * q).astype(np.float64),
        "retail_disc": ((occ["base_price"] - occ["shelf_price"])[bought] * q).astype(np.float64),
        "coupon_disc": np.zeros(q.shape, np.float64),
        "coupon_match_disc": np.zeros(q.shape, np.float64),
        "week": occ["week"][bought].astype(np.int64),
        "day": occ["day"][bought].astype(np.int64),
    }
    return {"occasions": occ, "transactions": tx}


@functools.partial(jax.jit, static_argnums=(3, 4, 5, 6))
def _simulate(key, levels, share, cfg, U, W, K):
    keys = iter(jax.random.split(key, 16))
    num_products = cfg.num_products
    # products [I]: base price P = max(alpha_0 + alpha_1 Z, p_min), brand Z, price weight beta^w_i
    mean_i = draw(cfg.brand_mean, next(keys), (cfg.num_categories,))[category_index(cfg.category_sizes)]
    z = mean_i + mean_i * jax.random.truncated_normal(next(keys), -1.0, jnp.inf, (num_products,))
    alpha_1 = draw(cfg.alpha_1, next(keys))
    base_price = jnp.maximum(draw(cfg.alpha_0, next(keys), (num_products,)) + alpha_1 * z, cfg.min_price)
    beta_w_product = draw(cfg.beta_w_product, next(keys), (num_products,))
    beta_w_customer = draw(cfg.beta_w_customer, next(keys), (U,))
    # the coupon benchmark's high-low shelf chain (jaxretail.envs.coupon.pricing): all Beta draws
    # (a01 [I], a11 [I], depth [W, I]) come from one Gamma call, Beta(a, b) = G_a / (G_a + G_b)
    specs = ((cfg.discount_start, 1), (cfg.discount_stay, 1), (cfg.discount_depth, W))
    conc = [(dict(d.kwargs)["concentration1"], dict(d.kwargs)["concentration0"]) for d, _ in specs]
    alpha = jnp.concatenate(
        [jnp.full((n * num_products, 2), jnp.asarray(c)) for (_, n), c in zip(specs, conc, strict=True)]
    )
    g = jax.random.gamma(next(keys), alpha)
    betas = g[:, 0] / (g[:, 0] + g[:, 1])
    a01, a11 = betas[:num_products], betas[num_products : 2 * num_products]
    depth = betas[2 * num_products :].reshape(W, num_products)

    def week(on, k_depth):
        k, d = k_depth
        on = jax.random.uniform(k, on.shape) < jnp.where(on, a11, a01)
        discount = jnp.where(on, d, 0.0)
        return on, (discount, jnp.maximum((1.0 - discount) * base_price, cfg.min_price))

    _, (discount, price) = jax.lax.scan(
        week, jnp.zeros(num_products, bool), (jax.random.split(next(keys), W), depth)
    )
    customer = jnp.repeat(jnp.arange(U, dtype=jnp.int32), W * K)
    wk = jnp.tile(jnp.repeat(jnp.arange(W, dtype=jnp.int32), K), U)
    product = jax.random.randint(next(keys), customer.shape, 0, num_products)
    seed = seed_from_key(next(keys))
    # streamed (customer, product) latents beta^x, beta^z (LogNormal) and the observed feature X ~ N(0, 1)
    (bx_loc, bx_scale), (bz_loc, bz_scale) = (
        (dict(d.kwargs)["loc"], dict(d.kwargs)["scale"]) for d in (cfg.beta_x, cfg.beta_z)
    )
    beta_x = jnp.exp(bx_loc + bx_scale * hash_normal(seed, customer, product, 0))
    beta_z = jnp.exp(bz_loc + bz_scale * hash_normal(seed, customer, product, 1))
    x = hash_normal(seed, customer, product, 2)
    a = beta_x * x + beta_z * z[product]
    coef = cfg.price_scale * beta_w_customer[customer] * beta_w_product[product]
    eps = cfg.utility_noise_scale * jax.random.gumbel(next(keys), customer.shape)
    base = base_price[product].astype(jnp.float32)
    shelf = price[wk, product].astype(jnp.float32)
    # m: the (1 - share) quantile of the utility at the shelf price, so `share` of occasions buy unprompted
    m = jnp.quantile(a + eps + coef * jnp.log(shelf / base), 1.0 - share)
    wtp, d_min, label = jax.vmap(occasion_outcome, in_axes=(0, 0, 0, 0, None))(
        a + eps - m, coef, base, shelf, levels
    )
    day = 7 * wk + jnp.floor(7 * hash_uniform(seed, customer, wk, 3)).astype(jnp.int32)
    return {
        "customer": customer,
        "product": product.astype(jnp.int32),
        "week": wk,
        "day": day,
        "base_price": base,
        "shelf_price": shelf,
        "shelf_discount": discount[wk, product].astype(jnp.float32),
        "wtp": wtp.astype(jnp.float32),
        "sufficient_discount": d_min.astype(jnp.float32),
        "label": label,
        "quantity": 1 + jax.random.poisson(next(keys), 0.3, customer.shape).astype(jnp.int32),
    }
