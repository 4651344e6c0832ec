"""Deep Q-learning from Demonstrations (DQfD, Hester et al. 2018, arXiv 1704.03732) as a pure trainer.

Loss on a prioritised batch (weights ``w``), with the double-DQN bootstrap of a target network that
is copied every ``target_update_interval`` gradient steps:

    J = w [ huber(y_1 - Q(s, a)) + lambda_n huber(y_n - Q(s, a)) ] + lambda_e J_E + l2 ||theta||^2,
    y_1 = r + gamma d Q'(s', argmax Q(s', .)),
    y_n = sum_{k<m} gamma^k r_{t+k} + gamma^m d_n Q'(s_m, argmax Q(s_m, .)),
    J_E = max_a [Q(s, a) + l(a_E, a)] - Q(s, a_E)   (demonstration items only; l = margin for a != a_E).

Defaults follow the paper: ``n = 10``, ``lambda_n = lambda_e = 1``, ``l2 = 1e-5``, margin 0.8,
demonstration priority bonus ``eps_d = 1``. Pre-training (``pretrain_updates``) uses demonstrations
only; afterwards the agent acts epsilon-greedily and learns from the prioritised mixture of its own
transitions and the demonstrations, which are never overwritten (:mod:`jaxretail.agents.demos`).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxretail.agents import demos
from jaxretail.agents.networks import QNetwork
from jaxretail.agents.training import Trainer
from jaxretail.core import spaces
from jaxretail.core.validation import check_positive_ints, check_ranges
from jaxretail.core.vector import VectorEnv


@struct.dataclass
class DQfDHyper:
    """Vmappable hyperparameters."""

    learning_rate: float = 1e-3
    gamma: float = 0.99
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    exploration_fraction: float = 0.5  # share of the online updates over which epsilon decays
    lambda_n: float = 1.0
    lambda_e: float = 1.0
    margin: float = 0.8
    l2: float = 1e-5
    priority_eps: float = 1e-3
    demo_bonus: float = 1.0
    beta: float = 0.4
    max_grad_norm: float = 10.0


_HYPER_RULES = {
    "learning_rate": (0.0, None, False),
    "gamma": (0.0, 1.0, True),
    "epsilon_start": (0.0, 1.0, True),
    "epsilon_end": (0.0, 1.0, True),
    "exploration_fraction": (0.0, 1.0, False),
    "lambda_n": (0.0, None, True),
    "lambda_e": (0.0, None, True),
    "margin": (0.0, None, True),
    "l2": (0.0, None, True),
    "priority_eps": (0.0, None, False),
    "demo_bonus": (0.0, None, True),
    "beta": (0.0, 1.0, True),
    "max_grad_norm": (0.0, None, False),
}


@dataclasses.dataclass(frozen=True)
class DQfDConfig:
    """Static settings and the default :class:`DQfDHyper`."""

    num_updates: int = 1000
    num_steps: int = 1
    gradient_steps: int = 1
    batch_size: int = 256
    buffer_size: int = 100_000
    learning_starts: int = 1_000
    pretrain_updates: int = 0
    num_demos: int = 0
    n_step: int = 10
    priority_exponent: float = 0.4
    target_update_interval: int = 100  # gradient steps between hard copies
    hidden: tuple[int, ...] = (64, 64)
    hyper: DQfDHyper = dataclasses.field(default_factory=DQfDHyper)

    def __post_init__(self):
        check_positive_ints(
            self,
            (
                "num_updates",
                "num_steps",
                "gradient_steps",
                "batch_size",
                "buffer_size",
                "n_step",
                "target_update_interval",
            ),
            "DQfDConfig",
        )
        for name in ("learning_starts", "pretrain_updates", "num_demos"):
            v = getattr(self, name)
            if isinstance(v, bool) or int(v) != v or v < 0:
                raise ValueError(f"DQfDConfig.{name} must be an integer >= 0, got {name}={v!r}")
        if not 0.0 <= self.priority_exponent <= 1.0:
            raise ValueError(
                f"DQfDConfig.priority_exponent must be in [0, 1], got {self.priority_exponent!r}"
            )
        if not all(isinstance(w, int) and w >= 1 for w in self.hidden):
            raise ValueError(f"DQfDConfig.hidden must be positive layer widths, got hidden={self.hidden!r}")
        check_ranges(self.hyper, _HYPER_RULES, "DQfDHyper")


@struct.dataclass
class DQfDAgent:
    params: dict
    target_params: dict
    opt_state: optax.OptState
    steps: jax.Array  # [] int32 gradient steps


def network(config: DQfDConfig, action_space) -> QNetwork:
    if not isinstance(action_space, spaces.Discrete):
        raise ValueError(f"DQfD needs a Discrete action space, got {action_space!r}")
    return QNetwork(tuple(config.hidden), action_space.n)


def _opt(h):
    return optax.chain(optax.clip_by_global_norm(h.max_grad_norm), optax.adam(h.learning_rate))


def dqfd_loss(net, params, target_params, items: demos.Item, w, h):
    """``(loss, (td_1 [B], metrics))`` of the module docstring for one batch."""
    q = net.apply(params, items.obs)
    a = items.action.astype(jnp.int32)
    q_a = jnp.take_along_axis(q, a[:, None], axis=1)[:, 0]

    def boot(obs):
        best = jnp.argmax(net.apply(params, obs), axis=1)
        return jnp.take_along_axis(net.apply(target_params, obs), best[:, None], axis=1)[:, 0]

    y1 = items.reward + h.gamma * items.discount * boot(items.next_obs)
    yn = demos.nstep_return(items, h.gamma) + h.gamma**items.nstep_len * items.nstep_discount * boot(
        items.nstep_obs
    )
    y1, yn = jax.lax.stop_gradient(y1), jax.lax.stop_gradient(yn)
    td1 = y1 - q_a
    margin = demos.large_margin_loss(q, a, h.margin) * items.is_demo
    l2 = sum(jnp.sum(x**2) for x in jax.tree.leaves(params))
    j_dq = jnp.mean(w * optax.huber_loss(td1))
    j_n = jnp.mean(w * optax.huber_loss(yn - q_a))
    j_e = jnp.sum(margin) / jnp.maximum(jnp.sum(items.is_demo), 1.0)
    loss = j_dq + h.lambda_n * j_n + h.lambda_e * j_e + h.l2 * l2
    return loss, (
        td1,
        {"loss": loss, "td_loss": j_dq, "nstep_loss": j_n, "margin_loss": j_e, "q_mean": jnp.mean(q_a)},
    )


def make_hooks(config: DQfDConfig, action_space):
    net = network(config, action_space)
    k = action_space.n

    def init(key, h, obs_shape):
        p = net.init(key, jnp.zeros((1,) + tuple(obs_shape)))
        return DQfDAgent(p, p, _opt(h).init(p), jnp.asarray(0, jnp.int32))

    def act(agent, key, obs, explore, h, update):
        online = jnp.maximum(update - config.pretrain_updates, 0)
        span = h.exploration_fraction * max(config.num_updates - config.pretrain_updates, 1)
        eps = h.epsilon_start + jnp.clip(online / span, 0.0, 1.0) * (h.epsilon_end - h.epsilon_start)
        greedy = jnp.argmax(net.apply(agent.params, obs), axis=1)
        k1, k2 = jax.random.split(key)
        rand = jax.random.randint(k2, greedy.shape, 0, k)
        return jnp.where(jax.random.uniform(k1, greedy.shape) < eps, rand, greedy).astype(jnp.int32), explore

    def learn(agent, items, w, h):
        (_, (td, info)), g = jax.value_and_grad(
            lambda p: dqfd_loss(net, p, agent.target_params, items, w, h), has_aux=True
        )(agent.params)
        upd, opt_state = _opt(h).update(g, agent.opt_state, agent.params)
        params = optax.apply_updates(agent.params, upd)
        steps = agent.steps + 1
        refresh = steps % config.target_update_interval == 0
        target = jax.tree.map(lambda o, t: jnp.where(refresh, o, t), params, agent.target_params)
        return DQfDAgent(params, target, opt_state, steps), td, info

    return type(
        "Hooks",
        (),
        dict(
            init=staticmethod(init),
            act=staticmethod(act),
            learn=staticmethod(learn),
            explore_init=staticmethod(lambda n: jnp.zeros(())),
            explore_reset=staticmethod(lambda e, d: e),
        ),
    )


def make_trainer(config: DQfDConfig, venv: VectorEnv) -> Trainer:
    """DQfD on ``venv``; ``train(key, hyper, demos)`` with ``demos`` from :func:`demos.nstep_items`."""
    return demos.make_replay_trainer(
        venv, config, make_hooks(config, venv.action_space), jnp.asarray(0, jnp.int32)
    )


def make_policy(config: DQfDConfig, action_space):
    """``act(agent_or_params, key, obs [B, ...]) -> action [B]`` (greedy)."""
    net = network(config, action_space)

    def act(params, key, obs):
        params = params.params if isinstance(params, DQfDAgent) else params
        return jnp.argmax(net.apply(params, obs), axis=1)

    return act
