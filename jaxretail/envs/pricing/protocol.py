"""Logs, the paper's offline replay estimator and the difference-in-differences comparison.

* :func:`collect_logs` -- run a (logging) policy over SKUs for ``T`` days and keep what a pricing
  log holds: observations, actions, logged prices, rewards, episode ends, the behaviour policy's
  propensity of the taken action (when a ``probs`` function is given) and the daily sales.
* :func:`replay_estimate` -- Algorithm 1 of Liu et al. (2019) as reconstructed in spec 1.7: sum the
  logged reward over the evaluation days where the evaluated policy's action is "close" to the
  logged one (exact area for discrete actions; ``|a_hat - a| <= delta`` in price units with
  ``delta = (P_max - P_min) / (2K)``, half an area, for continuous actions). Returns score, hits,
  mean matched reward and the logging policy's own mean reward. Without propensities this is biased
  towards policies that agree with the log (see ``tests/test_pricing_offline.py``).
* :func:`did_estimate` -- difference in differences of two SKU groups' daily DRCR (or any metric)
  before and after a policy change: OLS ``y ~ treated + post + treated:post`` with SKU-clustered
  standard errors (statsmodels).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxretail.core.rollout import rollout
from jaxretail.envs.pricing.env import DynamicPricing, action_price
from jaxretail.envs.pricing.types import PricingParams


def collect_logs(
    env: DynamicPricing,
    policy: Callable,
    key: jax.Array,
    params: PricingParams,
    reset_keys: jax.Array,
    num_days: int,
    probs: Callable | None = None,
    auto_reset: bool = True,
    targets: dict | None = None,
) -> dict:
    """Logged days, every leaf ``[T, B, ...]``: ``obs``, ``action``, ``reward``, ``terminated``,
    ``truncated``, ``final_obs``, ``price``, ``p_min``, ``p_max``, ``revenue``, ``uv``, ``profit``
    and, with ``probs(key, obs, state, params) -> [K]``, ``propensity`` of the logged action and the
    full ``action_probs``; ``targets`` (name -> policy) adds each policy's action on the logged day
    as ``"target_<name>"`` (for simulated studies of policies that read the state, such as the
    oracle). Hidden market state is not logged (a log is all an offline method sees).
    Pure; jit it with the callables static."""

    def body_record(tr):
        out = {
            "obs": tr.obs,
            "action": tr.action,
            "reward": tr.reward,
            "terminated": tr.terminated,
            "truncated": tr.truncated,
            "final_obs": tr.info["final_observation"] if auto_reset else tr.obs,
            "price": tr.info["price"],
            "revenue": tr.info["revenue"],
            "profit": tr.info["profit"],
            "uv": tr.info["uv"],
            "p_min": tr.info["p_min"],
            "p_max": tr.info["p_max"],
        }
        for name in targets or {}:
            out[f"target_{name}"] = tr.info[f"target_{name}"]
        if probs is not None:
            out["action_probs"] = tr.info["action_probs"]
            out["propensity"] = jnp.take_along_axis(tr.info["action_probs"], tr.action[:, None], axis=1)[:, 0]
        return out

    wrapped = _LoggingEnv(env, probs, targets or {})
    _, _, logs = rollout(
        wrapped, policy, key, params, reset_keys, num_days, record=body_record, auto_reset=auto_reset
    )
    return logs


class _LoggingEnv(DynamicPricing):
    """The same environment with the logged bounds (and the behaviour's action probabilities, which
    use the policy key stream of the step) added to ``info``."""

    def __init__(self, env: DynamicPricing, probs, targets):
        self._default_params = env.default_params
        self._probs = probs
        self._targets = targets

    def step_env(self, key, state, action, params):
        obs, new, reward, term, trunc, info = super().step_env(key, state, action, params)
        info = dict(info, p_min=state.sku.p_min, p_max=state.sku.p_max)
        if self._probs is not None:
            info["action_probs"] = self._probs(None, None, state, params)
        for name, pol in self._targets.items():
            info[f"target_{name}"] = pol(jax.random.fold_in(key, 7), None, state, params)
        return obs, new, reward, term, trunc, info


def replay_estimate(logs: dict, actions: jax.Array, params: PricingParams, start_day: int = 0) -> dict:
    """Algorithm 1 (replay) on days ``start_day ..`` of ``logs`` for the policy's ``actions``
    (``[T, B]`` int, or ``[T, B, 1]`` in ``[-1, 1]``) computed on the logged observations."""
    sl = slice(start_day, None)
    reward = logs["reward"][sl]
    if params.action_type == "discrete":
        hit = actions[sl] == logs["action"][sl]
    else:
        lo, hi = logs["p_min"][sl], logs["p_max"][sl]
        a_hat = jnp.clip(actions[sl][..., 0], -1.0, 1.0)
        price_hat = lo + (a_hat + 1.0) * 0.5 * (hi - lo)
        delta = (hi - lo) / (2.0 * params.num_prices)
        hit = jnp.abs(price_hat - logs["price"][sl]) <= delta + 1e-6 * hi
    hits = jnp.sum(hit)
    score = jnp.sum(jnp.where(hit, reward, 0.0))
    return {
        "score": float(score),
        "hits": int(hits),
        "mean_matched_reward": float(score / jnp.maximum(hits, 1)),
        "logged_mean_reward": float(jnp.mean(reward)),
        "days": int(reward.size),
    }


def did_estimate(y_control: np.ndarray, y_treated: np.ndarray, post_start: int) -> dict:
    """Difference in differences of two groups' daily metric ``y_* [T, N_group]``.

    OLS ``y_{i,t} = b0 + b1 treated_i + b2 post_t + b3 treated_i post_t`` with standard errors
    clustered by SKU; ``b3`` is the DID effect. Returns ``effect``, ``se``, ``ci95`` and ``p_value``.
    """
    import statsmodels.api as sm

    y_control, y_treated = np.asarray(y_control, float), np.asarray(y_treated, float)
    if y_control.ndim != 2 or y_treated.ndim != 2 or y_control.shape[0] != y_treated.shape[0]:
        raise ValueError(
            "y_control and y_treated must be [T, N] with the same T, "
            f"got {y_control.shape} and {y_treated.shape}"
        )
    if min(y_control.shape[1], y_treated.shape[1]) < 2:  # clustered errors need two SKUs a group
        raise ValueError(
            "y_control and y_treated must each hold at least 2 SKUs, "
            f"got {y_control.shape[1]} and {y_treated.shape[1]}"
        )
    T = y_control.shape[0]
    if not 0 < post_start < T:
        raise ValueError(f"post_start must be in 1..{T - 1}, got post_start={post_start}")
    y = np.concatenate([y_control, y_treated], axis=1)  # [T, N]
    n_c, n = y_control.shape[1], y.shape[1]
    treated = np.broadcast_to((np.arange(n) >= n_c)[None], y.shape).astype(float)
    post = np.broadcast_to((np.arange(T) >= post_start)[:, None], y.shape).astype(float)
    groups = np.broadcast_to(np.arange(n)[None], y.shape).ravel()
    X = sm.add_constant(np.stack([treated.ravel(), post.ravel(), (treated * post).ravel()], axis=1))
    fit = sm.OLS(y.ravel(), X).fit(cov_type="cluster", cov_kwds={"groups": groups})
    lo, hi = fit.conf_int()[3]
    return {
        "effect": float(fit.params[3]),
        "se": float(fit.bse[3]),
        "ci95": (float(lo), float(hi)),
        "p_value": float(fit.pvalues[3]),
    }


def policy_actions(act: Callable, agent, logs: dict, key: jax.Array | None = None) -> jax.Array:
    """A learned policy's actions on every logged observation, ``[T, B, ...]``."""
    obs = logs["obs"]
    flat = obs.reshape((-1,) + obs.shape[2:])
    out = act(agent, key, flat)
    return out.reshape(obs.shape[:2] + out.shape[1:])


__all__ = ["action_price", "collect_logs", "did_estimate", "policy_actions", "replay_estimate"]
