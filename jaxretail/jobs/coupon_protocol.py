"""The coupon benchmark's agents on its train-then-resume protocol (Algorithm 2 of Xia et al., arXiv
2405.10469): configuration, the registry of offline agents and the wiring of data, agents and protocol.

The agent-agnostic protocol is :mod:`jaxretail.envs.coupon.protocol`; this module trains the agents the
paper compares, each registered in :data:`AGENTS` as a factory ``(ProtocolConfig, num_arms) ->
OfflineAgent`` (adding an agent to Table 1 is one ``@register("name")`` factory):

* LinUCB / LinTS fold ``linear_epochs`` batches of customers into their statistics with the forgetting
  factor; they act greedily (UCB) and by Thompson sampling from the posterior frozen once per run
  (:func:`~jaxretail.agents.bandits.linear.freeze`: matrix products only, so their evaluation runs
  on every host device);
* the Neural Boltzmann bandit runs ``nb_epochs`` epochs of minibatch SGD, each on a fresh draw of
  ``nb_customers`` customers, and stays stochastic (Boltzmann over its reward estimates);
* PPO (offline, importance ratios against the logged uniform action probabilities) and DQN run
  ``ppo_updates`` / ``dqn_updates`` updates on draws of ``rl_customers`` customers' trajectories
  (transitions for DQN), with the paper's tuned hyperparameters, and act greedily.

``legacy_evaluation=True`` resumes from :func:`~jaxretail.envs.coupon.protocol.fresh_wrapper_state`
and the logged pre-action context of the last training week (the original's quirks, coupon.md §3.5).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from jaxretail.agents import dqn, ppo
from jaxretail.agents.bandits import linear, neural
from jaxretail.core import spaces
from jaxretail.core.offline import OfflineAgent
from jaxretail.core.validation import (
    SEED_MAX,
    check_bool,
    check_int,
    check_number,
    check_probability,
    check_sizes,
)
from jaxretail.data import collection as col
from jaxretail.data import dataset as ds
from jaxretail.data.dataset import last_logged_context, load_training_arrays
from jaxretail.envs.coupon.env import CONTEXT_FEATURES, context
from jaxretail.envs.coupon.policies import level_policy
from jaxretail.envs.coupon.protocol import (
    agent_policy,
    fresh_wrapper_state,
    paired_t_greater,
    run_protocol,
)
from jaxretail.envs.coupon.protocol import evaluator as policy_evaluator
from jaxretail.jobs.coupon_training import (
    customer_rows,
    train_dqn,
    train_dqn_runs,
    train_linear,
    train_neural,
    train_neural_runs,
    train_ppo,
    train_ppo_runs,
    with_bias,
)

__all__ = [  # the protocol's names, with what it re-exports from the data layer and the coupon system
    "AGENTS", "CONTEXT_FEATURES", "ProtocolConfig", "agent", "context", "customer_rows", "ds",
    "evaluate_all", "evaluator", "fresh_wrapper_state", "last_logged_context", "load_training_arrays",
    "make_agent_policy", "paired_t_greater", "register", "train_dqn", "train_dqn_runs", "train_linear",
    "train_neural", "train_neural_runs", "train_ppo", "train_ppo_runs", "with_bias",
]  # fmt: skip


@dataclass(frozen=True)
class ProtocolConfig:
    """Training and evaluation settings; hyperparameters are the paper's tuned optima (App. D)."""

    train_customers: int | None = None  # None: every customer of the dataset
    eval_simulations: int = 5
    eval_weeks: int = 20
    training_runs: int = 10
    linear_epochs: int = 2
    linear_batch_customers: int = 50_000
    linucb_alpha: float = 0.8483
    linucb_forgetting: float = 0.1088
    lints_alpha: float = 0.7387
    lints_forgetting: float = 0.8119
    nb_learning_rate: float = 0.025
    nb_temperature: float = 0.1665
    nb_hidden: tuple[int, ...] = (8, 2)
    nb_epochs: int = 100
    nb_customers: int = 2000
    nb_batch_size: int = 1024
    rl_customers: int = 2000  # customers' trajectories per PPO / DQN update (the paper's 20 x 100)
    ppo_updates: int = 100
    ppo_learning_rate: float = 0.0064
    ppo_clip: float = 0.7849
    ppo_gamma: float = 0.8199
    ppo_entropy: float = 0.1013
    ppo_epochs: int = 12
    ppo_hidden: tuple[int, ...] = (32, 8)
    ppo_grad_chunk: int | None = 2048  # rows per gradient chunk (same gradient; see PPOConfig.grad_chunk)
    dqn_updates: int = 200
    dqn_learning_rate: float = 0.00464
    dqn_gamma: float = 0.8792
    dqn_hidden: tuple[int, ...] = (16,)
    dqn_lstm: int = 4
    rl_discount_as_coded: bool = False  # the original trains PPO / DQN on immediate rewards (gamma 0)
    legacy_evaluation: bool = False  # reproduce the original's fresh-wrapper evaluation quirks (i)-(iv)
    seed: int = 0

    def __post_init__(self):
        for name in (
            "eval_simulations",
            "eval_weeks",
            "training_runs",
            "linear_epochs",
            "linear_batch_customers",
            "nb_epochs",
            "nb_customers",
            "nb_batch_size",
            "rl_customers",
            "ppo_updates",
            "ppo_epochs",
            "dqn_updates",
        ):
            check_int(name, getattr(self, name), 1, owner="ProtocolConfig")
        for name in ("train_customers", "ppo_grad_chunk"):
            check_int(name, getattr(self, name), 1, owner="ProtocolConfig", allow_none=True)
        check_int("seed", self.seed, 0, SEED_MAX, owner="ProtocolConfig")
        for name in (
            "nb_learning_rate", "nb_temperature", "linucb_alpha", "lints_alpha", "ppo_learning_rate",
            "ppo_clip", "dqn_learning_rate",
        ):  # fmt: skip
            check_number(name, getattr(self, name), low=0.0, low_open=True, owner="ProtocolConfig")
        for name in ("linucb_forgetting", "lints_forgetting"):
            check_number(name, getattr(self, name), low=0.0, high=1.0, low_open=True, owner="ProtocolConfig")
        for name in ("ppo_gamma", "dqn_gamma"):
            check_probability(name, getattr(self, name), owner="ProtocolConfig")
        check_number("ppo_entropy", self.ppo_entropy, low=0.0, owner="ProtocolConfig")
        for name in ("nb_hidden", "ppo_hidden", "dqn_hidden"):
            check_sizes(name, getattr(self, name), owner="ProtocolConfig")
        check_int("dqn_lstm", self.dqn_lstm, 0, owner="ProtocolConfig")
        for name in ("rl_discount_as_coded", "legacy_evaluation"):
            check_bool(name, getattr(self, name), owner="ProtocolConfig")

    def ppo_config(self) -> ppo.PPOConfig:
        """The coupon benchmark's PPOAgent: actor and value nets (32, 8), whole-batch epochs, clipping
        plus the adaptive KL penalty (target 0.01, beta 1), GAE lambda 0.95, normalised observations
        and rewards."""
        return ppo.PPOConfig(
            num_updates=self.ppo_updates, update_epochs=self.ppo_epochs, num_minibatches=1,
            actor_hidden=tuple(self.ppo_hidden), critic_hidden=tuple(self.ppo_hidden), adaptive_kl=True,
            batch_streams=self.rl_customers, grad_chunk=self.ppo_grad_chunk,
            hyper=ppo.PPOHyper(
                learning_rate=self.ppo_learning_rate, clip_eps=self.ppo_clip,
                gamma=0.0 if self.rl_discount_as_coded else self.ppo_gamma, ent_coef=self.ppo_entropy,
                kl_target=0.01, kl_beta_init=1.0,
            ),
        )  # fmt: skip

    def dqn_config(self, rows_per_update: int) -> dqn.DQNConfig:
        """The coupon benchmark's DqnAgent: Dense(16, ReLU) -> LSTM(4) -> Q-values, Huber loss, target
        network refreshed after every gradient step, one step per batch of ``rl_customers`` customers."""
        return dqn.DQNConfig(
            num_updates=self.dqn_updates, batch_size=rows_per_update, hidden=tuple(self.dqn_hidden),
            recurrent_units=self.dqn_lstm, target_update_interval=1, double_dqn=False,
            hyper=dqn.DQNHyper(
                learning_rate=self.dqn_learning_rate,
                gamma=0.0 if self.rl_discount_as_coded else self.dqn_gamma,
            ),
        )  # fmt: skip


# -- the registry of offline agents (Table 1): name -> factory (ProtocolConfig, num_arms) -> OfflineAgent
AGENTS: dict[str, Callable[[ProtocolConfig, int], OfflineAgent]] = {}


def register(name: str, replace: bool = False):
    """Decorator adding a factory ``(cfg: ProtocolConfig, num_arms: int) -> OfflineAgent`` to
    :data:`AGENTS` under ``name`` (the Table-1 order is the registration order; it seeds the runs).

    Raises:
      ValueError: if ``name`` is already registered and ``replace`` is not set (a built-in agent is
        never replaced by accident).
    """
    if name in AGENTS and not replace:
        raise ValueError(f"agent {name!r} is already registered; pass replace=True to replace it")

    def add(factory):
        AGENTS[name] = factory
        return factory

    return add


@register("linucb")
def _linucb(cfg: ProtocolConfig, num_arms: int) -> OfflineAgent:
    return OfflineAgent(
        fit=lambda data, key, rng: linear.freeze(
            train_linear(
                data, num_arms, cfg.linucb_forgetting, cfg.linear_epochs, cfg.linear_batch_customers, rng
            )
        ),
        act=lambda a, k, o: linear.act_ucb(a, with_bias(o), cfg.linucb_alpha),
    )


@register("lints")
def _lints(cfg: ProtocolConfig, num_arms: int) -> OfflineAgent:
    return OfflineAgent(
        fit=lambda data, key, rng: linear.freeze(
            train_linear(
                data, num_arms, cfg.lints_forgetting, cfg.linear_epochs, cfg.linear_batch_customers, rng
            )
        ),
        act=lambda a, k, o: linear.act_thompson(k, a, with_bias(o), cfg.lints_alpha),
    )


@register("neural_boltzmann")
def _neural_boltzmann(cfg: ProtocolConfig, num_arms: int) -> OfflineAgent:
    net = neural.RewardNetwork(tuple(cfg.nb_hidden), num_arms)
    return OfflineAgent(  # the agent is the network parameters: one compiled evaluator for every run
        fit=lambda data, key, rng: train_neural(data, num_arms, cfg, key, rng).params,
        fit_runs=lambda data, keys, rngs: train_neural_runs(data, num_arms, cfg, keys, rngs),
        act=lambda a, k, o: jax.random.categorical(k, net.apply(a, o) / cfg.nb_temperature).astype(jnp.int32),
    )


@register("ppo")
def _ppo(cfg: ProtocolConfig, num_arms: int) -> OfflineAgent:
    act = ppo.make_policy(cfg.ppo_config(), spaces.Discrete(num_arms))
    return OfflineAgent(
        fit=lambda data, key, rng: train_ppo(data, num_arms, cfg, key),
        fit_runs=lambda data, keys, rngs: train_ppo_runs(data, num_arms, cfg, keys),
        act=lambda a, k, o: act(a, k, o).astype(jnp.int32),
    )


@register("dqn")
def _dqn(cfg: ProtocolConfig, num_arms: int) -> OfflineAgent:
    act = dqn.make_policy(cfg.dqn_config(1), spaces.Discrete(num_arms))
    return OfflineAgent(
        fit=lambda data, key, rng: train_dqn(data, num_arms, cfg, key),
        fit_runs=lambda data, keys, rngs: train_dqn_runs(data, num_arms, cfg, keys),
        act=lambda a, k, o: act(a, k, o).astype(jnp.int32),
    )


@functools.lru_cache(maxsize=32)
def agent(kind: str, cfg: ProtocolConfig, num_arms: int) -> OfflineAgent:
    """The registered agent ``kind`` (one object per configuration, so its evaluator compiles once).

    Raises:
      ValueError: ``kind`` is not registered (the message lists :data:`AGENTS`).
    """
    if kind not in AGENTS:
        raise ValueError(f"unknown agent {kind!r}; choose one of {tuple(AGENTS)}")
    return AGENTS[kind](cfg, num_arms)


def make_agent_policy(kind: str, cfg: ProtocolConfig, num_arms: int):
    """``policy(key, obs, state, params, agent)`` of a registered agent's trained parameters ``agent``;
    ``kind="baseline"``: a static level for everyone, or random when the level ``agent`` is -1."""
    if kind == "baseline":
        return level_policy
    return agent_policy(agent(kind, cfg, num_arms).act)


def evaluator(kind: str, cfg: ProtocolConfig, num_arms: int):
    """Jitted ``(params, state, obs, key, agent) -> per-customer metrics`` over ``cfg.eval_weeks`` weeks
    (:func:`jaxretail.envs.coupon.protocol.evaluator` of :func:`make_agent_policy`)."""
    return policy_evaluator(make_agent_policy(kind, cfg, num_arms), cfg.eval_weeks)


def evaluate_all(root, collection: col.CollectionConfig, cfg: ProtocolConfig, progress=None) -> dict:
    """Train and evaluate every agent of :data:`AGENTS` on the dataset at ``root``; returns rows (per
    policy and segment) and coupon allocations (:func:`jaxretail.envs.coupon.protocol.run_protocol`).

    Raises:
      ValueError: ``eval_simulations`` or ``rl_customers`` exceed what the dataset holds.
    """
    if cfg.eval_simulations > collection.num_simulations:
        raise ValueError(
            f"eval_simulations={cfg.eval_simulations} exceeds the {collection.num_simulations} collected"
        )
    progress = progress or (lambda msg: None)
    progress("loading the logged training data and the saved simulations")
    data = load_training_arrays(root, cfg.train_customers, cfg.seed)
    if cfg.rl_customers > data["num_customers"]:
        raise ValueError(
            f"rl_customers must be <= the {data['num_customers']} training customers, "
            f"got rl_customers={cfg.rl_customers}"
        )
    restored = [col.load_state(root, collection, s) for s in range(cfg.eval_simulations)]
    if cfg.legacy_evaluation:
        starts = [
            (
                p,
                fresh_wrapper_state(st, p),
                jnp.asarray(last_logged_context(root, i, collection.num_weeks - 1, p.num_customers)),
            )
            for i, (p, st) in enumerate(restored)
        ]
    else:
        starts = [(p, st, context(st, p)) for p, st in restored]
    num_arms = len(restored[0][0].config.coupon_levels)
    agents = {kind: agent(kind, cfg, num_arms) for kind in AGENTS}
    return run_protocol(
        starts,
        data,
        agents,
        eval_weeks=cfg.eval_weeks,
        training_runs=cfg.training_runs,
        seed=cfg.seed,
        progress=progress,
    )
