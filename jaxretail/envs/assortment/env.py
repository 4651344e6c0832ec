"""Dynamic assortment with hype and saturation under a multinomial logit.

Follows Hoppe, Baty, Bouvier, Parmentier, Schiffer, "Structured Reinforcement Learning for
Combinatorial Decision-Making" (arXiv 2505.19053; code ``tumBAIS/Structured-RL``, "paper" mode) and
``DynamicAssortmentBenchmark`` of DecisionFocusedLearningBenchmarks.jl ("package" mode). See
``shared/specs/assortment.md`` for the full specification.

* **Instance**: ``N`` items, each with price ``p``, ``d`` static features ``f``, hype ``h`` and
  saturation ``sigma``, all i.i.d. Uniform[1, 10], drawn from the episode key by ``reset``.
* **Action**: a 0/1 mask ``[N]`` with exactly ``K`` ones (the offered assortment). Invalid actions
  follow :mod:`jaxretail.core.actions`: a wrong shape (e.g. an integer) is a ``ValueError``; a mask
  with the wrong number of ones is a ``ValueError`` outside jit, and inside jit is replaced by
  ``FixedSizeSubset.project`` (first ``K`` selected items, then lowest-index unselected ones) with
  ``info["invalid_action"] = True``. Item scores (``Box``) and subset indices (``Discrete(C(N, K))``)
  are available as views: :mod:`jaxretail.core.action_views`.
* **dtypes**: observations, rewards and every float state field are float32, with or without
  ``JAX_ENABLE_X64`` (the declared spaces say float32).
* **Customer**: one per step, chooses by MNL over the offered items plus no-purchase with the hidden
  utility ``theta = -0.8 p + 0.6 h - 0.4 sigma + 0.3 f_1 + 0.5 f_2``. Common random numbers: the
  customer at step ``t`` uses ``fold_in(customer_key, t)`` with ``customer_key`` fixed at reset, so
  every policy on the same episode key meets the same uniform draws.
* **Reward**: the price of the bought item, 0 for no purchase (undiscounted episode return).
* **Dynamics** (endogenous mode): the purchase (or no-purchase, index ``N``) enters a five-slot
  history; hype is multiplied by ``1 + sum_k alpha_k [H_{-k} = j]`` with the new purchase at lag 1;
  the bought item's saturation is multiplied by 1.01. Exogenous mode freezes hype and saturation.
* **Observation** ``[d + 8, N]``: "paper" mode raw rows
  ``[f_1..f_d, h, sigma, p, time, dh, dsigma, h - h_0, sigma - sigma_0]`` with
  ``time = 1 + 9 (t - 1) / T``; "package" mode rows
  ``[p, h, sigma, f_1..f_d, dh, dsigma, h - h_0, sigma - sigma_0] / 10`` clipped to [-1, 1]
  (hype and saturation can grow past 10) and ``time = t / T`` (capped at 1 after the last step).
* **Termination**: after ``T`` decisions (``terminated``; time is part of the observation, so the
  horizon is a true end of the problem, and ``truncated`` is always False).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxretail.choice import mnl
from jaxretail.core import spaces
from jaxretail.core.actions import check_action
from jaxretail.core.environment import Environment, as_float32
from jaxretail.core.validation import check_state_matches
from jaxretail.envs.assortment.generator import draw_instance
from jaxretail.envs.assortment.types import (
    HISTORY_LENGTH,
    AssortmentParams,
    AssortmentState,
    make_params,
)


def feature_weights(params: AssortmentParams) -> jax.Array:
    """Static-feature utility weights ``[d]`` (0.3, 0.5, 0.7, ... unless set)."""
    if params.feature_weights is None:
        return 0.3 + 0.2 * jnp.arange(params.num_features, dtype=jnp.float32)
    return jnp.asarray(params.feature_weights, jnp.float32)


def hype_lag_effects(params: AssortmentParams) -> jax.Array:
    """Hype effect of a purchase at lags 1..5, ``[5]``."""
    if params.hype_lag_effects is None:
        return jnp.array([0.02, -0.005, -0.005, -0.005, -0.005], jnp.float32)
    return jnp.asarray(params.hype_lag_effects, jnp.float32)


def utilities(state: AssortmentState, params: AssortmentParams) -> jax.Array:
    """Hidden customer utilities ``theta [N]`` of the current state (no noise, no bias)."""
    return (
        params.price_weight * state.price
        + params.hype_weight * state.hype
        + params.saturation_weight * state.saturation
        + feature_weights(params) @ state.static_features
    )


def hype_multiplier(history: jax.Array, params: AssortmentParams) -> jax.Array:
    """``m_j = 1 + sum_k alpha_k [history[k] = j]`` for every item, ``[N]``.

    ``history`` is ``[5]`` int with the most recent purchase first; the no-purchase sentinel ``N``
    one-hot encodes to the zero vector, so it takes a slot but changes nothing.
    """
    lags = hype_lag_effects(params)
    items = jnp.arange(params.num_items)
    return 1.0 + jnp.sum(jnp.where(history[:, None] == items, lags[:, None], 0.0), axis=0)


def observation(state: AssortmentState, params: AssortmentParams) -> jax.Array:
    """Per-item feature matrix ``[d + 8, N]`` in the convention of ``params.obs_mode``."""
    t = state.t.astype(state.price.dtype)
    horizon = params.horizon
    changes = jnp.stack(
        [
            state.hype_delta,
            state.saturation_delta,
            state.hype - state.hype_initial,
            state.saturation - state.saturation_initial,
        ]
    )
    ones = jnp.ones_like(state.price)
    if params.obs_mode == "paper":
        time_row = (1.0 + 9.0 * (t - 1.0) / horizon) * ones
        return jnp.concatenate(
            [
                state.static_features,
                jnp.stack([state.hype, state.saturation, state.price, time_row]),
                changes,
            ]
        )
    time_row = jnp.minimum(t / horizon, 1.0) * ones
    raw = jnp.concatenate(
        [jnp.stack([state.price, state.hype, state.saturation]), state.static_features, changes]
    )
    # Values are drawn in [1, 10] but hype (x1.05 at most) and saturation (x1.01 per sale) can
    # pass 10; clipping keeps the package convention's [-1, 1] bound (B's test asserts it).
    return jnp.concatenate([jnp.clip(raw / 10.0, -1.0, 1.0), time_row[None]])


class DynamicAssortment(Environment[AssortmentState, AssortmentParams]):
    """Dynamic assortment benchmark (gymnax 1.0 API). Sizes live in the static params fields.

    Example::

        env = DynamicAssortment()
        params = env.default_params                     # N=20, d=2, K=4, T=80, paper mode
        obs, state = env.reset(jax.random.key(1), params)
        obs, state, r, term, trunc, info = env.step(key, state, action_mask, params)
    """

    def __init__(self, **param_overrides):
        self._default_params = make_params(**param_overrides)

    @property
    def default_params(self) -> AssortmentParams:
        return self._default_params

    def observation_space(self, params: AssortmentParams) -> spaces.Box:
        """Box ``[d + 8, N]``: unbounded in paper mode, [-1, 1] in package mode."""
        bound = 1.0 if params.obs_mode == "package" else jnp.inf
        return spaces.Box(-bound, bound, (params.num_features + 8, params.num_items), jnp.float32)

    def action_space(self, params: AssortmentParams) -> spaces.FixedSizeSubset:
        return spaces.FixedSizeSubset(params.num_items, params.assortment_size)

    def reset_env(self, key: jax.Array, params: AssortmentParams):
        key_instance, key_customers = jax.random.split(key)
        inst = jax.tree.map(lambda v: v.astype(jnp.float32), draw_instance(key_instance, params))
        zeros = jnp.zeros_like(inst["price"])
        state = AssortmentState(
            t=jnp.asarray(1, jnp.int32),
            price=inst["price"],
            static_features=inst["static_features"],
            hype=inst["hype"],
            saturation=inst["saturation"],
            hype_initial=inst["hype"],
            saturation_initial=inst["saturation"],
            hype_delta=zeros,
            saturation_delta=zeros,
            history=jnp.full((HISTORY_LENGTH,), params.num_items, jnp.int32),
            customer_key=key_customers,
        )
        state = as_float32(state)
        return observation(state, params).astype(jnp.float32), state

    def step_env(self, key: jax.Array, state: AssortmentState, action: jax.Array, params: AssortmentParams):
        """One decision. ``key`` is not used: the customer draw comes from the episode's stream."""
        del key
        n, d = params.num_items, params.num_features
        check_state_matches(
            "DynamicAssortment.step",
            {"price": state.price.shape, "static_features": state.static_features.shape},
            {"price": (n,), "static_features": (d, n)},
        )
        mask, invalid = check_action(self.action_space(params), action)
        offered = mask.astype(bool)
        theta = utilities(state, params)
        u = jax.random.uniform(jax.random.fold_in(state.customer_key, state.t), (), jnp.float32)
        choice = mnl.sample(u, theta, offered)  # 0..N-1 item, N = no purchase
        bought = jax.nn.one_hot(choice, params.num_items, dtype=state.price.dtype)  # zero if N
        reward = jnp.sum(bought * state.price)
        history = jnp.concatenate([choice[None], state.history[:-1]])
        if params.exogenous:
            hype, saturation = state.hype, state.saturation
        else:
            hype = state.hype * hype_multiplier(history, params)
            saturation = state.saturation * (1.0 + (params.saturation_growth - 1.0) * bought)
        state = state.replace(
            t=state.t + 1,
            hype=hype,
            saturation=saturation,
            hype_delta=hype - state.hype,
            saturation_delta=saturation - state.saturation,
            history=history,
        )
        state = as_float32(state)
        terminated = state.t > params.horizon
        info = {
            "choice": choice,
            "purchased": choice < params.num_items,
            "expected_revenue": mnl.expected_revenue(theta, offered, state.price).astype(jnp.float32),
            "invalid_action": invalid,
        }
        obs = observation(state, params).astype(jnp.float32)
        return (obs, state, reward.astype(jnp.float32), terminated, jnp.zeros_like(terminated), info)
