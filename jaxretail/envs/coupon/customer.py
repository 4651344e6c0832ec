"""RetailSynth four-stage customer model for ONE customer and one week (vmap over customers).

Stages (Xia et al. arXiv 2312.14095 and 2405.10469; ``shared/specs/coupon.md`` §1):

0. utility ``mu_i = beta^x_i X_i + beta^z_i Z_i + c beta^w_u beta^w_i log P~_i + eps_i`` with
   ``eps ~ Gumbel(0, 0.1)`` and ``P~`` the final price after shelf discount and coupon;
1. store visit (autoregressive, see :func:`visit_probability`), decided before any product work
   because it depends on last week's store value only;
2. category purchase ``C_j ~ Bernoulli(sigmoid(g0_j + g1_j CV_j))``, ``CV_j = log sum_{i in j} e^{mu_i}``;
3. product choice: multinomial logit within the category (at most one product per category);
4. quantity ``N = 1 + Poisson(exp(g0_i + g1_ui mu_i))``.

Stages 2-3 are :mod:`jaxretail.choice.tiled` (the discrete-choice module). Per-product work runs on
the flat slot layout ``[S]`` (``S = rows R`` of :class:`~jaxretail.choice.tiled.TileLayout`, row-major;
vmapped to ``[b, S]`` it vectorises along the long minor axis), reshaped to ``[rows, R]`` for the
choice. Every random number is a counter hash of global (customer, product or category, week) ids, so a
customer's week does not depend on the block or device that computes it. Per-slot normals are
Box-Muller pairs (:mod:`jaxretail.core.counter_rng`): ``(log beta^z, log beta^x)`` from streams 0
and 1, the observed feature's ``(z0, g^2)`` (``(m, z)`` under legacy coupling) from streams 5 and 4
(3 and 5); quantities are inverse-CDF Poisson draws of a per-(customer, category) uniform.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxretail.choice import tiled
from jaxretail.core.counter_rng import (
    POISSON_INVERSE_CDF_MAX_RATE,
    bits_to_uniform,
    half_turn_sine,
    normal_and_square,
    normal_pair,
    pair_bits,
    pair_bits_offset,
    poisson_inverse_cdf,
    row_offset,
    uniform_to_gumbel,
    uniform_to_normal,
)

# streams of per-(customer, product) hashes; per-product constants are stacked in this order
STREAMS = ("beta_z", "beta_x", "quantity_slope", "x_mean", "x_scale", "x_noise", "utility_noise")
# streams of per-(customer, category) hashes
CATEGORY_STREAMS = ("category_purchase", "product_choice", "quantity")


@struct.dataclass
class WeekTiles:
    """Per-product inputs of one week in the flat slot layout (``[S]`` each unless noted)."""

    log_price: jax.Array  # log P_it, shelf price (0 on padding)
    price: jax.Array  # P_it shelf price (1 on padding)
    base_price: jax.Array  # P_i^base
    brand: jax.Array  # Z_i
    beta_w_product: jax.Array  # beta^w_i
    quantity_intercept: jax.Array  # gamma^prod_0i
    product_consts: jax.Array  # [len(STREAMS), S] uint32 column words (counter_rng.column_hash)
    valid: jax.Array  # [S] bool, slot holds a product
    row_category: jax.Array  # [rows] int32 category of each row of R slots (rows R = S)
    category_intercept: jax.Array  # [J]
    category_slope: jax.Array  # [J]
    category_consts: jax.Array  # [len(CATEGORY_STREAMS), J] uint32 column words
    utility_cap: jax.Array  # [] float32 upper cap of utilities this week (+inf: no cap)


@struct.dataclass
class CustomerWeek:
    """One customer's inputs for the week."""

    customer_hashes: jax.Array  # [len(STREAMS)] uint32 row words (counter_rng.row_hash) of the customer
    category_hashes: jax.Array  # [len(CATEGORY_STREAMS)] uint32 row words for the category uniforms
    beta_w_customer: jax.Array  # [] beta^w_u
    coupon: jax.Array  # [J] coupon fraction per category in [0, 1) (store-wide: the same in every category)
    redeemed: jax.Array  # [] 0/1, coupon redemption R_u this week
    x_chi2: jax.Array  # [] Q = sum_i s_i^2 of the week's observed feature (chi^2 with I dof)
    x_total: jax.Array  # [] S = sum_i X_i of the week's observed feature
    # [len(STREAMS)] counter_rng.row_offset of customer_hashes (None: computed here); precomputed
    # outside the per-slot loops, it saves four integer operations per slot and stream
    customer_offsets: jax.Array | None = None


class ModelOptions(struct.PyTreeNode):
    """Static options of the customer model."""

    beta_z: tuple = struct.field(pytree_node=False)  # (loc, scale) of LogNormal
    beta_x: tuple = struct.field(pytree_node=False)
    quantity_slope: tuple = struct.field(pytree_node=False)
    price_scale: float = struct.field(pytree_node=False, default=-1.4)
    noise_scale: float = struct.field(pytree_node=False, default=0.1)
    # the original's shared key: tastes from one inverse-CDF normal per stream (equal streams give
    # perfectly correlated tastes) and X = m + |m| z
    legacy_coupling: bool = struct.field(pytree_node=False, default=False)
    max_poisson_rate: float = struct.field(pytree_node=False, default=1e4)
    num_products: int = struct.field(pytree_node=False, default=0)  # I (observed-feature conditioning)


def taste_normals(word_z: jax.Array, word_x: jax.Array, legacy_coupling: bool) -> tuple[jax.Array, jax.Array]:
    """The standard normals of ``log beta^z`` and ``log beta^x`` from their stream words (any shape).

    Independent streams: one Box-Muller pair ``(R cos t, R sin t)`` (radius from ``word_z``, angle from
    ``word_x``). Legacy coupling (the original's shared key, equal stream seeds): one inverse-CDF normal
    per word, so equal words give equal normals, as the quantity slope's (always inverse CDF).
    """
    if legacy_coupling:
        return uniform_to_normal(bits_to_uniform(word_z)), uniform_to_normal(bits_to_uniform(word_x))
    return normal_pair(word_z, word_x)


def _words(cust: CustomerWeek, week: WeekTiles, s: int) -> jax.Array:
    """``pair_bits`` of the customer's row word and the products' column words of stream ``s``."""
    offsets = cust.customer_offsets
    if offsets is None:
        offsets = row_offset(cust.customer_hashes)
    return pair_bits_offset(cust.customer_hashes[s], offsets[s], week.product_consts[s])


def tastes(customer_hashes: jax.Array, consts: jax.Array, opts: ModelOptions) -> dict[str, jax.Array]:
    """The static per-(customer, product) LogNormal tastes ``beta_z``, ``beta_x`` and ``quantity_slope``
    of one customer in the layout of ``consts`` (``[len(STREAMS), ...]`` column words)."""
    word = lambda s: pair_bits(customer_hashes[s], consts[s])  # noqa: E731
    n_z, n_x = taste_normals(word(0), word(1), opts.legacy_coupling)
    n_q = uniform_to_normal(bits_to_uniform(word(2)))
    lognormal = lambda n, p: jnp.exp(jnp.float32(p[0]) + jnp.float32(p[1]) * n)  # noqa: E731
    return {
        "beta_z": lognormal(n_z, opts.beta_z),
        "beta_x": lognormal(n_x, opts.beta_x),
        "quantity_slope": lognormal(n_q, opts.quantity_slope),
    }


def observed_feature(
    g: jax.Array,
    z0: jax.Array,
    chi2: jax.Array,
    total: jax.Array,
    valid: jax.Array,
    num_products=None,
    squared: bool = False,
) -> jax.Array:
    """Observed feature ``X_i = m_i + s_i z_i`` of one customer-week, drawn given its product sum.

    ``X_i | s_i ~ N(0, 1 + s_i^2)``, so ``X_i = a_i z_i`` with ``a_i = sqrt(1 + s_i^2)``. The week's
    totals are drawn first, per customer: ``Q = sum s_i^2 ~ chi^2_I`` and ``S = sum X_i ~ N(0, I + Q)``
    (so the observed mean ``S / I`` costs O(1) per customer). Then, exactly:
    ``s = sqrt(Q) |g| / ||g||`` (a Gaussian vector's direction is uniform and independent of its norm)
    and ``z = z0 - a (a . z0 - S) / ||a||^2`` (a Gaussian vector conditioned on a linear sum), with
    ``||a||^2 = I + Q`` (one reduction fewer).

    Args:
      g, z0: independent standard normals (any shape, e.g. ``[S]``); valid: mask of real products.
      chi2: ``Q``; total: ``S``; num_products: ``I`` (default: the number of valid entries).
      squared: ``g`` holds ``g^2`` (only the square enters).
    """
    g2 = jnp.where(valid, g if squared else g * g, 0.0)
    z0 = jnp.where(valid, z0, 0.0)
    a = jnp.sqrt(1.0 + (chi2 / slot_sum(g2)) * g2)  # 1 on padding, where z0 = 0
    n_i = jnp.sum(valid) if num_products is None else num_products
    c = (slot_sum(a * z0) - total) / (n_i + chi2)
    return jnp.where(valid, a * (z0 - a * c), 0.0)


def slot_sum(x: jax.Array) -> jax.Array:
    """Sum of all entries as a product with a ones vector (float32, full precision): on CPU, XLA
    compiles a row reduction of a fused elementwise producer to a serial loop, while a dot reads the
    materialised row with vector accumulators (the same sum up to float32 rounding)."""
    x = jnp.ravel(x)
    return jnp.matmul(x, jnp.ones(x.shape, x.dtype), precision=jax.lax.Precision.HIGHEST)


def observed_feature_sine(week: WeekTiles, cust: CustomerWeek, opts: ModelOptions) -> jax.Array | None:
    """The angle sine ``[S]`` of the observed feature's Box-Muller pair of one customer (stream 4,
    :func:`~jaxretail.core.counter_rng.half_turn_sine`); ``None`` under legacy coupling. Its three
    consumers (two sums and the draw) would each recompute it if it were fused into them: callers that
    stream customers compute it once per block (:func:`jaxretail.envs.coupon.week.visitor_utilities`)."""
    return None if opts.legacy_coupling else half_turn_sine(_words(cust, week, 4))


def observed_feature_normals(
    week: WeekTiles, cust: CustomerWeek, opts: ModelOptions, sine: jax.Array | None = None
) -> tuple:
    """The week's per-slot normals of the observed feature of one customer, ``([S], [S])``:
    ``(z0, g^2)`` (one Box-Muller pair, streams 5 and 4; ``sine``: the pair's
    :func:`observed_feature_sine`, if already computed), or ``(m, z)`` under legacy coupling (streams
    3 and 5)."""
    if opts.legacy_coupling:
        return normal_pair(_words(cust, week, 3), _words(cust, week, 5))
    if sine is None:
        return normal_and_square(_words(cust, week, 5), _words(cust, week, 4))  # g enters through g^2 only
    return normal_and_square(_words(cust, week, 5), sine=sine)


def observed_feature_draws(
    week: WeekTiles, cust: CustomerWeek, opts: ModelOptions, normals: tuple | None = None
) -> jax.Array:
    """The week's observed feature ``X [S]`` of one customer (0 on padding), from
    :func:`observed_feature_normals` (computed here if not given)."""
    a, b = observed_feature_normals(week, cust, opts) if normals is None else normals
    if opts.legacy_coupling:
        return jnp.where(week.valid, a + jnp.abs(a) * b, 0.0)
    return observed_feature(b, a, cust.x_chi2, cust.x_total, week.valid, opts.num_products or None, True)


def utilities(
    week: WeekTiles, cust: CustomerWeek, opts: ModelOptions, sine: jax.Array | None = None
) -> jax.Array:
    """Utilities ``mu [S]`` of one customer-week (``-inf`` on padding), capped at ``week.utility_cap``.

    The observed feature is ``X = m + s z`` with ``m, z ~ N(0, 1)`` and ``s ~ HalfNormal(1)``
    independent, drawn exactly as in :func:`observed_feature`. With legacy coupling (the original's
    shared key) ``s = |m|`` and ``X = m + |m| z``. ``sine``: the customer's
    :func:`observed_feature_sine`, if already computed (the same utilities).
    """
    n_z, n_x = taste_normals(_words(cust, week, 0), _words(cust, week, 1), opts.legacy_coupling)
    beta_z = jnp.exp(jnp.float32(opts.beta_z[0]) + jnp.float32(opts.beta_z[1]) * n_z)
    beta_x = jnp.exp(jnp.float32(opts.beta_x[0]) + jnp.float32(opts.beta_x[1]) * n_x)
    x = observed_feature_draws(week, cust, opts, observed_feature_normals(week, cust, opts, sine))
    eps = uniform_to_gumbel(bits_to_uniform(_words(cust, week, 6)), opts.noise_scale)
    # per row, then broadcast over its R slots (a per-slot gather compiles to a scalar loop on CPU)
    rows = week.row_category.shape[0]
    log_paid = jnp.log(1.0 - cust.coupon * cust.redeemed)[week.row_category]  # [rows]
    log_paid = jnp.broadcast_to(log_paid[:, None], (rows, week.valid.shape[-1] // rows)).reshape(-1)  # [S]
    price_coef = (opts.price_scale * cust.beta_w_customer) * week.beta_w_product
    mu = beta_x * x + beta_z * week.brand + price_coef * (week.log_price + log_paid) + eps
    mu = jnp.minimum(mu, week.utility_cap)
    return jnp.where(week.valid, mu, -jnp.inf)


def purchase_week(week: WeekTiles, cust: CustomerWeek, opts: ModelOptions, layout) -> dict:
    """Stages 0 and 2-4 for a customer who visits (see :func:`purchase_given_utilities`)."""
    return purchase_given_utilities(utilities(week, cust, opts), week, cust, opts, layout)


def purchase_given_utilities(
    mu: jax.Array, week: WeekTiles, cust: CustomerWeek, opts: ModelOptions, layout: tiled.TileLayout
) -> dict:
    """Stages 2-4 from the utilities ``mu [S]`` of a visiting customer.

    Returns per-category lines (``[J]`` each: quantity, product, shelf, base and paid price), the
    store value ``SV``, the category purchase probabilities and the Poisson rates. A bought line whose
    rate exceeds :data:`~jaxretail.core.counter_rng.POISSON_INVERSE_CDF_MAX_RATE` is flagged in
    ``needs_exact_poisson`` (its quantity is then 1 here): the caller draws it by rejection.
    """
    mu = mu.reshape(layout.product.shape)
    iv = tiled.inclusive_values(mu, layout)
    p_cat = tiled.category_probability(iv["cv"], week.category_intercept, week.category_slope)
    u_cat, u_choice, u_qty = (
        bits_to_uniform(pair_bits(cust.category_hashes[k], week.category_consts[k])) for k in range(3)
    )
    bought = u_cat < p_cat  # [J]
    row, slot = tiled.sample(u_choice, mu, iv, layout)
    line = row * layout.row_width + slot  # [J] flat slot of each category's line
    mu = mu.ravel()
    n_q = uniform_to_normal(bits_to_uniform(pair_bits(cust.customer_hashes[2], week.product_consts[2][line])))
    q_slope = jnp.exp(jnp.float32(opts.quantity_slope[0]) + jnp.float32(opts.quantity_slope[1]) * n_q)
    rate = jnp.minimum(jnp.exp(week.quantity_intercept[line] + q_slope * mu[line]), opts.max_poisson_rate)
    small = rate <= POISSON_INVERSE_CDF_MAX_RATE
    extra = poisson_inverse_cdf(u_qty, jnp.where(bought & small, rate, 0.0))
    shelf = week.price[line]
    paid_factor = 1.0 - cust.coupon * cust.redeemed  # [J]; line j is in category j
    return {
        "quantity": jnp.where(bought, 1 + extra, 0).astype(jnp.int32),  # [J] items per line (0: not bought)
        "product": jnp.where(bought, jnp.asarray(layout.product).ravel()[line], -1),  # [J]
        "shelf_price": shelf,  # [J] pre-coupon price of the line's product
        "base_price": week.base_price[line],  # [J]
        "paid_price": paid_factor * shelf,  # [J]
        "store_value": iv["sv"],  # []
        "category_probability": p_cat,  # [J]
        "rate": rate,  # [J] Poisson rate lambda of the line's extra quantity
        "needs_exact_poisson": bought & ~small,  # [J]
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
