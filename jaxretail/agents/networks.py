"""Flax (Linen) networks of the deep-RL agents; parameters stay plain pytrees.

Sizes follow the coupon benchmark's TF-Agents agents (Xia et al., arXiv 2405.10469, App. D): PPO actor
and value networks with hidden layers (32, 8); DQN ``Dense(16, ReLU) -> LSTM(4) -> Dense(actions)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp


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
            x = act(nn.Dense(width, kernel_init=nn.initializers.orthogonal(jnp.sqrt(2.0)))(x))
        return nn.Dense(self.out, kernel_init=nn.initializers.orthogonal(self.out_scale))(x)


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
            cell = nn.OptimizedLSTMCell(self.recurrent_units)
            carry = cell.initialize_carry(jax.random.key(0), x.shape)
            _, x = cell(carry, x)
        return nn.Dense(self.num_actions)(x)
