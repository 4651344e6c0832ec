"""Latent parameters of one coupon-benchmark simulation, the shelf-price state, the population state
and the environment params.

Shapes: ``U`` customers, ``I`` products, ``J`` categories. No ``[U, I]`` array is stored: the three
per-(customer, product) latents are recomputed from counter-based hashes of their global indices
(:func:`jaxretail.envs.coupon.generator.customer_product_latents`).
"""

from __future__ import annotations

import jax
import numpy as np
from flax import struct

from jaxretail.core.environment import EnvParams, EnvState
from jaxretail.core.validation import (
    ConfigError,
    check_bool,
    check_choice,
    check_int,
    check_number,
    checked_dataclass,
    is_traced,
)
from jaxretail.envs.coupon.configs import ScenarioConfig, validate

COUPON_SCOPES = ("store", "category")
UTILITY_CLIPS = ("none", "percentile")


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


@checked_dataclass
class CouponParams(EnvParams):
    """Scenario (vmappable latent parameters) and static options.

    Build with :func:`jaxretail.envs.coupon.params.make_params`; a direct ``CouponParams(...)`` or
    ``.replace(...)`` checks every field with the same rules (:func:`check_coupon_params`; tracers
    pass). JAX's own rebuilds of the node (``in_axes`` specs, masks, gradients) are not checked.

    Raises:
      ValueError: naming the field, the value and the rule.
    """

    scenario: Scenario
    config: ScenarioConfig = struct.field(pytree_node=False)
    num_customers: int = struct.field(pytree_node=False)
    # visitors per streamed block, and customers per utility sub-block inside it (a divisor): cache
    # sized on CPU (128, 32), one large chunk on accelerators (params.default_block_sizes)
    block_size: int = struct.field(pytree_node=False, default=128)
    sub_block_size: int = struct.field(pytree_node=False, default=32)
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

    def __post_init__(self):
        check_coupon_params(self, owner="CouponParams")


# Scenario latents: (low, high) bounds of every concrete value (None = unbounded; all must be finite)
SCENARIO_RULES = {
    "base_price": (0.0, None),
    "brand": (None, None),
    "beta_w_product": (None, None),
    "quantity_intercept": (None, None),
    "discount_start": (0.0, 1.0),  # probabilities
    "discount_stay": (0.0, 1.0),
    "category_intercept": (None, None),
    "category_slope": (None, None),
    "beta_w_customer": (None, None),
    "visit_inertia": (0.0, 1.0),
    "redemption_rate": (0.0, 1.0),
    "visit_intercept": (None, None),
    "visit_slope": (None, None),
    "marketing_weight": (None, None),
}


_PER_PRODUCT = ("category", "base_price", "brand", "beta_w_product", "quantity_intercept", "discount_start",
                "discount_stay")  # fmt: skip
_PER_CATEGORY = ("category_intercept", "category_slope")
_PER_CUSTOMER = ("beta_w_customer", "visit_inertia", "redemption_rate")
_SCALARS = ("visit_intercept", "visit_slope", "marketing_weight")


def check_coupon_params(p: CouponParams, owner: str | None = None) -> None:
    """Every rule of :class:`CouponParams` (concrete values; tracers pass).

    ``config`` a valid :class:`ScenarioConfig` of at most 32 categories; ``scenario`` a
    :class:`Scenario` with ``config.num_products`` products, finite latents and probabilities in
    [0, 1] (:data:`SCENARIO_RULES`); ``num_customers``, ``block_size`` integers >= 1 and
    ``sub_block_size`` a positive divisor of ``block_size``; ``legacy_coupling``,
    ``next_week_price_quirk``, ``debug`` booleans; ``utility_cap`` ``None`` or a finite number;
    ``utility_clip`` in :data:`UTILITY_CLIPS`; ``coupon_scope`` in :data:`COUPON_SCOPES`;
    ``discount_factor`` in [0, 1]; ``first_customer`` >= 0.
    """
    name = (lambda f: f"{owner}.{f}") if owner else (lambda f: f)
    if not isinstance(p.config, ScenarioConfig):
        raise ConfigError(f"{name('config')} must be a ScenarioConfig, got config={p.config!r}")
    validate(p.config)
    if p.config.num_categories > 32:
        raise ConfigError(
            "the coupon env reports bought categories as a 32-bit mask; "
            f"num_categories={p.config.num_categories} > 32 is not supported yet"
        )
    for flag in ("legacy_coupling", "next_week_price_quirk", "debug"):
        check_bool(flag, getattr(p, flag), owner=owner)
    check_choice("utility_clip", p.utility_clip, UTILITY_CLIPS, owner=owner)
    check_choice("coupon_scope", p.coupon_scope, COUPON_SCOPES, owner=owner)
    for field, value in (("utility_cap", p.utility_cap), ("discount_factor", p.discount_factor)):
        if value is not None and not isinstance(value, float | int) or isinstance(value, bool):
            raise ConfigError(
                f"{name(field)} must be a Python number (a static field), got {field}={value!r}"
            )
    if p.utility_cap is not None:
        check_number("utility_cap", p.utility_cap, owner=owner)
    check_number("discount_factor", p.discount_factor, low=0.0, high=1.0, owner=owner)
    n = check_int("num_customers", p.num_customers, 1, owner=owner)
    block = check_int("block_size", p.block_size, 1, owner=owner)
    sub = check_int("sub_block_size", p.sub_block_size, 1, owner=owner)
    if block % sub:
        raise ConfigError(
            f"{name('sub_block_size')} must be a positive divisor of block_size={block}, "
            f"got sub_block_size={sub}"
        )
    if p.axis_name is not None and not isinstance(p.axis_name, str):
        raise ConfigError(f"{name('axis_name')} must be a mesh axis name or None, got {p.axis_name!r}")
    if is_traced(p.first_customer):
        pass  # a traced id (the single-customer view vmaps over customers)
    elif isinstance(p.first_customer, int | np.integer | bool):
        check_int("first_customer", p.first_customer, 0, owner=owner)
    else:  # a concrete array: an integer id >= 0
        first = np.asarray(p.first_customer)
        if first.shape != () or first.dtype.kind not in "iu" or first < 0:
            raise ConfigError(
                f"{name('first_customer')} must be an integer customer id >= 0, got first_customer={first!r}"
            )
    sc = p.scenario
    if not isinstance(sc, Scenario):
        raise ConfigError(f"{name('scenario')} must be a Scenario (sample_scenario), got {type(sc).__name__}")
    products = getattr(sc.base_price, "shape", (None,))[-1:]
    if products != (p.config.num_products,):
        raise ConfigError(
            f"{name('scenario')} has {products[0] if products else 0} products, "
            f"config.num_products={p.config.num_products}"
        )
    customers = getattr(sc.beta_w_customer, "shape", (None,))[-1:]
    if customers != (n,):
        raise ConfigError(
            f"{name('num_customers')}={n} does not match the scenario's "
            f"{customers[0] if customers else 0} customers"
        )
    sizes = {"I": p.config.num_products, "J": p.config.num_categories, "U": n}
    for fields, axis in ((_PER_PRODUCT, "I"), (_PER_CATEGORY, "J"), (_PER_CUSTOMER, "U"), (_SCALARS, None)):
        want = () if axis is None else (sizes[axis],)
        for field in fields:
            value = getattr(sc, field)
            if not is_traced(value) and np.shape(value) != want:
                size = "a scalar" if axis is None else f"{axis}={sizes[axis]}"
                raise ConfigError(
                    f"{name('scenario.' + field)} must have shape {want} ({size}), "
                    f"got shape {np.shape(value)}"
                )
    seeds = sc.latent_seeds
    if not is_traced(seeds) and (np.shape(seeds) != (3,) or np.asarray(seeds).dtype != np.uint32):
        raise ConfigError(
            f"{name('scenario.latent_seeds')} must be 3 uint32 seeds (sample_scenario), got "
            f"shape {np.shape(seeds)} dtype {getattr(seeds, 'dtype', type(seeds).__name__)}"
        )
    key = sc.noise_key
    if not is_traced(key):
        typed = hasattr(key, "dtype") and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
        raw = not typed and hasattr(key, "dtype") and np.dtype(key.dtype) == np.uint32 and np.ndim(key) == 1
        if not (typed and np.shape(key) == ()) and not raw:
            raise ConfigError(
                f"{name('scenario.noise_key')} must be one PRNG key (jax.random.key) or its uint32 key data, "
                f"got shape {np.shape(key)} dtype {getattr(key, 'dtype', type(key).__name__)}"
            )
    for field, (low, high) in SCENARIO_RULES.items():
        check_number(f"scenario.{field}", getattr(sc, field), low=low, high=high, owner=owner)
    if not is_traced(sc.category):
        cat = np.asarray(sc.category)
        if cat.dtype.kind not in "iu" or cat.size and (cat.min() < 0 or cat.max() >= p.config.num_categories):
            raise ConfigError(
                f"{name('scenario.category')} must hold category indices 0..{p.config.num_categories - 1}"
            )
