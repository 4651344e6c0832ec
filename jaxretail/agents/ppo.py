"""Proximal policy optimisation (Schulman et al. 2017, arXiv 1707.06347) as pure trainers.

- :func:`make_trainer` (online): ``num_steps`` steps of a :class:`~jaxretail.core.vector.VectorEnv`
  per update, then ``update_epochs`` epochs of minibatch Adam on the clipped surrogate.
- :func:`make_offline_trainer`: each update draws ``batch_streams`` logged trajectories (e.g. customers
  of the coupon dataset) and learns from them with importance ratios against the logged action
  probabilities (the coupon benchmark trains TF-Agents' ``PPOAgent`` this way, Xia et al.
  arXiv 2405.10469 App. D).

Loss per minibatch: ``-min(rho A, clip(rho, 1 - eps, 1 + eps) A) + vf_coef (V - G)^2 / 2
- ent_coef H + beta KL + kl_cutoff_coef max(0, KL - kl_cutoff_factor kl_target)^2`` with
``rho = pi(a|s) / mu(a|s)``, GAE(lambda) advantages ``A`` and returns ``G``; ``KL`` is the sample
estimate ``E[(rho - 1) - log rho]`` of ``KL(mu || pi)`` and ``beta`` adapts towards ``kl_target``
(TF-Agents' adaptive KL penalty) when ``adaptive_kl``. Observations and rewards are normalised with
running statistics. Minibatches split the streams (not the transitions), so no large permutation
is ever drawn.

Static settings live in :class:`PPOConfig`; the vmappable ones in :class:`PPOHyper`, so
``jax.vmap(train)(keys, hypers)`` trains a learning-rate sweep with one compilation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from jaxretail.agents import normalization as norm
from jaxretail.agents import ppo_loss as loss
from jaxretail.agents.networks import CategoricalActor, Critic, GaussianActor, ItemScoreActor
from jaxretail.agents.training import Trainer
from jaxretail.core import spaces
from jaxretail.core.validation import (
    ConfigError,
    check_bools,
    check_choice,
    check_number,
    check_positive_ints,
    check_ranges,
    check_sizes,
)
from jaxretail.core.vector import VectorEnv

ACTORS = ("auto", "categorical", "gaussian", "item_scores")


@struct.dataclass
class PPOHyper:
    """Vmappable hyperparameters (scalars, or arrays with a leading sweep axis under ``vmap``)."""

    learning_rate: float = 3e-3
    clip_eps: float = 0.2
    gamma: float = 0.99
    gae_lambda: float = 0.95
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    kl_target: float = 0.01
    kl_beta_init: float = 1.0


_HYPER_RULES = {
    "learning_rate": (0.0, None, False),
    "clip_eps": (0.0, None, False),
    "gamma": (0.0, 1.0, True),
    "gae_lambda": (0.0, 1.0, True),
    "ent_coef": (0.0, None, True),
    "vf_coef": (0.0, None, True),
    "max_grad_norm": (0.0, None, False),
    "kl_target": (0.0, None, False),
    "kl_beta_init": (0.0, None, True),
}


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """Static PPO settings (shapes, loop lengths, architecture) and the default :class:`PPOHyper`."""

    num_updates: int = 100
    num_steps: int = 16  # online: environment steps per update
    update_epochs: int = 4
    num_minibatches: int = 4  # must divide the number of streams per update
    actor_hidden: tuple[int, ...] = (32, 8)
    critic_hidden: tuple[int, ...] = (32, 8)
    actor: str = "auto"  # auto: categorical for Discrete actions, Gaussian for Box
    clip_surrogate: bool = True
    adaptive_kl: bool = False
    kl_cutoff_factor: float = 2.0
    kl_cutoff_coef: float = 1000.0
    normalize_observations: bool = True
    normalize_rewards: bool = True
    normalize_advantages: bool = True
    batch_streams: int | None = None  # offline: logged trajectories per update (None: all)
    # rows per gradient chunk: a minibatch's gradient is summed over chunks of this many transitions
    # (ppo_loss.chunked_grad: the same gradient to float rounding, in cache on a CPU); None: at once
    grad_chunk: int | None = None
    hyper: PPOHyper = dataclasses.field(default_factory=PPOHyper)

    def __post_init__(self):
        check_positive_ints(
            self, ("num_updates", "num_steps", "update_epochs", "num_minibatches"), "PPOConfig"
        )
        check_positive_ints(self, ("batch_streams", "grad_chunk"), "PPOConfig")
        for name in ("actor_hidden", "critic_hidden"):
            check_sizes(name, getattr(self, name), owner="PPOConfig")
        check_choice("actor", self.actor, ACTORS, owner="PPOConfig")
        check_number("kl_cutoff_factor", self.kl_cutoff_factor, low=0.0, low_open=True, owner="PPOConfig")
        check_number("kl_cutoff_coef", self.kl_cutoff_coef, low=0.0, owner="PPOConfig")
        check_bools(
            self,
            ("clip_surrogate", "adaptive_kl", "normalize_observations", "normalize_rewards",
             "normalize_advantages"),
            "PPOConfig",
        )  # fmt: skip
        if not isinstance(self.hyper, PPOHyper):
            raise ConfigError(f"PPOConfig.hyper must be a PPOHyper, got hyper={self.hyper!r}")
        check_ranges(self.hyper, _HYPER_RULES, "PPOHyper")


@struct.dataclass
class Batch:
    """Time-major trajectories of ``N`` streams, each leaf ``[T, N, ...]``."""

    obs: jax.Array  # normalised observation the action was chosen on
    action: jax.Array
    log_prob: jax.Array  # log mu(a|s) of the behaviour policy
    reward: jax.Array  # (scaled) reward
    value: jax.Array  # V(obs)
    next_value: jax.Array  # V(observation that ended the step), used when not terminated
    terminated: jax.Array  # bool: no bootstrap
    done: jax.Array  # bool: terminated or truncated (the next step starts a new episode)


@struct.dataclass
class PPOState:
    params: dict  # {"actor": ..., "critic": ...}
    opt_state: Any
    obs_stats: norm.RunningStats
    reward_stats: norm.RunningStats
    kl_beta: jax.Array  # []
    key: jax.Array
    hyper: PPOHyper
    env_state: Any = None  # online only
    obs: Any = None  # [N, *obs_shape] online only: current raw observation
    episode_return: Any = None  # [N] online only: return of the running episodes


def gae(reward, value, next_value, terminated, done, gamma, lam):
    """GAE(lambda) advantages of ONE stream; every argument ``[T]`` (vmap over streams).

    ``delta_t = r_t + gamma (1 - term_t) V'_t - V_t`` with ``V'_t`` the value of the observation that
    ended step ``t`` (bootstraps truncated episodes), ``A_t = delta_t + gamma lam (1 - done_t) A_{t+1}``.
    """
    delta = reward + gamma * (1.0 - terminated) * next_value - value

    def body(carry, x):
        d, dn = x
        carry = d + gamma * lam * (1.0 - dn) * carry
        return carry, carry

    _, adv = jax.lax.scan(body, jnp.zeros_like(reward[0]), (delta, done.astype(reward.dtype)), reverse=True)
    return adv


def networks(config: PPOConfig, action_space) -> tuple[Any, Any]:
    """``(actor, critic)`` Flax modules for ``action_space`` (Discrete or Box)."""
    kind = config.actor
    if kind == "auto":
        kind = "categorical" if isinstance(action_space, spaces.Discrete) else "gaussian"
    if kind == "categorical":
        if not isinstance(action_space, spaces.Discrete):
            raise ValueError(f"actor='categorical' needs a Discrete action space, got {action_space!r}")
        actor = CategoricalActor(tuple(config.actor_hidden), action_space.n)
    elif kind == "gaussian":
        if not isinstance(action_space, spaces.Box):
            raise ValueError(f"actor='gaussian' needs a Box action space, got {action_space!r}")
        actor = GaussianActor(tuple(config.actor_hidden), int(np.prod(action_space.shape)))
    else:
        actor = ItemScoreActor(tuple(config.actor_hidden))
    return actor, Critic(tuple(config.critic_hidden))


def optimizer(h: PPOHyper) -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(h.max_grad_norm), optax.adam(h.learning_rate, eps=1e-5))


def _init_state(config, actor, critic, obs_shape, key, hyper, **online) -> PPOState:
    k_actor, k_critic, key = jax.random.split(key, 3)
    hyper = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), hyper)
    dummy = jnp.zeros((1,) + tuple(obs_shape))
    params = {"actor": actor.init(k_actor, dummy), "critic": critic.init(k_critic, dummy)}
    return PPOState(
        params=params,
        opt_state=optimizer(hyper).init(params),
        obs_stats=norm.init(tuple(obs_shape)),
        reward_stats=norm.init(()),
        kl_beta=jnp.asarray(hyper.kl_beta_init, jnp.float32),
        key=key,
        hyper=hyper,
        **online,
    )


def _normalize_obs(config, stats, obs):
    return norm.normalize(stats, obs) if config.normalize_observations else obs


def learn(config: PPOConfig, actor, critic, state: PPOState, batch: Batch, key) -> tuple[PPOState, dict]:
    """GAE on ``batch`` then ``update_epochs`` epochs of minibatch updates (minibatches of streams)."""
    h = state.hyper
    adv = jax.vmap(gae, in_axes=(1, 1, 1, 1, 1, None, None), out_axes=1)(
        batch.reward, batch.value, batch.next_value, batch.terminated, batch.done, h.gamma, h.gae_lambda
    )
    returns = adv + batch.value
    n = batch.reward.shape[1]
    per_mb = n // config.num_minibatches
    tx = optimizer(h)

    def epoch(carry, k):
        params, opt_state = carry
        perm = jax.random.permutation(k, n)[: per_mb * config.num_minibatches]
        split = lambda x: jnp.swapaxes(
            x[:, perm].reshape((x.shape[0], config.num_minibatches, per_mb) + x.shape[2:]), 0, 1
        )
        mbs = jax.tree.map(split, (batch.obs, batch.action, batch.log_prob, adv, returns))

        def step(carry, mb):
            params, opt_state = carry
            rows = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), mb)  # [T * per_mb, ...]
            if config.normalize_advantages:  # over the minibatch, before any chunking
                a = rows[3]
                rows = (*rows[:3], (a - a.mean()) / (a.std() + 1e-8), rows[4])
            if config.grad_chunk is None or config.grad_chunk >= rows[3].shape[0]:
                grads, info = loss.whole_grad(config, actor, critic, params, h, state.kl_beta, rows)
            else:
                grads, info = loss.chunked_grad(
                    config, actor, critic, params, h, state.kl_beta, rows, config.grad_chunk
                )
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), info

        return jax.lax.scan(step, (params, opt_state), mbs)

    (params, opt_state), info = jax.lax.scan(
        epoch, (state.params, state.opt_state), jax.random.split(key, config.update_epochs)
    )
    info = jax.tree.map(jnp.mean, info)
    beta = state.kl_beta
    if config.adaptive_kl:
        beta = jnp.where(info["approx_kl"] > 1.5 * h.kl_target, beta * 2.0, beta)
        beta = jnp.where(info["approx_kl"] < h.kl_target / 1.5, beta / 2.0, beta)
    info["kl_beta"] = beta
    return state.replace(params=params, opt_state=opt_state, kl_beta=beta), info


def make_trainer(config: PPOConfig, venv: VectorEnv) -> Trainer:
    """Online PPO on ``venv``; ``Trainer.update`` = one rollout of ``num_steps`` + one learning phase."""
    if venv.num_envs % config.num_minibatches:
        raise ValueError(
            f"PPOConfig.num_minibatches={config.num_minibatches} must divide the {venv.num_envs} streams"
        )
    actor, critic = networks(config, venv.action_space)

    def init(key, hyper=None):
        hyper = config.hyper if hyper is None else hyper
        k_env, key = jax.random.split(key)
        obs, env_state = venv.reset(k_env)
        return _init_state(
            config, actor, critic, venv.obs_shape, key, hyper,
            env_state=env_state, obs=obs, episode_return=jnp.zeros((venv.num_envs,)),
        )  # fmt: skip

    def update(state: PPOState, data=None):
        del data
        params = state.params

        def env_step(carry, _):
            env_state, obs, ep_ret, stats_sum, key = carry
            key, k_act, k_env = jax.random.split(key, 3)
            nobs = _normalize_obs(config, state.obs_stats, obs)
            dist = actor.apply(params["actor"], nobs)
            action = dist.sample(seed=k_act)
            out, env_state = venv.step(k_env, env_state, action)
            nfinal = _normalize_obs(config, state.obs_stats, out.final_obs)
            ep_ret = ep_ret + out.reward
            done = out.terminated | out.truncated
            stats_sum = stats_sum + jnp.stack([jnp.sum(jnp.where(done, ep_ret, 0.0)), jnp.sum(done)])
            ep_ret = jnp.where(done, 0.0, ep_ret)
            rec = (nobs, action, dist.log_prob(action), out.reward, out.terminated, done, nfinal, obs)
            return (env_state, out.obs, ep_ret, stats_sum, key), rec

        key, k_roll, k_learn = jax.random.split(state.key, 3)
        carry0 = (state.env_state, state.obs, state.episode_return, jnp.zeros(2), k_roll)
        (env_state, obs, ep_ret, ep_stats, _), rec = jax.lax.scan(env_step, carry0, None, config.num_steps)
        nobs, action, logp, reward, term, done, nfinal, raw_obs = rec
        flat = lambda x: x.reshape((-1,) + x.shape[2:])
        value = critic.apply(params["critic"], flat(nobs)).reshape(reward.shape)
        next_value = critic.apply(params["critic"], flat(nfinal)).reshape(reward.shape)
        reward_stats = norm.update(state.reward_stats, reward)
        scaled = norm.scale(reward_stats, reward) if config.normalize_rewards else reward
        batch = Batch(nobs, action, logp, scaled, value, next_value, term.astype(jnp.float32), done)
        new, info = learn(config, actor, critic, state.replace(reward_stats=reward_stats), batch, k_learn)
        obs_stats = (
            norm.update(state.obs_stats, raw_obs) if config.normalize_observations else state.obs_stats
        )
        info["mean_reward"] = jnp.mean(reward)
        info["episode_return"] = ep_stats[0] / jnp.maximum(ep_stats[1], 1.0)
        info["episodes"] = ep_stats[1]
        new = new.replace(key=key, env_state=env_state, obs=obs, episode_return=ep_ret, obs_stats=obs_stats)
        return new, info

    return Trainer(init, update, config.num_updates, config, venv.description)


@struct.dataclass
class LoggedTrajectories:
    """Logged trajectories of ``C`` streams over ``T`` steps (e.g. the coupon dataset per customer)."""

    obs: jax.Array  # [C, T, *obs_shape]
    action: jax.Array  # [C, T]
    action_prob: jax.Array  # [C, T] probability of the action under the behaviour policy
    reward: jax.Array  # [C, T]
    last_next_obs: jax.Array  # [C, *obs_shape] observation after the last step (bootstrap)


def make_offline_trainer(config: PPOConfig, obs_shape: Sequence[int], action_space) -> Trainer:
    """Offline PPO; ``train(key, hyper, data)`` with ``data`` a :class:`LoggedTrajectories`.

    Each update draws ``batch_streams`` trajectories without replacement; the horizon end is a
    truncation (bootstrapped from ``last_next_obs``)."""
    actor, critic = networks(config, action_space)

    def init(key, hyper=None):
        return _init_state(config, actor, critic, obs_shape, key, config.hyper if hyper is None else hyper)

    def update(state: PPOState, data: LoggedTrajectories):
        num = data.reward.shape[0]
        take = num if config.batch_streams is None else min(config.batch_streams, num)
        if take % config.num_minibatches:
            raise ValueError(
                f"PPOConfig.num_minibatches={config.num_minibatches} must divide the {take} trajectories "
                "per update"
            )
        key, k_pick, k_learn = jax.random.split(state.key, 3)
        pick = jax.random.permutation(k_pick, num)[:take]
        tm = lambda x: jnp.swapaxes(x[pick], 0, 1)  # time-major [T, take, ...]
        raw_obs = tm(data.obs)
        final_raw = jnp.concatenate([raw_obs[1:], data.last_next_obs[pick][None]], axis=0)
        nobs = _normalize_obs(config, state.obs_stats, raw_obs)
        nfinal = _normalize_obs(config, state.obs_stats, final_raw)
        flat = lambda x: x.reshape((-1,) + x.shape[2:])
        reward = tm(data.reward).astype(jnp.float32)
        value = critic.apply(state.params["critic"], flat(nobs)).reshape(reward.shape)
        next_value = critic.apply(state.params["critic"], flat(nfinal)).reshape(reward.shape)
        reward_stats = norm.update(state.reward_stats, reward)
        scaled = norm.scale(reward_stats, reward) if config.normalize_rewards else reward
        steps = reward.shape[0]
        done = jnp.broadcast_to((jnp.arange(steps) == steps - 1)[:, None], reward.shape)
        batch = Batch(
            nobs, tm(data.action), jnp.log(tm(data.action_prob)), scaled, value, next_value,
            jnp.zeros_like(reward), done,
        )  # fmt: skip
        new, info = learn(config, actor, critic, state.replace(reward_stats=reward_stats), batch, k_learn)
        obs_stats = (
            norm.update(state.obs_stats, raw_obs) if config.normalize_observations else state.obs_stats
        )
        info["mean_reward"] = jnp.mean(reward)
        return new.replace(key=key, obs_stats=obs_stats), info

    return Trainer(init, update, config.num_updates, config)


def make_policy(config: PPOConfig, action_space, greedy: bool = True):
    """``act(agent, key, obs [B, ...]) -> action [B, ...]`` for ``agent = {"params", "obs_stats"}``
    (from :func:`agent_of`); greedy takes the mode (argmax for categorical, mean for Gaussian)."""
    actor, _ = networks(config, action_space)

    def act(agent, key, obs):
        dist = actor.apply(agent["params"]["actor"], _normalize_obs(config, agent["obs_stats"], obs))
        return dist.mode() if greedy else dist.sample(seed=key)

    return act


def agent_of(state: PPOState) -> dict:
    """What a trained policy needs: parameters and the observation statistics."""
    return {"params": state.params, "obs_stats": state.obs_stats}
