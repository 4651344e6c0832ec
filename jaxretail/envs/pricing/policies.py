"""Baseline pricing policies: specialist rules, a manual markdown rule and the analytic optimum.

Every policy has the per-environment signature ``policy(key, obs, state, params) -> action`` (an
int32 area in discrete mode, a ``[1]`` float in ``[-1, 1]`` in continuous mode) and is batched by
:func:`jaxretail.core.rollout.rollout`. Rules compute a price and map it to the action that contains
it (:func:`jaxretail.envs.pricing.env.price_to_action`), so they serve both action types. The rules
read only what a merchant knows (list price, cost, bounds, yesterday's competitor price and
traffic); :func:`optimal_policy` is a privileged oracle that reads the hidden market of the day.

Specialist rules ("experts" that generate the demonstration logs, spec section 1.6):

* :func:`list_price_policy` -- always the highest price of the window.
* :func:`competitor_policy` -- undercut yesterday's competitor price by ``undercut``.
* :func:`cost_plus_policy` -- unit cost times ``1 + markup``.
* :func:`traffic_policy` -- high price on busy days, low on quiet ones (yesterday's traffic).
* :func:`random_policy` -- uniform over the actions.
* :func:`epsilon_policy` / :func:`epsilon_probs` -- a stochastic logging policy with known
  propensities: a rule with probability ``1 - eps``, uniform otherwise (for IPW / DR).
* :func:`manual_markdown_policy` -- markdown: 10 % more off every ``step_days`` days.
* :func:`optimal_policy` -- the myopic optimum of the expected reward of the day: the clipped
  closed form of :func:`jaxretail.choice.pricing.optimal_price` (continuous) or the best area.
  Prices do not change future demand in this model, so for RCR, PCR, revenue, profit and their
  differences (whose discounted sum weights each day's rate by ``gamma^t (1 - gamma) > 0``) it is
  optimal among all policies in daily mode.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxretail.choice import pricing as choice_pricing
from jaxretail.envs.pricing.env import last_day, price_grid, price_to_action, purchase_probability
from jaxretail.envs.pricing.types import HISTORY_FEATURES, PricingParams, PricingState

_COMP = HISTORY_FEATURES.index("competitor_rel")
_UV = HISTORY_FEATURES.index("uv_rel")


def _as_action(price, state: PricingState, params: PricingParams):
    a = price_to_action(price, state.sku, params)
    return a if params.action_type == "discrete" else jnp.reshape(a, (1,)).astype(jnp.float32)


def list_price_policy(key, obs, state: PricingState, params: PricingParams):
    """Always ``P_max`` (markdown: the smallest discount, 10 % off)."""
    return _as_action(
        state.sku.p_max if params.mode == "daily" else 0.9 * state.sku.list_price, state, params
    )


def competitor_policy(undercut: float = 0.02) -> Callable:
    """Price at yesterday's competitor price less ``undercut`` (a share), clipped to the bounds."""

    def policy(key, obs, state: PricingState, params: PricingParams):
        comp = last_day(state)[_COMP] * state.sku.list_price
        return _as_action(comp * (1.0 - undercut), state, params)

    return policy


def cost_plus_policy(markup: float = 0.5) -> Callable:
    """Price at ``unit_cost (1 + markup)``, clipped to the bounds."""

    def policy(key, obs, state: PricingState, params: PricingParams):
        return _as_action(state.sku.unit_cost * (1.0 + markup), state, params)

    return policy


def traffic_policy(key, obs, state: PricingState, params: PricingParams):
    """Yesterday's traffic above its mean -> upper part of the range, below -> lower part:
    ``P_min + (P_max - P_min) sigmoid(4 (uv_rel - 1))``."""
    w = jax.nn.sigmoid(4.0 * (last_day(state)[_UV] - 1.0))
    return _as_action(state.sku.p_min + w * (state.sku.p_max - state.sku.p_min), state, params)


def random_policy(key, obs, state: PricingState, params: PricingParams):
    """Uniform over the discrete areas, or uniform in ``[-1, 1]``."""
    if params.action_type == "discrete":
        return jax.random.randint(key, (), 0, params.num_prices, jnp.int32)
    return jax.random.uniform(key, (1,), jnp.float32, -1.0, 1.0)


def manual_markdown_policy(step_days: int = 2) -> Callable:
    """Markdown rule: 10 % off on day 1, 10 % more every ``step_days`` days, at most 90 %."""

    def policy(key, obs, state: PricingState, params: PricingParams):
        level = jnp.minimum((state.t - 1) // step_days, 8)
        if params.action_type == "discrete":
            return level.astype(jnp.int32)
        return jnp.reshape(2.0 * level / 8.0 - 1.0, (1,)).astype(jnp.float32)

    return policy


def expected_reward_per_visitor(price, state: PricingState, params: PricingParams):
    """Expected RCR (or PCR for profit rewards) of ``price`` on the current day's market."""
    cost = state.sku.unit_cost if params.reward in ("profit", "pcr", "dpcr") else 0.0
    return (price - cost) * purchase_probability(price, state.sku, state.shock, state.competitor_rel)


def optimal_price(state: PricingState, params: PricingParams) -> jax.Array:
    """Closed-form optimal price of the day clipped to ``[P_min, P_max]`` (daily mode)."""
    sku = state.sku
    cost = sku.unit_cost if params.reward in ("profit", "pcr", "dpcr") else 0.0
    v = sku.competitor_intercept + state.shock - sku.price_slope * state.competitor_rel * sku.list_price
    p = choice_pricing.optimal_price(sku.intercept + state.shock, sku.price_slope, v[None], cost)
    return jnp.clip(p, sku.p_min, sku.p_max)


def optimal_policy(key, obs, state: PricingState, params: PricingParams):
    """Privileged myopic optimum (see the module docstring)."""
    if params.action_type == "continuous":
        return _as_action(optimal_price(state, params), state, params)
    grid = price_grid(state.sku, params)
    values = jax.vmap(lambda p: expected_reward_per_visitor(p, state, params))(grid)
    return jnp.argmax(values).astype(jnp.int32)


def epsilon_probs(rule: Callable, epsilon: float) -> Callable:
    """``probs(key, obs, state, params) -> [K]``: propensities of :func:`epsilon_policy` (discrete)."""

    def probs(key, obs, state: PricingState, params: PricingParams):
        k = params.num_prices
        a = rule(key, obs, state, params)
        return (1.0 - epsilon) * jax.nn.one_hot(a, k) + epsilon / k

    return probs


def epsilon_policy(rule: Callable, epsilon: float) -> Callable:
    """With probability ``epsilon`` a uniform area, else ``rule``'s (discrete logging policy)."""
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1], got epsilon={epsilon!r}")

    def policy(key, obs, state: PricingState, params: PricingParams):
        k_rule, k_mix, k_uniform = jax.random.split(key, 3)
        a = rule(k_rule, obs, state, params)
        u = jax.random.randint(k_uniform, (), 0, params.num_prices)
        return jnp.where(jax.random.uniform(k_mix) < epsilon, u, a).astype(jnp.int32)

    return policy


SPECIALISTS = {
    "list_price": list_price_policy,
    "competitor": competitor_policy(),
    "cost_plus": cost_plus_policy(),
    "traffic": traffic_policy,
}
