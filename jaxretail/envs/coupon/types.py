"""Latent parameters of one coupon-benchmark simulation, the shelf-price state, the population state
and the environment params.

Shapes: ``U`` customers, ``I`` products, ``J`` categories. No ``[U, I]`` array is stored: the three
per-(customer, product) latents are recomputed from counter-based hashes of their global indices
(:func:`jaxretail.envs.coupon.generator.customer_product_latents`).
"""

from __future__ import annotations

import jax
from flax import struct

from jaxretail.core.environment import EnvParams, EnvState
from jaxretail.envs.coupon.configs import ScenarioConfig


@struct.dataclass
class Scenario:
    """One simulation's latent parameters (RetailSynth, Xia et al. arXiv 2312.14095 / 2405.10469)."""

    # products [I]
    category: jax.Array  # [I] int32, category index j(i) (contiguous blocks)
    base_price: jax.Array  # [I] P_i^base = max(alpha_0i + alpha_1 Z_i, p_min), same in every simulation
    brand: jax.Array  # [I] Z_i >= 0, unobserved brand strength
    beta_w_product: jax.Array  # [I] beta^w_i <= 0
    quantity_intercept: jax.Array  # [I] gamma^prod_0i
    discount_start: jax.Array  # [I] a01_i = P(S=1 | S_prev=0)
    discount_stay: jax.Array  # [I] a11_i = P(S=1 | S_prev=1)
    # categories [J]
    category_intercept: jax.Array  # [J] gamma^cat_0j
    category_slope: jax.Array  # [J] gamma^cat_1j in [0, 0.12]
    # customers [U]
    beta_w_customer: jax.Array  # [U] beta^w_u <= 0
    visit_inertia: jax.Array  # [U] theta_u
    redemption_rate: jax.Array  # [U] rho_u
    # store (scalars)
    visit_intercept: jax.Array  # [] gamma^s_0
    visit_slope: jax.Array  # [] gamma^s_1 >= 0
    marketing_weight: jax.Array  # [] gamma^s_2
    # seeds of the streamed [U, I] latents (uint32 words)
    latent_seeds: jax.Array  # [3] uint32 for (beta_z, beta_x, quantity_slope); equal under legacy coupling
    # per-week randomness of this simulation
    noise_key: jax.Array  # [] PRNG key


@struct.dataclass
class ShelfState:
    """High-low shelf pricing state of the catalogue."""

    discounted: jax.Array  # [I] bool, S_it (False before the first week)


@struct.dataclass
class Summaries:
    """Running per-customer purchase statistics (``[U]`` each, ``weeks`` scalar)."""

    weeks: jax.Array  # [] weeks elapsed
    purchase_weeks: jax.Array  # weeks with >= 1 item
    items_in_purchase_weeks: jax.Array  # items bought over those weeks
    lines: jax.Array  # purchased line items (distinct product-weeks)
    line_price: jax.Array  # sum of pre-coupon shelf prices of those lines
    line_discount: jax.Array  # sum of shelf discounts 1 - P / P_base of those lines
    redeemed_lines: jax.Array  # lines bought with a coupon
    redeemed_value: jax.Array  # sum over weeks of redeemed lines x coupon


@struct.dataclass
class CouponState(EnvState):
    """Population state. ``U`` customers, ``I`` products. ``t``: weeks simulated so far."""

    shelf: ShelfState  # [I] discount chain state
    price: jax.Array  # [I] shelf price of the coming week
    discount: jax.Array  # [I] shelf discount D of the coming week
    marketing: jax.Array  # [U] marketing feature M of the coming week
    visit_probability: jax.Array  # [U] p^store of the last week (1 after reset)
    visited: jax.Array  # [U] bool, realized visit last week (True after reset)
    store_value: jax.Array  # [U] SV of last week (visitors), 0 otherwise
    previous_items: jax.Array  # [U] items bought last week
    previous_coupon: jax.Array  # [U, J] coupon fraction per category applied last week
    observed_feature: jax.Array  # [U] mean over products of the coming week's X
    summaries: Summaries
    first_step: jax.Array  # [] bool, True until the first step of this trajectory


@struct.dataclass
class CouponParams(EnvParams):
    """Scenario (vmappable latent parameters) and static options (build with ``make_params``)."""

    scenario: Scenario
    config: ScenarioConfig = struct.field(pytree_node=False)
    num_customers: int = struct.field(pytree_node=False)
    # visitors per streamed block, and customers per utility sub-block inside it (a divisor): cache
    # sized on CPU (512, 64), one large chunk on accelerators (params.default_block_sizes)
    block_size: int = struct.field(pytree_node=False, default=512)
    sub_block_size: int = struct.field(pytree_node=False, default=64)
    legacy_coupling: bool = struct.field(pytree_node=False, default=False)
    next_week_price_quirk: bool = struct.field(pytree_node=False, default=False)
    utility_cap: float | None = struct.field(pytree_node=False, default=None)
    utility_clip: str = struct.field(pytree_node=False, default="none")  # "none" | "percentile"
    debug: bool = struct.field(
        pytree_node=False, default=False
    )  # raise on invalid actions / non-finite values
    discount_factor: float = struct.field(pytree_node=False, default=1.0)
    coupon_scope: str = struct.field(pytree_node=False, default="store")  # "store" [U] | "category" [U, J]
    # set on the params of one shard inside jax.shard_map (see sharded.py): the mesh axis whose
    # index locates the shard's customers and over which population-wide means are summed
    axis_name: str | None = struct.field(pytree_node=False, default=None)
    # global id of the first customer held by these params (a view of one customer, see single.py)
    first_customer: jax.Array | int = 0
