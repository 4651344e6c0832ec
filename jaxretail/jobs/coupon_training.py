"""How the coupon benchmark's agents train on the logged arrays (:mod:`jaxretail.jobs.coupon_protocol`
wires them into its registry): the linear bandits' batched statistics, the Neural Boltzmann bandit's
minibatch SGD, offline PPO and DQN, one run at a time or every run at once split over the devices
(:class:`~jaxretail.core.sharding.DeviceMap`).

``cfg`` is the protocol's :class:`~jaxretail.jobs.coupon_protocol.ProtocolConfig`; ``data`` the arrays
of :func:`jaxretail.data.dataset.load_training_arrays` (rows customer-major, ``[customers * weeks, ...]``).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from jaxretail.agents import dqn, ppo
from jaxretail.agents.bandits import linear, neural
from jaxretail.agents.training import make_train
from jaxretail.core import spaces
from jaxretail.core.sharding import DeviceMap

if TYPE_CHECKING:
    from jaxretail.jobs.coupon_protocol import ProtocolConfig


def customer_rows(data, count: int, rng) -> np.ndarray:
    """Row indices of ``count`` customers drawn without replacement (all of them if fewer)."""
    n, weeks = data["num_customers"], data["weeks"]
    chosen = rng.choice(n, min(count, n), replace=False)
    return (chosen[:, None] * weeks + np.arange(weeks)[None, :]).ravel()


def with_bias(x):
    """``x [..., F] -> [..., F + 1]`` with a trailing 1 (the linear bandits' intercept)."""
    return jnp.concatenate([x, jnp.ones(x.shape[:-1] + (1,), x.dtype)], axis=-1)


def train_linear(
    data, num_arms: int, forgetting: float, epochs: int, batch_customers: int, rng
) -> linear.LinearBanditState:
    """``epochs`` updates, each on every row of ``batch_customers`` customers drawn without replacement."""
    state = linear.init(num_arms, data["context"].shape[1] + 1)
    update = jax.jit(linear.update)
    for _ in range(epochs):
        rows = customer_rows(data, batch_customers, rng)
        state = update(
            state,
            with_bias(jnp.asarray(data["context"][rows])),
            jnp.asarray(data["action"][rows]),
            jnp.asarray(data["reward"][rows]),
            forgetting,
        )
    return state


def train_neural(data, num_arms: int, cfg: ProtocolConfig, key, rng) -> neural.NeuralBanditState:
    """``nb_epochs`` epochs of minibatch SGD, each on the rows of ``nb_customers`` customers drawn anew."""
    state = neural.init(key, data["context"].shape[1], num_arms, cfg.nb_hidden, cfg.nb_learning_rate)
    step = jax.jit(neural.update, static_argnames=("epochs", "batch_size"))
    for epoch in range(cfg.nb_epochs):
        rows = customer_rows(data, cfg.nb_customers, rng)
        batch = min(cfg.nb_batch_size, len(rows))
        idx = rows[: (len(rows) // batch) * batch]
        state, _ = step(
            state,
            jax.random.fold_in(key, epoch),
            jnp.asarray(data["context"][idx]),
            jnp.asarray(data["action"][idx]),
            jnp.asarray(data["reward"][idx]),
            epochs=1,
            batch_size=batch,
        )
    return state


def train_neural_runs(data, num_arms: int, cfg: ProtocolConfig, keys, rngs) -> list:
    """:func:`train_neural`'s parameters for every ``(key, rng)``, the runs vmapped: one SGD program per
    epoch for all of them (one run's minibatch steps on the (8, 2) network are too small to keep a
    core busy). Each run draws its customers from its own ``rng`` in the same order as
    :func:`train_neural`, so every run trains on the same rows with the same keys."""
    if not len(keys) or len(keys) != len(rngs):
        raise ValueError(
            f"train_neural_runs needs one rng per key, got {len(keys)} keys and {len(rngs)} rngs"
        )
    dim = data["context"].shape[1]
    init = lambda k: neural.init(k, dim, num_arms, cfg.nb_hidden, cfg.nb_learning_rate)
    template = init(keys[0])
    states = [template, *(init(k) for k in keys[1:])]
    stacked = template.replace(
        params=jax.tree.map(lambda *x: jnp.stack(x), *(s.params for s in states)),
        opt_state=jax.tree.map(lambda *x: jnp.stack(x), *(s.opt_state for s in states)),
    )
    keys = jnp.stack(keys)
    for epoch in range(cfg.nb_epochs):
        rows = np.stack([customer_rows(data, cfg.nb_customers, rng) for rng in rngs])  # [R, n]
        batch = min(cfg.nb_batch_size, rows.shape[1])
        idx = rows[:, : (rows.shape[1] // batch) * batch]
        stacked = _neural_epoch(batch)(
            stacked, keys, epoch, data["context"][idx], data["action"][idx], data["reward"][idx]
        )
    params = jax.tree.map(np.asarray, stacked.params)
    return [jax.tree.map(lambda x, r=r: x[r], params) for r in range(len(rngs))]


@functools.lru_cache(maxsize=8)
def _neural_epoch(batch: int):
    """Jitted: one epoch of :func:`neural.update` for every run (leading axis), keyed by
    ``fold_in(key, epoch)``."""

    def one(state, key, epoch, x, a, r):
        return neural.update(state, jax.random.fold_in(key, epoch), x, a, r, epochs=1, batch_size=batch)[0]

    return jax.jit(jax.vmap(one, in_axes=(0, 0, None, 0, 0, 0)))


def _per_customer(data, name):
    """``[customers, weeks, ...]`` view of a row-wise training array (rows are customer-major)."""
    x = data[name]
    return x.reshape((data["num_customers"], data["weeks"]) + x.shape[1:])


def _logged_trajectories(data) -> ppo.LoggedTrajectories:
    return ppo.LoggedTrajectories(
        obs=jnp.asarray(_per_customer(data, "context")),
        action=jnp.asarray(_per_customer(data, "action")),
        action_prob=jnp.asarray(_per_customer(data, "action_prob")),
        reward=jnp.asarray(_per_customer(data, "reward")),
        last_next_obs=jnp.asarray(_per_customer(data, "next_context")[:, -1]),
    )


def train_ppo(data, num_arms: int, cfg: ProtocolConfig, key) -> dict:
    """Offline PPO on every customer's logged trajectory; returns the greedy policy's inputs."""
    logged = _logged_trajectories(data)
    out = _ppo_train_fn(cfg, num_arms, logged.obs.shape[-1])(key, None, logged)
    return ppo.agent_of(out["state"])


def train_ppo_runs(data, num_arms: int, cfg: ProtocolConfig, keys) -> list[dict]:
    """:func:`train_ppo` for every key, the runs split over the devices (one program; a CPU exposed as
    host devices trains one run per core at a time)."""
    logged = _logged_trajectories(data)
    return _ppo_runs(cfg, num_arms, logged.obs.shape[-1])(logged, list(keys))


@functools.lru_cache(maxsize=4)
def _ppo_train_fn(cfg: ProtocolConfig, num_arms: int, dim: int):
    """One compiled trainer for every training run of a protocol."""
    return jax.jit(make_train(ppo.make_offline_trainer(cfg.ppo_config(), (dim,), spaces.Discrete(num_arms))))


@functools.lru_cache(maxsize=4)
def _ppo_runs(cfg: ProtocolConfig, num_arms: int, dim: int) -> DeviceMap:
    train = _ppo_train_fn(cfg, num_arms, dim)
    return DeviceMap(lambda logged, key, index: ppo.agent_of(train(key, None, logged)["state"]))


@functools.lru_cache(maxsize=4)
def _dqn_train_fn(cfg: ProtocolConfig, num_arms: int, dim: int, rows: int):
    config = cfg.dqn_config(rows)
    return jax.jit(make_train(dqn.make_offline_trainer(config, (dim,), spaces.Discrete(num_arms))))


@functools.lru_cache(maxsize=4)
def _dqn_runs(cfg: ProtocolConfig, num_arms: int, dim: int, rows: int) -> DeviceMap:
    train = _dqn_train_fn(cfg, num_arms, dim, rows)
    return DeviceMap(lambda logged, key, index: train(key, None, logged)["state"].params)


def _transitions(data) -> tuple[dqn.Transitions, int]:
    """The logged transitions and their context width."""
    logged = dqn.Transitions(
        obs=jnp.asarray(data["context"]),
        action=jnp.asarray(data["action"]),
        reward=jnp.asarray(data["reward"]),
        next_obs=jnp.asarray(data["next_context"]),
        terminated=jnp.zeros(len(data["reward"])),
    )
    return logged, logged.obs.shape[-1]


def train_dqn(data, num_arms: int, cfg: ProtocolConfig, key):
    """Offline DQN on every logged transition; returns the Q-network parameters."""
    logged, dim = _transitions(data)
    return _dqn_train_fn(cfg, num_arms, dim, _dqn_rows(data, cfg))(key, None, logged)["state"].params


def train_dqn_runs(data, num_arms: int, cfg: ProtocolConfig, keys) -> list:
    """:func:`train_dqn` for every key, the runs split over the devices (see :func:`train_ppo_runs`)."""
    logged, dim = _transitions(data)
    return _dqn_runs(cfg, num_arms, dim, _dqn_rows(data, cfg))(logged, list(keys))


def _dqn_rows(data, cfg: ProtocolConfig) -> int:
    return min(cfg.rl_customers * data["weeks"], len(data["reward"]))
