"""RetailSynth four-stage customer model for ONE customer and one week (vmap over customers).

Stages (Xia et al. arXiv 2312.14095 and 2405.10469; ``shared/specs/coupon.md`` §1):

0. utility ``mu_i = beta^x_i X_i + beta^z_i Z_i + c beta^w_u beta^w_i log P~_i + eps_i`` with
   ``eps ~ Gumbel(0, 0.1)`` and ``P~`` the final price after shelf discount and coupon;
1. store visit (autoregressive, see :func:`visit_probability`), decided before any product work
   because it depends on last week's store value only;
2. category purchase ``C_j ~ Bernoulli(sigmoid(g0_j + g1_j CV_j))``, ``CV_j = log sum_{i in j} e^{mu_i}``;
3. product choice: multinomial logit within the category (at most one product per category);
4. quantity ``N = 1 + Poisson(exp(g0_i + g1_ui mu_i))``.

Products live in the tiled layout of :mod:`jaxretail.envs.coupon.layout` (``[rows, R]``). Every random
number is a counter hash of global (customer, product or category, week) ids, so a customer's week
does not depend on the block or device that computes it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxretail.core.counter_rng import bits_to_uniform, pair_bits, uniform_to_gumbel, uniform_to_normal

# streams of per-(customer, product) hashes; per-product constants are stacked in this order
STREAMS = ("beta_z", "beta_x", "quantity_slope", "x_mean", "x_scale", "x_noise", "utility_noise")


@struct.dataclass
class WeekTiles:
    """Per-product inputs of one week in tile layout (each ``[rows, R]`` unless noted)."""

    log_price: jax.Array  # log P_it, shelf price (0 on padding)
    price: jax.Array  # P_it shelf price
    base_price: jax.Array  # P_i^base
    brand: jax.Array  # Z_i
    beta_w_product: jax.Array  # beta^w_i
    quantity_intercept: jax.Array  # gamma^prod_0i
    product_consts: jax.Array  # [len(STREAMS), rows, R] uint32 column words (counter_rng.column_hash)
    category_intercept: jax.Array  # [J]
    category_slope: jax.Array  # [J]
    category_consts: jax.Array  # [2, J] uint32 column words of the category-purchase and choice uniforms
    row_category: jax.Array  # [rows] int32 category of each tile row
    utility_cap: jax.Array  # [] float32 upper cap of utilities this week (+inf: no cap)


@struct.dataclass
class CustomerWeek:
    """One customer's inputs for the week."""

    customer_hashes: jax.Array  # [len(STREAMS)] uint32 row words (counter_rng.row_hash) of the customer
    category_hashes: jax.Array  # [2] uint32 row words of the customer for the category uniforms
    beta_w_customer: jax.Array  # [] beta^w_u
    coupon: jax.Array  # [J] coupon fraction per category in [0, 1) (store-wide: the same in every category)
    redeemed: jax.Array  # [] 0/1, coupon redemption R_u this week
    poisson_key: jax.Array  # [] PRNG key for the quantity draws
    x_chi2: jax.Array  # [] Q = sum_i s_i^2 of the week's observed feature (chi^2 with I dof)
    x_total: jax.Array  # [] S = sum_i X_i of the week's observed feature


class ModelOptions(struct.PyTreeNode):
    """Static options of the customer model."""

    beta_z: tuple = struct.field(pytree_node=False)  # (loc, scale) of LogNormal
    beta_x: tuple = struct.field(pytree_node=False)
    quantity_slope: tuple = struct.field(pytree_node=False)
    price_scale: float = struct.field(pytree_node=False, default=-1.4)
    noise_scale: float = struct.field(pytree_node=False, default=0.1)
    legacy_x: bool = struct.field(pytree_node=False, default=False)  # X = m + |m| z (shared key)
    max_poisson_rate: float = struct.field(pytree_node=False, default=1e4)


def _stream_uniform(customer_hashes, consts, s):
    return bits_to_uniform(pair_bits(customer_hashes[s], consts[s]))


def tastes(customer_hashes: jax.Array, consts: jax.Array, opts: ModelOptions) -> dict[str, jax.Array]:
    """The static per-(customer, product) LogNormal tastes ``beta_z``, ``beta_x`` and ``quantity_slope``
    of one customer in the layout of ``consts`` (``[rows, R]`` each)."""
    out = {}
    for s, name in enumerate(("beta_z", "beta_x", "quantity_slope")):
        loc, scale = getattr(opts, name)
        out[name] = jnp.exp(loc + scale * uniform_to_normal(_stream_uniform(customer_hashes, consts, s)))
    return out


def utilities(week: WeekTiles, cust: CustomerWeek, opts: ModelOptions, valid: jax.Array) -> dict:
    """Utilities ``mu [rows, R]`` (``-inf`` on padding) and the paid-price factor ``1 - c R``.

    The observed feature is ``X = m + s z`` with ``m, z ~ N(0, 1)`` and ``s ~ HalfNormal(1)``
    independent, drawn exactly as in :func:`observed_feature`. With ``opts.legacy_x`` (the
    original's shared key) ``s = |m|`` and ``X = m + |m| z``.
    """
    h, k = cust.customer_hashes, week.product_consts
    normal = lambda s: uniform_to_normal(_stream_uniform(h, k, s))
    lognormal = lambda s, p: jnp.exp(p[0] + p[1] * normal(s))
    beta_z = lognormal(0, opts.beta_z)
    beta_x = lognormal(1, opts.beta_x)
    if opts.legacy_x:
        m = normal(3)
        x = m + jnp.abs(m) * normal(5)
    else:
        x = observed_feature(normal(4), normal(5), cust.x_chi2, cust.x_total, valid)
    eps = uniform_to_gumbel(_stream_uniform(h, k, 6), opts.noise_scale)
    paid_factor = 1.0 - cust.coupon * cust.redeemed  # [J]
    log_final_price = week.log_price + jnp.log(paid_factor)[week.row_category][:, None]
    price_coef = opts.price_scale * cust.beta_w_customer * week.beta_w_product
    mu = beta_x * x + beta_z * week.brand + price_coef * log_final_price + eps
    mu = jnp.minimum(mu, week.utility_cap)
    return {"mu": jnp.where(valid, mu, -jnp.inf), "paid_factor": paid_factor}


def observed_feature(
    g: jax.Array, z0: jax.Array, chi2: jax.Array, total: jax.Array, valid: jax.Array
) -> jax.Array:
    """Observed feature ``X_i = m_i + s_i z_i`` of one customer-week, drawn given its product sum.

    ``X_i | s_i ~ N(0, 1 + s_i^2)``, so ``X_i = a_i z_i`` with ``a_i = sqrt(1 + s_i^2)``. The week's
    totals are drawn first, per customer: ``Q = sum s_i^2 ~ chi^2_I`` and ``S = sum X_i ~ N(0, I + Q)``
    (so the observed mean ``S / I`` costs O(1) per customer). Then, exactly:
    ``s = sqrt(Q) |g| / ||g||`` (a Gaussian vector's direction is uniform and independent of its norm)
    and ``z = z0 - a (a . z0 - S) / ||a||^2`` (a Gaussian vector conditioned on a linear sum).

    Args:
      g, z0: ``[rows, R]`` independent standard normals.
      chi2: ``Q``; total: ``S``; valid: ``[rows, R]`` mask of real products.
    """
    g = jnp.where(valid, g, 0.0)
    z0 = jnp.where(valid, z0, 0.0)
    s = jnp.abs(g) * jnp.sqrt(chi2 / jnp.sum(g * g))
    a = jnp.where(valid, jnp.sqrt(1.0 + s * s), 0.0)
    z = z0 - a * (jnp.sum(a * z0) - total) / jnp.sum(a * a)
    return a * z


def inclusive_values(mu: jax.Array, row_to_category: jax.Array) -> dict:
    """Category inclusive values ``CV [J]``, store value ``SV []`` and the shifted weights.

    Max-subtracted per tile row and per category, so every category keeps full float32 precision
    however far its utilities lie below the customer's largest one: ``w = e^{mu - m_row}`` within a row,
    ``row_scale = e^{m_row - m_cat}``, ``cat_sum = sum_rows row_sum``, ``CV = m_cat + log cat_sum``
    (``cat_sum >= 1``, so ``CV`` is finite whenever the utilities are).
    """
    m_row = jnp.max(mu, axis=-1)  # [rows]; every row holds at least one real product
    m_row = jnp.where(jnp.isfinite(m_row), m_row, 0.0)
    in_cat = row_to_category > 0  # [rows, J]
    m_cat = jnp.max(jnp.where(in_cat, m_row[:, None], -jnp.inf), axis=0)  # [J]
    m_cat = jnp.where(jnp.isfinite(m_cat), m_cat, 0.0)
    w = jnp.exp(mu - m_row[:, None])  # [rows, R], 0 on padding
    row_scale = jnp.exp(m_row - row_to_category @ m_cat)  # [rows] e^{m_row - m_cat(row)}
    row_sum = jnp.sum(w, axis=-1) * row_scale  # [rows], relative to the category maximum
    cat_sum = row_sum @ row_to_category  # [J]
    cv = jnp.where(cat_sum > 0, m_cat + jnp.log(jnp.where(cat_sum > 0, cat_sum, 1.0)), -jnp.inf)
    m_s = jnp.max(cv)
    sv = m_s + jnp.log(jnp.sum(jnp.exp(cv - m_s)))
    return {"w": w, "row_scale": row_scale, "row_sum": row_sum, "cat_sum": cat_sum, "cv": cv, "sv": sv}


def category_probability(cv: jax.Array, intercept: jax.Array, slope: jax.Array) -> jax.Array:
    """``sigmoid(g0 + g1 CV)`` per category, safe for ``CV = -inf``."""
    logit = jnp.where(
        jnp.isfinite(cv),
        intercept + slope * jnp.where(jnp.isfinite(cv), cv, 0.0),
        jnp.where(slope > 0, -jnp.inf, intercept),
    )
    return jax.nn.sigmoid(logit)


def choose_products(w, row_sum, cat_sum, uniform, layout, row_scale=None) -> tuple[jax.Array, jax.Array]:
    """Inverse-CDF MNL choice in every category from one uniform each: ``(row [J], slot [J])``.

    ``w [rows, R]`` are weights within each row, ``row_scale [rows]`` brings them to the scale of
    ``row_sum`` and ``cat_sum`` (default 1: ``w`` already on that scale).

    Picks the row whose within-category running sum first reaches ``u * S_j``, then the slot within
    that row, reusing the same uniform (no Gumbel per product).
    """
    rows = row_sum.shape[0]
    num_cat = cat_sum.shape[0]
    cum_row = row_sum @ jnp.asarray(layout.same_category_prefix)  # [rows] running sum within category
    target = uniform * cat_sum  # [J]
    in_cat = jnp.asarray(layout.row_category)[None, :] == jnp.arange(num_cat)[:, None]  # [J, rows]
    count = jnp.sum(in_cat & (cum_row[None, :] < target[:, None]), axis=1)
    row = jnp.asarray(layout.category_first_row) + jnp.minimum(
        count, jnp.asarray(layout.category_num_rows) - 1
    )
    residual = target - (cum_row[row] - row_sum[row])
    row_w = w[row] if row_scale is None else w[row] * row_scale[row][:, None]  # [J, R]
    cum_slot = row_w @ jnp.asarray(layout.slot_prefix)  # [J, R]
    last_valid = jnp.sum(jnp.asarray(layout.valid)[row], axis=1) - 1
    slot = jnp.minimum(jnp.sum(cum_slot < residual[:, None], axis=1), last_valid)
    del rows
    return row, slot


def purchase_week(week: WeekTiles, cust: CustomerWeek, opts: ModelOptions, layout) -> dict:
    """Stages 0 and 2-4 for a customer who visits (see :func:`purchase_given_utilities`)."""
    u = utilities(week, cust, opts, jnp.asarray(layout.valid))
    return purchase_given_utilities(u["mu"], week, cust, opts, layout)


def purchase_given_utilities(
    mu: jax.Array, week: WeekTiles, cust: CustomerWeek, opts: ModelOptions, layout
) -> dict:
    """Stages 2-4 from the utilities ``mu [rows, R]`` of a visiting customer.

    Returns per-category lines (``[J]`` each: quantity, product, shelf, base and paid price), the
    store value ``SV`` and the category purchase probabilities.
    """
    iv = inclusive_values(mu, jnp.asarray(layout.row_to_category))
    p_cat = category_probability(iv["cv"], week.category_intercept, week.category_slope)
    u_cat = bits_to_uniform(pair_bits(cust.category_hashes[0], week.category_consts[0]))
    u_choice = bits_to_uniform(pair_bits(cust.category_hashes[1], week.category_consts[1]))
    bought = u_cat < p_cat  # [J]
    row, slot = choose_products(iv["w"], iv["row_sum"], iv["cat_sum"], u_choice, layout, iv["row_scale"])
    product = jnp.asarray(layout.product)[row, slot]
    mu_line = mu[row, slot]
    q_slope = jnp.exp(
        opts.quantity_slope[0]
        + opts.quantity_slope[1]
        * uniform_to_normal(
            bits_to_uniform(pair_bits(cust.customer_hashes[2], week.product_consts[2][row, slot]))
        )
    )
    rate = jnp.minimum(jnp.exp(week.quantity_intercept[row, slot] + q_slope * mu_line), opts.max_poisson_rate)
    quantity = jnp.where(bought, 1 + jax.random.poisson(cust.poisson_key, rate), 0)
    shelf = week.price[row, slot]
    paid_factor = 1.0 - cust.coupon * cust.redeemed  # [J]; line j is in category j
    return {
        "quantity": quantity.astype(jnp.int32),  # [J] items per category line (0: not bought)
        "product": jnp.where(bought, product, -1),  # [J]
        "shelf_price": shelf,  # [J] pre-coupon price of the line's product
        "base_price": week.base_price[row, slot],  # [J]
        "paid_price": paid_factor * shelf,  # [J]
        "store_value": iv["sv"],  # []
        "category_probability": p_cat,  # [J]
        "rate": rate,  # [J] Poisson rate lambda of the line's extra quantity
    }


def visit_probability(
    previous_probability,
    visited_last_week,
    store_value_last_week,
    marketing,
    inertia,
    intercept,
    slope,
    marketing_weight,
    first_step,
):
    """``p_t = (1 - theta) sigmoid(g0 + g1 V_{t-1} SV_{t-1} + g2 M_t) + theta p_{t-1}``.

    On the first step of a trajectory the carried-in probability is kept (1 after a reset).
    """
    sv = jnp.where(visited_last_week, store_value_last_week, 0.0)
    s = jax.nn.sigmoid(intercept + slope * sv + marketing_weight * marketing)
    p = (1.0 - inertia) * s + inertia * previous_probability
    return jnp.where(first_step, previous_probability, p)
