"""Coupon-targeting environment over a whole customer population (gymnax 1.0 API).

One state holds every customer of a simulation; the action is one coupon level per customer and the
reward each customer's weekly revenue after coupons (Xia et al., arXiv 2405.10469;
``shared/specs/coupon.md`` §3). The week itself is :func:`~jaxretail.envs.coupon.week.simulate_week`.

Parts: :mod:`.types` (state, params), :mod:`.params` (``make_params``, block sizes per backend, model
options), :mod:`.streams` (random-number streams, per-week product inputs), :mod:`.customer` (one
customer's week), :mod:`.context` (next week's features, the agent context), :mod:`.week` (the visitor
block loop). Every name is also importable from here.

Randomness of week ``t`` is a function of the scenario's noise key, ``t`` and global customer /
product ids only: two policies run on the same scenario face the same customers (common random
numbers), and blocking or sharding the customer axis leaves the result unchanged.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxretail.core import spaces
from jaxretail.core.counter_rng import row_hash
from jaxretail.core.environment import Environment
from jaxretail.core.validation import check_state_matches
from jaxretail.envs.coupon.context import (
    CONTEXT_FEATURES,
    context,
    draw_next_week,
    marketing_feature,
    mean_observed_feature,
)
from jaxretail.envs.coupon.params import (
    COUPON_SCOPES,
    SUB_BLOCK,
    UTILITY_CLIPS,
    default_block_sizes,
    layout_for,
    make_params,
    model_options,
)
from jaxretail.envs.coupon.streams import (
    category_hashes,
    customer_hashes,
    customer_ids,
    observed_feature_totals,
    population_sum,
    stream_seeds,
    uniform,
    week_tiles,
)
from jaxretail.envs.coupon.types import CouponParams, CouponState, ShelfState, Summaries
from jaxretail.envs.coupon.week import coupon_fractions, simulate_week, visitor_utilities

# former private names
_SUB_BLOCK = SUB_BLOCK
_draw_next_week = draw_next_week
_customer_hashes = customer_hashes
_population_sum = population_sum
_uniform = uniform

__all__ = [
    "CONTEXT_FEATURES", "COUPON_SCOPES", "SUB_BLOCK", "UTILITY_CLIPS", "CouponEnv", "CouponParams",
    "CouponState", "Summaries", "category_hashes", "context", "coupon_fractions", "customer_hashes",
    "customer_ids", "default_block_sizes", "draw_next_week", "layout_for", "make_params",
    "marketing_feature", "mean_observed_feature", "model_options", "observed_feature_totals",
    "population_sum", "row_hash", "simulate_week", "stream_seeds", "uniform", "visitor_utilities",
    "week_tiles",
]  # fmt: skip


class CouponEnv(Environment[CouponState, CouponParams]):
    """RetailSynth coupon targeting over a population. Build params with :func:`make_params`.

    * action: ``[U]`` int32 coupon level index (``config.coupon_levels``, default 0 %, 5 %, ..., 50 %),
      or ``[U, J]`` (one level per category) with ``coupon_scope="category"``;
    * observation: ``[U, 9]`` context (:data:`CONTEXT_FEATURES`), zeros after reset;
    * reward: ``[U]`` revenue after coupons;
    * info (``[U]`` each): ``revenue``, ``demand`` (items), ``visited``, ``categories`` (distinct
      categories bought), ``coupon`` (offered fraction), ``redeemed`` (a coupon line was bought),
      ``redeemed_lines``, ``category_mask`` (uint32, bit j set if category j was bought; J <= 32)
      and ``discount`` (the explicit discount factor);
    * never terminates: ``terminated = truncated = False``; the protocol decides the horizon.
    """

    def __init__(self, params: CouponParams | None = None):
        self._default = params

    @property
    def default_params(self) -> CouponParams:
        if self._default is None:
            raise ValueError("CouponEnv needs params: CouponEnv(make_params(sample_scenario(...), config))")
        return self._default

    def action_space(self, params: CouponParams) -> spaces.Box:
        shape = (params.num_customers,) + (
            (params.config.num_categories,) if params.coupon_scope == "category" else ()
        )
        return spaces.Box(0, len(params.config.coupon_levels) - 1, shape, jnp.int32)

    def observation_space(self, params: CouponParams) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, (params.num_customers, len(CONTEXT_FEATURES)))

    def reset_env(self, key: jax.Array, params: CouponParams):
        """Start a trajectory at week 0 (``key`` unused: the scenario fixes the randomness)."""
        del key
        n_u, n_i = params.num_customers, params.config.num_products
        zeros = jnp.zeros((n_u,), jnp.float32)
        no_coupon = jnp.zeros((n_u, params.config.num_categories), jnp.float32)
        shelf, price, discount, marketing, obs_x = draw_next_week(
            params, ShelfState(discounted=jnp.zeros((n_i,), bool)), jnp.asarray(0, jnp.int32), no_coupon
        )
        state = CouponState(
            t=jnp.asarray(0, jnp.int32),
            shelf=shelf,
            price=price,
            discount=discount,
            marketing=marketing,
            visit_probability=jnp.ones((n_u,), jnp.float32),
            visited=jnp.ones((n_u,), bool),
            store_value=zeros,
            previous_items=zeros,
            previous_coupon=no_coupon,
            observed_feature=obs_x,
            summaries=Summaries(jnp.zeros((), jnp.float32), *([zeros] * 7)),
            first_step=jnp.asarray(True),
        )
        return context(state, params), state

    def step_env(self, key, state: CouponState, action: jax.Array, params: CouponParams):
        del key
        check_state_matches(
            "CouponEnv.step",
            {"marketing": state.marketing.shape, "price": state.price.shape},
            {"marketing": (params.num_customers,), "price": (params.config.num_products,)},
        )
        out = simulate_week(state, action, params)
        return out["obs"], out["state"], out["reward"], jnp.asarray(False), jnp.asarray(False), out["info"]
