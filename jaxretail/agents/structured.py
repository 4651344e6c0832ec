"""Perturbed top-K and its Fenchel-Young loss (Berthet et al. 2020; InferOpt's ``PerturbedAdditive`` +
``FenchelYoungLoss``), for ONE score vector ``theta [N]`` (vmap over examples at the call site).

With ``Z ~ N(0, I_N)``, ``epsilon > 0`` and ``topK`` the 0/1 mask of the ``K`` largest scores:

* smoothed maximum ``F_eps(theta) = E[max_{|y| = K} (theta + eps Z) . y]``
  ``= E[(theta + eps Z) . topK(theta + eps Z)]``;
* expected top-K (the perturbed optimiser) ``y_eps(theta) = E[topK(theta + eps Z)] = grad F_eps(theta)``,
  a point of the convex hull of the ``K``-subsets;
* Fenchel-Young loss ``L(theta; y) = F_eps(theta) - theta . y`` (the constant ``Omega_eps(y)`` is
  dropped, as in InferOpt), whose gradient is ``y_eps(theta) - y`` (Danskin).

Expectations are Monte Carlo means over ``num_samples`` draws. The loss carries a ``jax.custom_vjp``
whose backward pass is the pathwise (Danskin) estimate ``mean_s topK(theta + eps Z_s) - y`` from the
forward pass's own samples: the exact gradient of the sampled objective, at the cost of the forward
pass. ``optax.perturbations.make_perturbed_fun`` offers the score-function (REINFORCE) estimate of the
same gradient; :func:`fenchel_young_grad_score_function` wraps it for comparison. Measured in
``benchmarks/bench_structured.py`` (N=20, K=4, eps=1): variance per sample 2.2 (pathwise) against 131
(score function, with its baseline), i.e. about 8 times the error for the same number of samples, or
60 times the samples for the same error. The learners therefore use the pathwise estimate. (optax
0.2.8 no longer has ``optax.monte_carlo``; ``optax.perturbations`` is its successor.)
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import optax


def check_perturbation(num_items: int, k: int, epsilon=None, num_samples: int | None = None) -> None:
    """Validate a perturbed top-K configuration before any compute.

    Raises:
      ValueError: unless ``1 <= k <= num_items``, ``epsilon`` (when a Python number) is finite and
        ``> 0``, and ``num_samples`` (when given) is an integer ``>= 1``.
    """
    if isinstance(k, bool) or int(k) != k or not 1 <= int(k) <= int(num_items):
        raise ValueError(f"k must be an integer with 1 <= k <= N={num_items}, got k={k!r}")
    if isinstance(epsilon, (int, float)) and not (math.isfinite(float(epsilon)) and float(epsilon) > 0):
        raise ValueError(f"epsilon (perturbation scale) must be a finite number > 0, got epsilon={epsilon!r}")
    if num_samples is not None and (
        isinstance(num_samples, bool) or int(num_samples) != num_samples or int(num_samples) < 1
    ):
        raise ValueError(f"num_samples must be an integer >= 1, got num_samples={num_samples!r}")


def top_k_mask(scores: jax.Array, k: int) -> jax.Array:
    """0/1 mask ``[N]`` (dtype of ``scores``) of the ``k`` largest scores; ties go to the lower index.

    ``k`` rounds of ``argmax`` (faster than ``lax.top_k`` + scatter on CPU for small ``k``). A NaN
    score is ranked as the lowest number; exactly ``k`` entries are always set.
    """
    idx = jnp.arange(scores.shape[-1])
    low = (
        jnp.finfo(scores.dtype).min
        if jnp.issubdtype(scores.dtype, jnp.floating)
        else jnp.iinfo(scores.dtype).min
    )
    s = jnp.where(jnp.isnan(scores) | (scores < low), low, scores).astype(float)  # chosen items become -inf
    mask = jnp.zeros(scores.shape, bool)
    for _ in range(int(k)):
        hit = idx == jnp.argmax(s)
        mask = mask | hit
        s = jnp.where(hit, -jnp.inf, s)
    return mask.astype(scores.dtype) if jnp.issubdtype(scores.dtype, jnp.floating) else mask


def perturbed_top_k(key: jax.Array, theta: jax.Array, k: int, epsilon, num_samples: int) -> jax.Array:
    """``num_samples`` perturbed solutions ``topK(theta + eps Z_s)``, ``[num_samples, N]`` 0/1 floats."""
    check_perturbation(theta.shape[-1], k, epsilon, num_samples)
    z = jax.random.normal(key, (num_samples,) + theta.shape, theta.dtype)
    return jax.vmap(top_k_mask, in_axes=(0, None))(theta + epsilon * z, k)


def expected_top_k(key: jax.Array, theta: jax.Array, k: int, epsilon, num_samples: int) -> jax.Array:
    """Monte Carlo ``y_eps(theta) = E[topK(theta + eps Z)]``, ``[N]`` in ``[0, 1]`` summing to ``k``."""
    return jnp.mean(perturbed_top_k(key, theta, k, epsilon, num_samples), axis=0)


def smoothed_max(key: jax.Array, theta: jax.Array, k: int, epsilon, num_samples: int) -> jax.Array:
    """Monte Carlo ``F_eps(theta) = E[sum of the K largest entries of theta + eps Z]`` (scalar)."""
    check_perturbation(theta.shape[-1], k, epsilon, num_samples)
    z = jax.random.normal(key, (num_samples,) + theta.shape, theta.dtype)
    eta = theta + epsilon * z
    masks = jax.vmap(top_k_mask, in_axes=(0, None))(eta, k)
    return jnp.mean(jnp.sum(jax.lax.stop_gradient(masks) * eta, axis=-1))


def _fy_forward(theta, target, key, epsilon, k, num_samples):
    z = jax.random.normal(key, (num_samples,) + theta.shape, theta.dtype)
    eta = theta + epsilon * z
    masks = jax.vmap(top_k_mask, in_axes=(0, None))(eta, k)
    value = jnp.mean(jnp.sum(masks * eta, axis=-1)) - jnp.dot(theta, target)
    return value, jnp.mean(masks, axis=0) - target


@partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def _fy_loss(theta, target, key, epsilon, k, num_samples):
    return _fy_forward(theta, target, key, epsilon, k, num_samples)[0]


def _fy_fwd(theta, target, key, epsilon, k, num_samples):
    value, grad = _fy_forward(theta, target, key, epsilon, k, num_samples)
    return value, (grad, target, key, epsilon)


def _fy_bwd(k, num_samples, res, g):
    grad, target, key, epsilon = res
    # theta: Danskin gradient; target and epsilon are treated as constants (zero cotangent).
    return g * grad, jnp.zeros_like(target), None, jnp.zeros_like(jnp.asarray(epsilon))


_fy_loss.defvjp(_fy_fwd, _fy_bwd)


def fenchel_young_loss(
    theta: jax.Array, target: jax.Array, key: jax.Array, *, k: int, epsilon=1.0, num_samples: int = 20
) -> jax.Array:
    """Perturbed-additive Fenchel-Young loss ``mean_s[eta_s . topK(eta_s)] - theta . y``,
    ``eta_s = theta + eps Z_s``.

    Args:
      theta: scores ``[N]``.
      target: ``[N]``, a K-subset mask or a point of its convex hull (e.g. SRL's softmax target).
      key: PRNG key of the ``num_samples`` Gaussian perturbations.
      k, epsilon, num_samples: top-K size, perturbation standard deviation (InferOpt's ``epsilon``;
        ``theta + eps Z``) and Monte Carlo sample count (defaults: Hoppe et al., eps 1, 20 samples).

    Returns:
      scalar loss; ``jax.grad`` w.r.t. ``theta`` gives ``mean_s topK(theta + eps Z_s) - target``.

    Raises:
      ValueError: for ``k`` outside ``[1, N]``, ``epsilon <= 0`` or ``num_samples < 1``.
    """
    check_perturbation(theta.shape[-1], k, epsilon, num_samples)
    return _fy_loss(theta, target, key, epsilon, int(k), int(num_samples))


def fenchel_young_grad(
    theta: jax.Array, target: jax.Array, key: jax.Array, *, k: int, epsilon=1.0, num_samples: int = 20
) -> jax.Array:
    """The loss gradient ``mean_s topK(theta + eps Z_s) - target``, ``[N]`` (same samples as the loss)."""
    check_perturbation(theta.shape[-1], k, epsilon, num_samples)
    return _fy_forward(theta, target, key, epsilon, int(k), int(num_samples))[1]


def fenchel_young_grad_score_function(
    theta: jax.Array, target: jax.Array, key: jax.Array, *, k: int, epsilon=1.0, num_samples: int = 20
) -> jax.Array:
    """The same gradient by the score-function estimator of ``optax.perturbations.make_perturbed_fun``
    (Gaussian noise, baseline ``F(theta)``): ``E[max(theta + eps Z) Z] / eps - target``. Unbiased but
    noisier than :func:`fenchel_young_grad`; kept as an independent reference."""
    check_perturbation(theta.shape[-1], k, epsilon, num_samples)

    def max_value(x):
        return jnp.sum(x * jax.lax.stop_gradient(top_k_mask(x, k)))

    smoothed = optax.perturbations.make_perturbed_fun(
        max_value, num_samples=int(num_samples), sigma=epsilon, noise=optax.perturbations.Normal()
    )
    return jax.grad(smoothed, argnums=1)(key, theta) - target
