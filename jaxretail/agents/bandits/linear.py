"""Disjoint linear contextual bandits: LinUCB and linear Thompson sampling, as pure functions.

Per arm ``k`` the sufficient statistics are the precision ``A_k = sum x x^T`` and ``b_k = sum r x``
(Li et al., "A contextual-bandit approach to personalized news article recommendation", WWW 2010;
Agrawal and Goyal, "Thompson sampling for contextual bandits with linear payoffs", ICML 2013), kept
without regularisation; the ridge ``lambda I`` is added at solve time, as TF-Agents does (Tikhonov
weight 1 by default). An update folds a whole batch at once, after discounting the old statistics by
the forgetting factor ``gamma``:

    A_k <- gamma A_k + sum_{i: a_i = k} x_i x_i^T,      b_k <- gamma b_k + sum_{i: a_i = k} r_i x_i.

Scores use Cholesky factors of ``A_k + lambda I`` (no explicit inverse):
``theta_k = (A_k + lambda I)^{-1} b_k``, ``width_k(x) = sqrt(x^T (A_k + lambda I)^{-1} x)``.
LinUCB picks ``argmax_k x^T theta_k + alpha width_k(x)``; LinTS draws
``r_k ~ N(x^T theta_k, alpha^2 width_k(x)^2)`` per decision and picks the argmax.
All functions take a batch of contexts ``[n, d]``; the statistics are ``[K, d, d]`` and ``[K, d]``.

A trained policy that only acts (an evaluation) can be frozen once with :func:`freeze`: the
:class:`LinearPosterior` holds ``theta_k`` and the inverse factors ``L_k^{-1}``, so every score after
that is matrix products (``width_k(x) = ||L_k^{-1} x||``), with no factorisation or triangular solve
per decision (LAPACK calls, which keep a program off the other host devices of a CPU, see
:class:`jaxretail.core.sharding.DeviceMap`). The scoring and acting functions take either form.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxretail.core.validation import check_int, check_number


@struct.dataclass
class LinearBanditState:
    precision: jax.Array  # [K, d, d] sum of x x^T per arm (discounted)
    reward_sum: jax.Array  # [K, d] sum of r x per arm (discounted)
    count: jax.Array  # [K] discounted number of observations per arm


def init(num_arms: int, dim: int, dtype=jnp.float32) -> LinearBanditState:
    """Empty statistics for ``num_arms`` arms and ``dim`` context features."""
    num_arms = check_int("num_arms", num_arms, 1)
    dim = check_int("dim", dim, 1)
    return LinearBanditState(
        precision=jnp.zeros((num_arms, dim, dim), dtype),
        reward_sum=jnp.zeros((num_arms, dim), dtype),
        count=jnp.zeros((num_arms,), dtype),
    )


def update(
    state: LinearBanditState,
    contexts: jax.Array,
    actions: jax.Array,
    rewards: jax.Array,
    forgetting: float | jax.Array = 1.0,
    weights: jax.Array | None = None,
) -> LinearBanditState:
    """Fold a batch of ``(x [n, d], a [n], r [n])`` into the statistics, after discounting by ``forgetting``.

    ``weights [n]`` (optional, e.g. a validity mask) scale each observation.
    """
    check_number("forgetting", forgetting, low=0.0, high=1.0, low_open=True)
    num_arms = state.reward_sum.shape[0]
    onehot = jax.nn.one_hot(actions, num_arms, dtype=contexts.dtype)  # [n, K]
    if weights is not None:
        onehot = onehot * weights[:, None]
    gram = jnp.einsum("nk,nd,ne->kde", onehot, contexts, contexts)
    return LinearBanditState(
        precision=forgetting * state.precision + gram,
        reward_sum=forgetting * state.reward_sum + jnp.einsum("nk,n,nd->kd", onehot, rewards, contexts),
        count=forgetting * state.count + onehot.sum(0),
    )


def _factor(state: LinearBanditState, regularization: float) -> jax.Array:
    """Lower Cholesky factors of ``A_k + lambda I``, ``[K, d, d]``."""
    dim = state.precision.shape[-1]
    sym = 0.5 * (state.precision + jnp.swapaxes(state.precision, -1, -2))
    return jnp.linalg.cholesky(sym + regularization * jnp.eye(dim, dtype=sym.dtype))


def posterior(state: LinearBanditState, regularization: float = 1.0) -> tuple[jax.Array, jax.Array]:
    """``(theta [K, d], cholesky [K, d, d])``: ridge estimates and factors of ``A_k + lambda I``."""
    chol = _factor(state, regularization)
    theta = jax.vmap(lambda c, b: jax.scipy.linalg.cho_solve((c, True), b))(chol, state.reward_sum)
    return theta, chol


@struct.dataclass
class LinearPosterior:
    """A frozen ridge posterior (:func:`freeze`): what LinUCB and LinTS need to act."""

    theta: jax.Array  # [K, d] ridge estimates (A_k + lambda I)^{-1} b_k
    inverse_factor: jax.Array  # [K, d, d] L_k^{-1}, with L_k L_k^T = A_k + lambda I (lower triangular)


def freeze(state: LinearBanditState, regularization: float = 1.0) -> LinearPosterior:
    """The posterior of ``state`` with ridge weight ``regularization``, factorised once: scores of a
    :class:`LinearPosterior` are matrix products only (equal to the state's up to float rounding).

    Raises:
      ValueError: ``regularization`` is not positive.
    """
    check_number("regularization", regularization, low=0.0, low_open=True)
    theta, chol = posterior(state, regularization)
    eye = jnp.broadcast_to(jnp.eye(chol.shape[-1], dtype=chol.dtype), chol.shape)
    inverse = jax.vmap(lambda c, e: jax.scipy.linalg.solve_triangular(c, e, lower=True))(chol, eye)
    return LinearPosterior(theta=theta, inverse_factor=inverse)


def mean_and_width(
    state: LinearBanditState | LinearPosterior, contexts: jax.Array, regularization: float | None = None
) -> tuple[jax.Array, jax.Array]:
    """Predicted reward ``x^T theta_k`` and width ``sqrt(x^T (A_k + lambda I)^{-1} x)``, each ``[n, K]``.

    ``regularization`` is ``lambda`` for a :class:`LinearBanditState` (default 1); a
    :class:`LinearPosterior` carries the one it was frozen with.

    Raises:
      ValueError: a ``regularization`` given with a :class:`LinearPosterior`.
    """
    if regularization is not None and not isinstance(state, LinearPosterior):
        check_number("regularization", regularization, low=0.0, low_open=True)
    if isinstance(state, LinearPosterior):
        if regularization is not None:
            raise ValueError(
                f"regularization={regularization!r} cannot apply to a LinearPosterior: it was frozen with "
                "its own (pass it to freeze)"
            )
        theta, inverse = state.theta, state.inverse_factor
        v = jnp.einsum("kde,ne->kdn", inverse, contexts)  # L^{-1} x per arm
    else:
        theta, chol = posterior(state, 1.0 if regularization is None else regularization)
        v = jax.vmap(lambda c: jax.scipy.linalg.solve_triangular(c, contexts.T, lower=True))(chol)
    mean = contexts @ theta.T
    # v = L^{-1} x for every arm, [K, d, n]: ||v||^2 = x^T (L L^T)^{-1} x
    return mean, jnp.sqrt(jnp.sum(v * v, axis=1)).T


def _check_scoring(alpha):
    check_number("alpha", alpha, low=0.0)


def ucb_scores(state, contexts, alpha: float | jax.Array, regularization: float | None = None) -> jax.Array:
    """LinUCB scores ``[n, K]`` of a :class:`LinearBanditState` or a :class:`LinearPosterior`."""
    _check_scoring(alpha)
    mean, width = mean_and_width(state, contexts, regularization)
    return mean + alpha * width


def thompson_scores(
    key, state, contexts, alpha: float | jax.Array, regularization: float | None = None
) -> jax.Array:
    """One posterior draw per (context, arm): ``N(x^T theta_k, alpha^2 width^2)``, ``[n, K]``."""
    _check_scoring(alpha)
    mean, width = mean_and_width(state, contexts, regularization)
    return mean + alpha * width * jax.random.normal(key, mean.shape, mean.dtype)


def act_ucb(state, contexts, alpha, regularization: float | None = None) -> jax.Array:
    """LinUCB arms ``[n]`` (int32)."""
    return jnp.argmax(ucb_scores(state, contexts, alpha, regularization), axis=-1).astype(jnp.int32)


def act_thompson(key, state, contexts, alpha, regularization: float | None = None) -> jax.Array:
    """Linear Thompson sampling arms ``[n]`` (int32), a fresh draw per decision."""
    return jnp.argmax(thompson_scores(key, state, contexts, alpha, regularization), axis=-1).astype(jnp.int32)


def sharded_update(mesh, axis: str = "customers"):
    """:func:`update` with the contexts sharded over mesh axis ``axis``: each device folds its rows
    into local statistics and one ``psum`` combines them.

    Args:
      mesh: a ``jax.sharding.Mesh`` (e.g. :func:`jaxretail.core.sharding.customer_mesh`).
      axis: the mesh axis that holds the contexts.

    Returns ``update(state, contexts [n, d], actions [n], rewards [n], forgetting) -> state`` (``n``
    divisible by the device count; the state is replicated), jitted.
    """
    from jax.sharding import PartitionSpec as P

    def local(state, x, a, r, forgetting):
        empty = jax.tree.map(jnp.zeros_like, state)
        part = jax.lax.psum(update(empty, x, a, r), axis)
        return jax.tree.map(lambda s, p: forgetting * s + p, state, part)

    sharded = jax.shard_map(local, mesh=mesh, in_specs=(P(), P(axis), P(axis), P(axis), P()), out_specs=P())
    return jax.jit(sharded)
