"""Off-policy value estimators for logged bandit decisions (JAX): IPW, self-normalised IPW and doubly
robust with a fitted reward model (Dudik, Langford and Li 2011; Swaminathan and Joachims 2015).

Inputs are flat ``[N]`` logged decisions: the reward ``r_i``, the logging (behaviour) policy's
propensity ``mu_i = mu(a_i | x_i) > 0`` of the logged action, and the evaluated policy's
probabilities ``pi(. | x_i)`` ``[N, K]`` (one-hot for a deterministic policy). With
``w_i = pi(a_i | x_i) / mu_i``:

* IPW:   ``V = mean(w r)``;
* SNIPW: ``V = sum(w r) / sum(w)``;
* DR:    ``V = mean( sum_a pi(a|x) q(x, a) + w (r - q(x, a_i)) )`` with ``q`` a reward model.

Each returns the estimate with its standard error (delta method for SNIPW) and a normal 95 % CI.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _summary(values: jax.Array, estimate=None) -> dict:
    n = values.shape[0]
    est = jnp.mean(values) if estimate is None else estimate
    se = jnp.std(values, ddof=1) / jnp.sqrt(n)
    return {"estimate": est, "se": se, "ci95": (est - 1.96 * se, est + 1.96 * se)}


def _check(reward, propensity, target_probs, action):
    if reward.ndim != 1 or propensity.shape != reward.shape or action.shape != reward.shape:
        raise ValueError(
            "reward, propensity and action must be [N], "
            f"got {reward.shape}, {propensity.shape}, {action.shape}"
        )
    if target_probs.ndim != 2 or target_probs.shape[0] != reward.shape[0]:
        raise ValueError(f"target_probs must be [N, K] with N={reward.shape[0]}, got {target_probs.shape}")
    if not isinstance(propensity, jax.core.Tracer) and not bool(jnp.all(propensity > 0)):
        raise ValueError("propensity must be > 0 for every logged decision (IPW needs full support)")


def importance_weights(propensity, target_probs, action) -> jax.Array:
    """``w_i = pi(a_i | x_i) / mu(a_i | x_i)``, ``[N]``."""
    return jnp.take_along_axis(target_probs, action[:, None].astype(jnp.int32), axis=1)[:, 0] / propensity


def ipw(reward, propensity, target_probs, action) -> dict:
    """Inverse-propensity-weighted value (unbiased under full support)."""
    _check(reward, propensity, target_probs, action)
    return _summary(importance_weights(propensity, target_probs, action) * reward)


def snipw(reward, propensity, target_probs, action) -> dict:
    """Self-normalised IPW (consistent, lower variance, small bias)."""
    _check(reward, propensity, target_probs, action)
    w = importance_weights(propensity, target_probs, action)
    est = jnp.sum(w * reward) / jnp.sum(w)
    return _summary(w * (reward - est) / jnp.mean(w) + est, est)


def doubly_robust(reward, propensity, target_probs, action, q_hat) -> dict:
    """Doubly robust value with reward-model predictions ``q_hat [N, K]``."""
    _check(reward, propensity, target_probs, action)
    w = importance_weights(propensity, target_probs, action)
    q_logged = jnp.take_along_axis(q_hat, action[:, None].astype(jnp.int32), axis=1)[:, 0]
    return _summary(jnp.sum(target_probs * q_hat, axis=1) + w * (reward - q_logged))


def fit_linear_reward_model(features, action, reward, num_actions: int, l2: float = 1.0):
    """Ridge regression per action, ``q(x, a) = [1, x] . theta_a``; returns ``predict(features) -> [N, K]``.

    Fitted in closed form (one ``[d+1, d+1]`` solve per action, vmapped). ``features``: ``[N, d]``.
    """
    x = jnp.concatenate([jnp.ones((features.shape[0], 1), features.dtype), features], axis=1)
    eye = jnp.eye(x.shape[1], dtype=x.dtype).at[0, 0].set(0.0)

    def fit(a):
        m = (action == a).astype(x.dtype)[:, None]
        return jnp.linalg.solve((x * m).T @ x + l2 * eye + 1e-6 * jnp.eye(x.shape[1]), (x * m).T @ reward)

    theta = jax.vmap(fit)(jnp.arange(num_actions))  # [K, d+1]

    def predict(f):
        xf = jnp.concatenate([jnp.ones((f.shape[0], 1), f.dtype), f], axis=1)
        return xf @ theta.T

    return predict
