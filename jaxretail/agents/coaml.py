"""COaML pieces shared by SIL, SRL and the paper's PPO (Hoppe et al., arXiv 2505.19053, code
``tumBAIS/Structured-RL``): the item-wise actor, the two critics, the optimiser convention, the return
with or without the original's dropped last reward, a fixed-size replay buffer and the evaluation /
model-selection helpers.

Everything is a pure function of explicit parameters (plain dict pytrees) and feature arrays; nothing
here knows the environment. Observations are ``x [F, N]`` (one column per item). Layers follow Flux:
Glorot-uniform weights, zero biases, ``Dense(in => out)`` computing ``W x + b`` with ``W [out, in]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxretail.agents.structured import top_k_mask
from jaxretail.core.rollout import rollout

ACTIVATIONS = {"identity": lambda x: x, "relu": jax.nn.relu, "tanh": jnp.tanh}


def dense_init(key: jax.Array, n_in: int, n_out: int) -> dict:
    """Flux ``Dense(n_in => n_out)``: Glorot-uniform ``w [out, in]``, zero ``b [out]``."""
    limit = jnp.sqrt(6.0 / (n_in + n_out))
    return {
        "w": jax.random.uniform(key, (n_out, n_in), minval=-limit, maxval=limit),
        "b": jnp.zeros((n_out,)),
    }


def dense(p: dict, x: jax.Array) -> jax.Array:
    """``W x + b`` on the leading axis of ``x [in, ...]`` -> ``[out, ...]``."""
    return jnp.tensordot(p["w"], x, axes=1) + p["b"].reshape((-1,) + (1,) * (x.ndim - 1))


def check_config(cfg, positive_ints=(), positive=(), pairs=()):
    """Raise ``ValueError`` naming the field unless the named fields are ints >= 1 / numbers > 0 /
    ``(start, end)`` pairs of numbers > 0."""
    owner = type(cfg).__name__
    for name in positive_ints:
        v = getattr(cfg, name)
        if isinstance(v, bool) or int(v) != v or v < 1:
            raise ValueError(f"{owner}.{name} must be an integer >= 1, got {name}={v!r}")
    for name in positive:
        v = getattr(cfg, name)
        if not (isinstance(v, (int, float)) and v > 0):
            raise ValueError(f"{owner}.{name} must be a number > 0, got {name}={v!r}")
    for name in pairs:
        v = getattr(cfg, name)
        if len(v) != 2 or not all(isinstance(x, (int, float)) and x > 0 for x in v):
            raise ValueError(f"{owner}.{name} must be (start, end) with both > 0, got {name}={v!r}")


def obs_shape(spec: EnvSpec) -> tuple[int, int]:
    """``(F, N)`` of the environment's observation (no compute)."""
    obs, _ = jax.eval_shape(spec.env.reset, jax.random.key(0), spec.params)
    return obs.shape  # (F, N)


# --- actor (spec 3.3) ---------------------------------------------------------------------------


def init_actor(key: jax.Array, num_features: int = 10, hidden: Sequence[int] = (5,)) -> dict:
    """Item scorer ``Chain(Dense(F => 5), Dense(5 => 1))``; ``hidden`` sets the widths."""
    widths = [num_features, *hidden, 1]
    keys = jax.random.split(key, len(widths) - 1)
    return {f"l{i}": dense_init(keys[i], widths[i], widths[i + 1]) for i in range(len(widths) - 1)}


def actor_scores(params: dict, x: jax.Array, activation: str = "identity") -> jax.Array:
    """Scores ``[N]`` of the item features ``x [F, N]``, one shared network per column.

    With the paper's identity activation the actor is affine, ``theta_i = w . x_i + b`` (61 raw
    parameters for F = 10); ``"relu"`` / ``"tanh"`` give a small MLP.
    """
    act = ACTIVATIONS[activation]
    layers = [params[f"l{i}"] for i in range(len(params))]
    h = x
    for layer in layers[:-1]:
        h = act(dense(layer, h))
    return dense(layers[-1], h)[0]


# --- critics (spec 3.4) -------------------------------------------------------------------------


def init_critics(
    key: jax.Array, num_items: int, k: int, num_features: int = 10, reward_rows: int = 6
) -> dict:
    """``critic_rew``: ``Dense(6 => 3)`` per offered item, flattened ``3 K``, ``Dense(3K => 1)``;
    ``critic_fut``: ``Dense(F + 1 => 5)`` per item on ``[x; a]``, flattened ``5 N``, ``Dense(5N => 10)``,
    ``Dense(10 => 1)``."""
    k1, k2, k3, k4, k5 = jax.random.split(key, 5)
    return {
        "rew": {"l0": dense_init(k1, reward_rows, 3), "l1": dense_init(k2, 3 * k, 1)},
        "fut": {
            "l0": dense_init(k3, num_features + 1, 5),
            "l1": dense_init(k4, 5 * num_items, 10),
            "l2": dense_init(k5, 10, 1),
        },
    }


def critic_reward(p: dict, x: jax.Array, action: jax.Array, k: int) -> jax.Array:
    """Immediate-revenue critic: the first 6 feature rows of the ``k`` offered items (index order)."""
    rows = p["l0"]["w"].shape[1]
    (idx,) = jnp.nonzero(action > 0.5, size=k, fill_value=0)
    h = dense(p["l0"], x[:rows, idx])  # [3, K]
    return dense(p["l1"], h.T.reshape(-1))[0]  # Julia's vec is column-major: item by item


def critic_future(p: dict, x: jax.Array, action: jax.Array) -> jax.Array:
    """Continuation critic on the features stacked with the assortment row, ``[F + 1, N]``."""
    h = dense(p["l0"], jnp.concatenate([x, action[None].astype(x.dtype)]))  # [5, N]
    return dense(p["l2"], dense(p["l1"], h.T.reshape(-1)))[0]


def huber(error: jax.Array, delta: float = 1.0) -> jax.Array:
    """Huber loss with threshold ``delta`` (Flux convention), elementwise."""
    a = jnp.abs(error)
    return jnp.where(a <= delta, 0.5 * error**2, delta * (a - 0.5 * delta))


# --- optimiser (spec 3.5) -----------------------------------------------------------------------


def gradient_transform(paper_mode: bool, max_grad_norm: float = 1.0) -> optax.GradientTransformation:
    """Paper: ``ClipValue(1e-3)`` then Adam's scaling; clean: global-norm clipping then Adam's scaling.

    The step ``-lr * update`` is applied by :func:`apply_updates` so that the per-episode linear
    decay of the learning rate is a plain traced scalar.
    """
    clip = optax.clip(1e-3) if paper_mode else optax.clip_by_global_norm(max_grad_norm)
    return optax.chain(clip, optax.scale_by_adam(b1=0.9, b2=0.999, eps=1e-8))


def apply_updates(tx, grads, opt_state, params, lr):
    updates, opt_state = tx.update(grads, opt_state, params)
    return jax.tree.map(lambda p, u: p - lr * u, params, updates), opt_state


def linear_schedule(start, end, episode, episodes):
    """``max(start - e (start - end) / episodes, end)`` at 0-based episode ``e`` (paper's decay);
    increasing schedules use ``min``."""
    value = start - episode * (start - end) / episodes
    return jnp.where(start >= end, jnp.maximum(value, end), jnp.minimum(value, end))


def noise_std(sigma, paper_mode: bool):
    """Paper: ``MvNormal(theta, sigma I)`` takes a covariance, so the std is ``sqrt(sigma)``."""
    return jnp.sqrt(sigma) if paper_mode else sigma


# --- returns, replay ----------------------------------------------------------------------------


def discounted_returns(rewards: jax.Array, gamma: float, drop_last: bool) -> jax.Array:
    """``G_t = r_t + gamma G_{t+1}`` over an episode ``[T]``.

    ``drop_last`` reproduces the original (``generate_episode``): the recursion starts at
    ``G_{T-1} = r_{T-1}`` and ``G_T = 0``, so the final reward is in no return.
    """
    r = (
        jnp.where(jnp.arange(rewards.shape[0]) == rewards.shape[0] - 1, 0.0, rewards)
        if drop_last
        else rewards
    )

    def body(g, r_t):
        g = r_t + gamma * g
        return g, g

    _, g = jax.lax.scan(body, jnp.zeros((), rewards.dtype), r, reverse=True)
    return g


@struct.dataclass
class Replay:
    """Ring buffer of transitions; every leaf of ``data`` is ``[capacity, ...]``."""

    data: dict
    position: jax.Array  # [] int32, next slot
    size: jax.Array  # [] int32, filled slots


def replay_init(example: dict, capacity: int) -> Replay:
    data = jax.tree.map(lambda x: jnp.zeros((capacity,) + x.shape, x.dtype), example)
    return Replay(data, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def replay_add(buf: Replay, batch: dict) -> Replay:
    """Append ``batch`` (leaves ``[B, ...]``) in order, overwriting the oldest slots."""
    capacity = jax.tree.leaves(buf.data)[0].shape[0]
    n = jax.tree.leaves(batch)[0].shape[0]
    idx = (buf.position + jnp.arange(n)) % capacity
    data = jax.tree.map(lambda d, x: d.at[idx].set(x), buf.data, batch)
    return Replay(data, (buf.position + n) % capacity, jnp.minimum(buf.size + n, capacity))


def replay_sample(buf: Replay, key: jax.Array, shape: tuple[int, ...]) -> dict:
    """Uniform draws with replacement among the filled slots, leaves ``[*shape, ...]``."""
    idx = jax.random.randint(key, shape, 0, jnp.maximum(buf.size, 1))
    return jax.tree.map(lambda d: d[idx], buf.data)


# --- environment interaction (duck-typed gymnax env) ----------------------------------------------


class EnvSpec(NamedTuple):
    """What a trainer needs of the environment: a gymnax-style ``env`` (``reset``, ``step_env``) with
    its ``params``, the decisions per episode and the assortment size."""

    env: object
    params: object
    horizon: int
    k: int


def actor_policy(actor_params: dict, k: int, activation: str = "identity") -> Callable:
    """Deterministic ``topK(actor(x))`` as a rollout policy ``(key, obs, state, params) -> mask``."""

    def policy(key, obs, state, params):
        del key, state, params
        return top_k_mask(actor_scores(actor_params, obs, activation), k) > 0.5

    return policy


def evaluate_actor(
    spec: EnvSpec, actor_params: dict, seeds: jax.Array, activation: str = "identity"
) -> jax.Array:
    """Undiscounted episode revenue ``[S]`` of ``topK(actor)`` on episodes ``key(seed)``."""
    keys = jax.vmap(jax.random.key)(seeds.astype(jnp.uint32))
    policy = actor_policy(actor_params, spec.k, activation)
    _, _, rewards = rollout(spec.env, policy, jax.random.key(0), spec.params, keys, spec.horizon)
    return rewards.sum(axis=0)


def evaluate_train_val(
    spec: EnvSpec,
    actor_params: dict,
    episodes: int,
    train_first: int,
    val_first: int,
    activation: str = "identity",
) -> tuple[jax.Array, jax.Array]:
    """Mean revenue on seeds ``train_first + [0, episodes)`` and ``val_first + [0, episodes)``
    (one rollout for both)."""
    seeds = jnp.arange(episodes)
    revenue = evaluate_actor(
        spec, actor_params, jnp.concatenate([seeds + train_first, seeds + val_first]), activation
    )
    return revenue[:episodes].mean(), revenue[episodes:].mean()


class Selection(NamedTuple):
    """Model selection of the original (``reward_comparison``): keep the current actor when the mean of
    its train and validation revenue is at least every earlier eligible mean."""

    best_params: dict
    best_score: jax.Array  # [] running maximum of the eligible means (-inf before any)
    best_point: jax.Array  # [] int32, evaluation point of the kept actor (-1: none yet)


def select(
    sel: Selection, params: dict, score, point, counts: bool = True, eligible: bool = True
) -> Selection:
    """``counts``: the point enters the running maximum; ``eligible``: it may replace the kept actor."""
    take = counts & eligible & (score >= sel.best_score)
    best = jax.tree.map(lambda b, p: jnp.where(take, p, b), sel.best_params, params)
    return Selection(
        best,
        jnp.where(counts, jnp.maximum(sel.best_score, score), sel.best_score),
        jnp.where(take, point, sel.best_point),
    )
