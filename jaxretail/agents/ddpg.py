"""DDPG (Lillicrap et al. 2016) and DDPGfD (Vecerik et al. 2017) as pure trainers.

Actor ``mu(s) = tanh(MLP(s))`` in ``[-1, 1]^d`` and critic ``Q(s, a)``, each with a target copy
moved by Polyak averaging ``theta' <- tau theta + (1 - tau) theta'`` after every gradient step.

* Critic loss (Eq. 4 of the pricing spec): ``w [(y_1 - Q(s, a))^2 + lambda_n (y_n - Q(s, a))^2]``
  with ``y_1 = r + gamma d Q'(s', mu'(s'))`` and the n-step ``y_n = G + gamma^m d_n Q'(s_m, mu'(s_m))``
  (DDPGfD; agent items have ``m = 1``), plus ``l2`` times the squared weights. ``w`` are the
  prioritised-replay importance weights.
* Actor (Eq. 5): minimise ``-Q(s, mu(s))`` plus the L2 term (no behaviour-cloning term).
* Exploration: Gaussian ``N(0, noise_sd^2)`` or Ornstein-Uhlenbeck noise (``theta``, ``noise_sd``)
  added to ``mu(s)`` and clipped to ``[-1, 1]``, i.e. to the price bounds of the pricing env.
* Replay: :class:`jaxretail.agents.demos.MixtureReplay`; with no demonstrations and
  ``priority_exponent = 0`` it is uniform replay (plain DDPG). DDPGfD: pass demonstration items as
  ``data`` (see :func:`jaxretail.agents.demos.nstep_items`), set ``num_demos`` and, for pre-training,
  ``pretrain_updates``; demonstrations stay in their buffer with the priority bonus ``demo_bonus``.

``make_trainer(config, venv)`` returns a :class:`~jaxretail.agents.training.Trainer`;
``jax.vmap(make_train(trainer))`` runs seeds and vmappable :class:`DDPGHyper` values at once.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxretail.agents import demos
from jaxretail.agents.networks import MLP
from jaxretail.agents.training import Trainer
from jaxretail.core import spaces
from jaxretail.core.validation import check_positive_ints, check_ranges
from jaxretail.core.vector import VectorEnv

NOISES = ("gaussian", "ou")


@struct.dataclass
class DDPGHyper:
    """Vmappable hyperparameters (spec 1.8 defaults: lr 1e-4 actor, 1e-3 critic)."""

    actor_lr: float = 1e-4
    critic_lr: float = 1e-3
    gamma: float = 0.99
    tau: float = 0.005
    noise_sd: float = 0.2
    ou_theta: float = 0.15
    lambda_n: float = 1.0  # weight of the n-step critic loss (DDPGfD)
    l2: float = 1e-5
    priority_eps: float = 1e-3
    demo_bonus: float = 1.0  # eps_D added to demonstration priorities
    beta: float = 0.4  # importance-weight exponent
    max_grad_norm: float = 10.0


_HYPER_RULES = {
    "actor_lr": (0.0, None, False),
    "critic_lr": (0.0, None, False),
    "gamma": (0.0, 1.0, True),
    "tau": (0.0, 1.0, False),
    "noise_sd": (0.0, None, True),
    "ou_theta": (0.0, 1.0, True),
    "lambda_n": (0.0, None, True),
    "l2": (0.0, None, True),
    "priority_eps": (0.0, None, False),
    "demo_bonus": (0.0, None, True),
    "beta": (0.0, 1.0, True),
    "max_grad_norm": (0.0, None, False),
}


@dataclasses.dataclass(frozen=True)
class DDPGConfig:
    """Static settings and the default :class:`DDPGHyper`."""

    num_updates: int = 1000
    num_steps: int = 1  # environment steps per update (each adds num_envs items)
    gradient_steps: int = 1
    batch_size: int = 256
    buffer_size: int = 100_000
    learning_starts: int = 1_000
    pretrain_updates: int = 0  # updates on demonstrations only, before any environment step
    num_demos: int = 0
    n_step: int = 10
    priority_exponent: float = 0.0  # alpha; 0 = uniform replay
    hidden: tuple[int, ...] = (64, 64)
    noise: str = "gaussian"
    hyper: DDPGHyper = dataclasses.field(default_factory=DDPGHyper)

    def __post_init__(self):
        check_positive_ints(
            self,
            ("num_updates", "num_steps", "gradient_steps", "batch_size", "buffer_size", "n_step"),
            "DDPGConfig",
        )
        for name in ("learning_starts", "pretrain_updates", "num_demos"):
            v = getattr(self, name)
            if isinstance(v, bool) or int(v) != v or v < 0:
                raise ValueError(f"DDPGConfig.{name} must be an integer >= 0, got {name}={v!r}")
        if not 0.0 <= self.priority_exponent <= 1.0:
            raise ValueError(
                f"DDPGConfig.priority_exponent must be in [0, 1], got {self.priority_exponent!r}"
            )
        if self.noise not in NOISES:
            raise ValueError(f"DDPGConfig.noise must be one of {NOISES}, got noise={self.noise!r}")
        if not all(isinstance(w, int) and w >= 1 for w in self.hidden):
            raise ValueError(f"DDPGConfig.hidden must be positive layer widths, got hidden={self.hidden!r}")
        check_ranges(self.hyper, _HYPER_RULES, "DDPGHyper")


class Actor(nn.Module):
    hidden: tuple[int, ...]
    action_dim: int

    @nn.compact
    def __call__(self, obs):
        return jnp.tanh(MLP(self.hidden, self.action_dim, activation="relu", out_scale=0.1)(obs))


class QCritic(nn.Module):
    hidden: tuple[int, ...]

    @nn.compact
    def __call__(self, obs, action):
        return MLP(self.hidden, 1, activation="relu")(jnp.concatenate([obs, action], axis=-1))[..., 0]


@struct.dataclass
class DDPGAgent:
    actor: dict
    critic: dict
    actor_target: dict
    critic_target: dict
    actor_opt: optax.OptState
    critic_opt: optax.OptState


def _opt(lr, max_norm):
    return optax.chain(optax.clip_by_global_norm(max_norm), optax.adam(lr))


def _l2(params):
    return sum(jnp.sum(w**2) for w in jax.tree.leaves(params))


def networks(config: DDPGConfig, action_space) -> tuple[Actor, QCritic]:
    if not isinstance(action_space, spaces.Box) or len(action_space.shape) != 1:
        raise ValueError(f"DDPG needs a Box action space of shape (d,), got {action_space!r}")
    return Actor(tuple(config.hidden), action_space.shape[0]), QCritic(tuple(config.hidden))


def make_hooks(config: DDPGConfig, action_space):
    """Agent hooks for :func:`jaxretail.agents.demos.make_replay_trainer` (also used by tests)."""
    actor, critic = networks(config, action_space)
    d = action_space.shape[0]

    def init(key, h, obs_shape):
        k1, k2 = jax.random.split(key)
        obs = jnp.zeros((1,) + tuple(obs_shape))
        pa = actor.init(k1, obs)
        pc = critic.init(k2, obs, jnp.zeros((1, d)))
        return DDPGAgent(
            pa,
            pc,
            pa,
            pc,
            _opt(h.actor_lr, h.max_grad_norm).init(pa),
            _opt(h.critic_lr, h.max_grad_norm).init(pc),
        )

    def explore_init(num_envs):
        return jnp.zeros((num_envs, d), jnp.float32)

    def explore_reset(noise, done):
        return jnp.where(done[:, None], 0.0, noise)

    def act(agent, key, obs, noise, h, update):
        eps = jax.random.normal(key, noise.shape, noise.dtype)
        ou = config.noise == "ou"
        noise = noise - h.ou_theta * noise + h.noise_sd * eps if ou else h.noise_sd * eps
        action = jnp.clip(actor.apply(agent.actor, obs) + noise, -1.0, 1.0)
        return action.astype(jnp.float32), noise.astype(jnp.float32)

    def learn(agent, items: demos.Item, w, h):
        next_q = critic.apply(
            agent.critic_target, items.next_obs, actor.apply(agent.actor_target, items.next_obs)
        )
        y1 = items.reward + h.gamma * items.discount * next_q
        q_m = critic.apply(
            agent.critic_target, items.nstep_obs, actor.apply(agent.actor_target, items.nstep_obs)
        )
        yn = demos.nstep_return(items, h.gamma) + h.gamma**items.nstep_len * items.nstep_discount * q_m
        y1, yn = jax.lax.stop_gradient(y1), jax.lax.stop_gradient(yn)

        def critic_loss(pc):
            q = critic.apply(pc, items.obs, items.action)
            loss = jnp.mean(w * ((y1 - q) ** 2 + h.lambda_n * (yn - q) ** 2)) + h.l2 * _l2(pc)
            return loss, q

        (c_loss, q), g = jax.value_and_grad(critic_loss, has_aux=True)(agent.critic)
        upd, c_opt = _opt(h.critic_lr, h.max_grad_norm).update(g, agent.critic_opt, agent.critic)
        pc = optax.apply_updates(agent.critic, upd)

        def actor_loss(pa):
            return -jnp.mean(critic.apply(pc, items.obs, actor.apply(pa, items.obs))) + h.l2 * _l2(pa)

        a_loss, g = jax.value_and_grad(actor_loss)(agent.actor)
        upd, a_opt = _opt(h.actor_lr, h.max_grad_norm).update(g, agent.actor_opt, agent.actor)
        pa = optax.apply_updates(agent.actor, upd)
        polyak = lambda new, old: jax.tree.map(lambda x, y: h.tau * x + (1.0 - h.tau) * y, new, old)
        agent = DDPGAgent(
            pa, pc, polyak(pa, agent.actor_target), polyak(pc, agent.critic_target), a_opt, c_opt
        )
        return agent, y1 - q, {"critic_loss": c_loss, "actor_loss": a_loss, "q_mean": jnp.mean(q)}

    return type(
        "Hooks",
        (),
        dict(
            init=staticmethod(init),
            act=staticmethod(act),
            learn=staticmethod(learn),
            explore_init=staticmethod(explore_init),
            explore_reset=staticmethod(explore_reset),
        ),
    )


def make_trainer(config: DDPGConfig, venv: VectorEnv) -> Trainer:
    """DDPG / DDPGfD on ``venv`` (continuous actions in ``[-1, 1]^d``); see the module docstring."""
    hooks = make_hooks(config, venv.action_space)
    return demos.make_replay_trainer(venv, config, hooks, jnp.zeros(venv.action_space.shape, jnp.float32))


def make_policy(config: DDPGConfig, action_space):
    """``act(agent_params_or_state, key, obs [B, ...]) -> action [B, d]``: the deterministic actor."""
    actor, _ = networks(config, action_space)

    def act(params, key, obs):
        params = params.actor if isinstance(params, DDPGAgent) else params
        return actor.apply(params, obs)

    return act
