"""Flax (Linen) networks of the deep-RL agents; parameters stay plain pytrees.

Sizes follow the coupon benchmark's TF-Agents agents (Xia et al., arXiv 2405.10469, App. D): PPO actor
and value networks with hidden layers (32, 8); DQN ``Dense(16, ReLU) -> LSTM(4) -> Dense(actions)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp


def _gram_schmidt_q(a: jax.Array) -> jax.Array:
    """Q of the QR decomposition of ``a`` ``[m, n]`` (``m >= n``) with ``R``'s diagonal positive.

    Classical Gram-Schmidt with one reorthogonalisation (CGS2), in plain matrix products: no LAPACK
    call, so no batched ``geqrf`` custom call under ``vmap`` (several of those running at once deadlock
    XLA's CPU thread pool on small machines, jaxlib 0.10).
    """

    def column(j, q):
        v = a[:, j]
        for _ in range(2):  # CGS2: the second pass removes what rounding left of earlier directions
            v = v - q @ (q.T @ v)
        return q.at[:, j].set(v / jnp.linalg.norm(v))

    return jax.lax.fori_loop(0, a.shape[1], column, jnp.zeros_like(a))


def orthogonal(scale: float = 1.0, column_axis: int = -1):
    """Orthogonal initializer (Saxe et al., 2014), the distribution of ``jax.nn.initializers.orthogonal``.

    Draws ``A ~ N(0, 1)`` of shape ``(max(r, c), min(r, c))`` (``r`` rows, ``c = shape[column_axis]``
    columns) and returns ``scale * Q`` of ``A = QR`` with ``diag(R) > 0``, a Haar-distributed
    orthogonal matrix, transposed when ``r < c``. Computed by Gram-Schmidt instead of LAPACK QR (see
    :func:`_gram_schmidt_q`); for the same key it equals the ``jax.nn`` initializer up to rounding.
    """

    def init(key, shape, dtype=jnp.float32):
        if len(shape) < 2:
            raise ValueError(f"orthogonal init needs a shape of rank >= 2, got shape={shape}")
        cols = shape[column_axis]
        rows = math.prod(shape) // cols
        tall = (rows, cols) if rows >= cols else (cols, rows)
        q = _gram_schmidt_q(jax.random.normal(key, tall, dtype))
        q = q if rows >= cols else q.T
        moved = tuple(d for i, d in enumerate(shape) if i != column_axis % len(shape)) + (cols,)
        return scale * jnp.moveaxis(q.reshape(moved), -1, column_axis)

    return init


class MLP(nn.Module):
    """``[..., d] -> [..., out]`` with ``activation`` hidden layers (orthogonal init)."""

    hidden: Sequence[int]
    out: int
    activation: str = "tanh"
    out_scale: float = 1.0

    @nn.compact
    def __call__(self, x):
        act = getattr(nn, self.activation)
        for width in self.hidden:
            x = act(nn.Dense(width, kernel_init=orthogonal(jnp.sqrt(2.0)))(x))
        return nn.Dense(self.out, kernel_init=orthogonal(self.out_scale))(x)


class CategoricalActor(nn.Module):
    """Observation ``[*obs_shape]`` (flattened) -> ``distrax.Categorical`` over ``num_actions``."""

    hidden: Sequence[int]
    num_actions: int

    @nn.compact
    def __call__(self, obs):
        logits = MLP(self.hidden, self.num_actions, out_scale=0.01)(obs.reshape(obs.shape[0], -1))
        return distrax.Categorical(logits=logits)


class GaussianActor(nn.Module):
    """Observation -> diagonal Gaussian over ``action_dim`` reals (state-independent log std)."""

    hidden: Sequence[int]
    action_dim: int

    @nn.compact
    def __call__(self, obs):
        mean = MLP(self.hidden, self.action_dim, out_scale=0.01)(obs.reshape(obs.shape[0], -1))
        log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
        return distrax.MultivariateNormalDiag(mean, jnp.exp(log_std))


class ItemScoreActor(nn.Module):
    """Item-wise Gaussian scores for observations ``[F, N]`` (one column per item): a shared MLP maps
    each item's ``F`` features to its mean score, so the policy is permutation-equivariant in items.
    Pair with a top-K action map (dynamic assortment)."""

    hidden: Sequence[int]

    @nn.compact
    def __call__(self, obs):
        mean = MLP(self.hidden, 1, out_scale=0.01)(jnp.swapaxes(obs, -1, -2))[..., 0]  # [B, N]
        log_std = self.param("log_std", nn.initializers.zeros, ())
        return distrax.MultivariateNormalDiag(mean, jnp.exp(log_std) * jnp.ones_like(mean))


class Critic(nn.Module):
    """Observation (flattened) -> state value ``[B]``."""

    hidden: Sequence[int]

    @nn.compact
    def __call__(self, obs):
        return MLP(self.hidden, 1)(obs.reshape(obs.shape[0], -1))[..., 0]


class QNetwork(nn.Module):
    """Observation -> Q-values ``[B, num_actions]``: ReLU dense layers, optionally an LSTM layer.

    The LSTM starts from a zero state at every decision, which is what TF-Agents' Q-RNN computes on
    the one-step contexts of the coupon benchmark (the context already summarises the history)."""

    hidden: Sequence[int]
    num_actions: int
    recurrent_units: int = 0

    @nn.compact
    def __call__(self, obs):
        x = obs.reshape(obs.shape[0], -1)
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        if self.recurrent_units:
            cell = nn.OptimizedLSTMCell(self.recurrent_units, recurrent_kernel_init=orthogonal())
            carry = cell.initialize_carry(jax.random.key(0), x.shape)
            _, x = cell(carry, x)
        return nn.Dense(self.num_actions)(x)
