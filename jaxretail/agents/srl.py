"""Structured RL (SRL) and the paper's PPO baseline for top-K combinatorial actions (Hoppe et al.,
arXiv 2505.19053, ``scripts/DAP/03_SRL.jl`` and ``02_PPO.jl`` of ``tumBAIS/Structured-RL``).

Both train the affine item scorer of :mod:`jaxretail.agents.coaml` followed by top-K, one episode per
update (a :class:`~jaxretail.agents.training.Trainer`; ``vmap`` its ``init`` / ``update`` over the
initialisation seeds). Each update: evaluate the current actor on 30 train and 30 validation seeds and
keep it if the mean is the best so far; collect one exploration episode on training seed
``e % 100 + 1``; add it to the replay buffer; run ``iterations`` actor and ``critic_rew`` steps on
batches drawn uniformly with replacement; (SRL) fit ``critic_fut`` on the latest episode.

* **SRL** actor step, per sample: candidates ``topK(theta)`` and ``topK(eta_m)``,
  ``eta_m ~ N(theta, sigma_B I)``; target ``softmax(Q / tau) . candidates`` with
  ``Q = critic_rew + critic_fut``; Fenchel-Young step towards it, loss summed over the batch.
* **PPO** (the paper's baseline, not library PPO): clipped likelihood ratio of the perturbed score
  vector under ``N(theta, sigma_bar I)``; advantage ``G_t - critic_rew(x, topK(theta_old))``.

``paper_mode=True`` (default) keeps the original's conventions: sigma values are variances,
``ClipValue(1e-3)`` before Adam, returns that drop the final reward, perturbation noise shared by the
samples of an iteration. ``paper_mode=False`` reads them as standard deviations, clips the global
gradient norm, keeps every reward and draws independent noise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxretail.agents import coaml
from jaxretail.agents.structured import check_perturbation, fenchel_young_loss, top_k_mask
from jaxretail.agents.training import Trainer


@dataclasses.dataclass(frozen=True)
class LearnerConfig:
    """Settings shared by SRL and the paper's PPO (defaults: Hoppe et al.)."""

    episodes: int = 200
    iterations: int = 100  # actor / critic_rew steps per episode
    batch_size: int = 4
    buffer_capacity: int = 8000
    sigma_f: tuple[float, float] = (2.0, 1.0)  # exploration noise, linear over the episodes
    lr: tuple[float, float] = (1e-3, 5e-4)  # actor and critics, linear over the episodes
    gamma: float = 0.99
    paper_mode: bool = True
    max_grad_norm: float = 1.0  # clean mode only
    num_training_seeds: int = 100  # episode e trains on seed e % num_training_seeds + 1
    eval_episodes: int = 30
    eval_train_first: int = 1
    eval_val_first: int = 1001
    hidden: tuple[int, ...] = (5,)
    activation: str = "identity"

    def __post_init__(self):
        coaml.check_config(
            self,
            (
                "episodes",
                "iterations",
                "batch_size",
                "buffer_capacity",
                "num_training_seeds",
                "eval_episodes",
            ),
            ("gamma", "max_grad_norm"),
            ("sigma_f", "lr"),
        )
        if self.activation not in coaml.ACTIVATIONS:
            raise ValueError(f"activation must be one of {tuple(coaml.ACTIVATIONS)}, got {self.activation!r}")


@dataclasses.dataclass(frozen=True)
class SRLConfig(LearnerConfig):
    num_candidates: int = 40  # perturbed candidates besides topK(theta)
    sigma_b: tuple[float, float] = (2.0, 1.0)  # candidate perturbation, linear over the episodes
    temperature: tuple[float, float] = (1.0, 1.0)
    fy_epsilon: float = 1.0  # Fenchel-Young perturbation (a standard deviation in both modes)
    fy_samples: int = 20
    critic_passes: int = 50  # critic_fut passes over the latest episode (minibatches of batch_size)
    dynamic: bool = True  # Q = critic_rew + critic_fut (False: critic_rew only)

    def __post_init__(self):
        super().__post_init__()
        coaml.check_config(
            self,
            ("num_candidates", "fy_samples", "critic_passes"),
            ("fy_epsilon",),
            ("sigma_b", "temperature"),
        )


@dataclasses.dataclass(frozen=True)
class PaperPPOConfig(LearnerConfig):
    buffer_capacity: int = 1600
    sigma_f: tuple[float, float] = (0.1, 0.05)
    lr: tuple[float, float] = (5e-3, 5e-3)
    clip: float = 0.2
    sigma_ratio: float | None = None  # density of the ratio; None: mean of sigma_f (0.075)

    def __post_init__(self):
        super().__post_init__()
        coaml.check_config(self, (), ("clip",))
        if self.sigma_ratio is not None and not self.sigma_ratio > 0:
            raise ValueError(f"PaperPPOConfig.sigma_ratio must be > 0, got {self.sigma_ratio!r}")


def collect_episode(spec: coaml.EnvSpec, cfg: LearnerConfig, actor, seed, key, std) -> dict:
    """One exploration episode ``topK(theta + std Z)`` on ``key(seed)``; leaves ``[T, ...]``."""
    obs, state = spec.env.reset(jax.random.key(seed.astype(jnp.uint32)), spec.params)

    def body(carry, t):
        obs, state = carry
        theta = coaml.actor_scores(actor, obs, cfg.activation)
        eta = theta + std * jax.random.normal(jax.random.fold_in(key, t), theta.shape, theta.dtype)
        action = top_k_mask(eta, spec.k)
        nobs, state, reward, *_ = spec.env.step_env(jax.random.key(0), state, action > 0.5, spec.params)
        return (nobs, state), {"obs": obs, "theta": theta, "eta": eta, "action": action, "reward": reward}

    _, tr = jax.lax.scan(body, (obs, state), jnp.arange(spec.horizon))
    g = coaml.discounted_returns(tr["reward"], cfg.gamma, drop_last=cfg.paper_mode)
    return {**tr, "ret": g}


def _common_init(cfg: LearnerConfig, spec, key, extra_opt=()):
    f, n = coaml.obs_shape(spec)
    k_actor, k_critic, k_run = jax.random.split(key, 3)
    actor = coaml.init_actor(k_actor, f, cfg.hidden)
    critics = coaml.init_critics(k_critic, n, spec.k, f)
    tx = coaml.gradient_transform(cfg.paper_mode, cfg.max_grad_norm)
    example = {
        "obs": jnp.zeros((f, n)),
        "theta": jnp.zeros((n,)),
        "eta": jnp.zeros((n,)),
        "action": jnp.zeros((n,)),
        "reward": jnp.zeros(()),
        "ret": jnp.zeros(()),
    }
    return {
        "actor": actor,
        "critics": critics,
        "opt": {"actor": tx.init(actor), "rew": tx.init(critics["rew"]), "fut": tx.init(critics["fut"])},
        "replay": coaml.replay_init(example, cfg.buffer_capacity),
        "selection": coaml.Selection(actor, jnp.asarray(-jnp.inf), jnp.asarray(-1, jnp.int32)),
        "episode": jnp.zeros((), jnp.int32),
        "key": k_run,
    }


def _evaluate_and_select(cfg, spec, st):
    train, val = coaml.evaluate_train_val(
        spec, st["actor"], cfg.eval_episodes, cfg.eval_train_first, cfg.eval_val_first, cfg.activation
    )
    sel = coaml.select(st["selection"], st["actor"], 0.5 * (train + val), st["episode"])
    return sel, train, val


def _critic_rew_step(spec, tx, critics, opt, batch, lr):
    def loss(p):
        q = jax.vmap(coaml.critic_reward, in_axes=(None, 0, 0, None))(
            p, batch["obs"], batch["action"], spec.k
        )
        return jnp.mean(coaml.huber(q - batch["reward"]))

    value, grads = jax.value_and_grad(loss)(critics["rew"])
    rew, opt = coaml.apply_updates(tx, grads, opt, critics["rew"], lr)
    return rew, opt, value


def _critic_fut_fit(cfg, spec, tx, critics, opt, episode, lr, key):
    """``critic_passes`` shuffled passes over the latest episode, target ``G_t - r_t``."""
    t = spec.horizon
    nb = t // cfg.batch_size  # full minibatches only (the original skips a short last one)
    target = episode["ret"] - episode["reward"]

    def loss(p, idx):
        q = jax.vmap(coaml.critic_future, in_axes=(None, 0, 0))(
            p, episode["obs"][idx], episode["action"][idx]
        )
        return jnp.mean(coaml.huber(q - target[idx]))

    def one_pass(carry, k):
        perm = jax.random.permutation(k, t)[: nb * cfg.batch_size].reshape(nb, cfg.batch_size)

        def step(carry, idx):
            p, o = carry
            grads = jax.grad(loss)(p, idx)
            return coaml.apply_updates(tx, grads, o, p, lr), None

        return jax.lax.scan(step, carry, perm)[0], None

    (fut, opt), _ = jax.lax.scan(one_pass, (critics["fut"], opt), jax.random.split(key, cfg.critic_passes))
    return fut, opt


def _schedules(cfg, e):
    sched = lambda pair: coaml.linear_schedule(pair[0], pair[1], e, cfg.episodes)  # noqa: E731
    return sched


def _collect(cfg, spec, st, std):
    e = st["episode"]
    key, k_collect, k_iter, k_fut = jax.random.split(st["key"], 4)
    seed = (e + 1) % cfg.num_training_seeds + 1
    episode = collect_episode(spec, cfg, st["actor"], seed, k_collect, std)
    return key, k_iter, k_fut, episode


def make_srl(cfg: SRLConfig, spec: coaml.EnvSpec, critic_reward: Callable = coaml.critic_reward) -> Trainer:
    """SRL trainer: ``init(key, hyper=None)`` and ``update(state, data=None)`` = one episode.

    ``critic_reward(params, x, action, k) -> []`` scores the candidates' immediate reward (default: the
    learned linear critic of the paper, spec 3.4); another function, e.g. an exact revenue oracle,
    replaces it in the actor's target for ablations (the learned critic still trains, unused).

    Metrics per episode: ``train_revenue`` / ``val_revenue`` (evaluation before the episode),
    ``episode_return`` (the exploration episode), ``actor_loss``, ``lr``, ``selected``.

    Raises:
      ValueError: for ``K > N``, ``fy_epsilon <= 0`` or ``fy_samples < 1`` (before any compute).
    """
    f, n = coaml.obs_shape(spec)
    check_perturbation(n, spec.k, cfg.fy_epsilon, cfg.fy_samples)
    tx = coaml.gradient_transform(cfg.paper_mode, cfg.max_grad_norm)
    m = cfg.num_candidates

    def init(key, hyper=None):
        return _common_init(cfg, spec, key)

    def target_action(critics, actor, x, z, temp, std_b):
        theta = coaml.actor_scores(actor, x, cfg.activation)
        cands = jnp.concatenate([theta[None], theta + std_b * z])  # [m + 1, N]
        acts = jax.vmap(top_k_mask, in_axes=(0, None))(cands, spec.k)
        q = jax.vmap(critic_reward, in_axes=(None, None, 0, None))(critics["rew"], x, acts, spec.k)
        if cfg.dynamic:
            q = q + jax.vmap(coaml.critic_future, in_axes=(None, None, 0))(critics["fut"], x, acts)
        probs = jax.nn.softmax(q / temp)
        target = probs @ acts
        return jnp.where(
            jnp.any(jnp.isnan(target)), acts[jnp.argmax(jnp.nan_to_num(q, nan=-jnp.inf))], target
        )

    def update(st, data=None):
        e = st["episode"]
        sched = _schedules(cfg, e)
        lr, temp = sched(cfg.lr), sched(cfg.temperature)
        std_f = coaml.noise_std(sched(cfg.sigma_f), cfg.paper_mode)
        std_b = coaml.noise_std(sched(cfg.sigma_b), cfg.paper_mode)
        sel, train, val = _evaluate_and_select(cfg, spec, st)
        key, k_iter, k_fut, episode = _collect(cfg, spec, st, std_f)
        replay = coaml.replay_add(st["replay"], episode)

        def iteration(carry, k):
            actor, critics, opt = carry
            k_batch, k_z, k_fy = jax.random.split(k, 3)
            batch = coaml.replay_sample(replay, k_batch, (cfg.batch_size,))
            zshape = (m, n) if cfg.paper_mode else (cfg.batch_size, m, n)
            z = jax.random.normal(k_z, zshape)
            z_axis = None if cfg.paper_mode else 0  # the original shares MersenneTwister(e * i) in a batch
            targets = jax.vmap(target_action, in_axes=(None, None, 0, z_axis, None, None))(
                critics, actor, batch["obs"], z, temp, std_b
            )
            targets = jax.lax.stop_gradient(targets)
            fy_keys = jax.random.split(k_fy, cfg.batch_size)

            def actor_loss(p):
                theta = jax.vmap(coaml.actor_scores, in_axes=(None, 0, None))(p, batch["obs"], cfg.activation)
                fy = jax.vmap(
                    lambda th, y, kk: fenchel_young_loss(
                        th, y, kk, k=spec.k, epsilon=cfg.fy_epsilon, num_samples=cfg.fy_samples
                    )
                )
                return jnp.sum(fy(theta, targets, fy_keys))

            a_loss, grads = jax.value_and_grad(actor_loss)(actor)
            actor, o_actor = coaml.apply_updates(tx, grads, opt["actor"], actor, lr)
            rew, o_rew, c_loss = _critic_rew_step(spec, tx, critics, opt["rew"], batch, lr)
            return (actor, {**critics, "rew": rew}, {**opt, "actor": o_actor, "rew": o_rew}), (a_loss, c_loss)

        carry = (st["actor"], st["critics"], st["opt"])
        (actor, critics, opt), (a_loss, c_loss) = jax.lax.scan(
            iteration, carry, jax.random.split(k_iter, cfg.iterations)
        )
        if cfg.dynamic:
            fut, o_fut = _critic_fut_fit(cfg, spec, tx, critics, opt["fut"], episode, lr, k_fut)
            critics, opt = {**critics, "fut": fut}, {**opt, "fut": o_fut}
        st = {
            **st,
            "actor": actor,
            "critics": critics,
            "opt": opt,
            "replay": replay,
            "selection": sel,
            "episode": e + 1,
            "key": key,
        }
        metrics = {
            "train_revenue": train,
            "val_revenue": val,
            "episode_return": episode["reward"].sum(),
            "actor_loss": a_loss.mean(),
            "critic_loss": c_loss.mean(),
            "lr": lr,
            "selected": sel.best_point == e,
        }
        return st, metrics

    return Trainer(init, update, cfg.episodes)


def make_paper_ppo(cfg: PaperPPOConfig, spec: coaml.EnvSpec) -> Trainer:
    """The paper's PPO baseline (``02_PPO.jl``): same loop as :func:`make_srl` with the clipped-ratio
    actor step on the perturbed score vector and ``critic_rew`` as the only critic."""
    f, n = coaml.obs_shape(spec)
    check_perturbation(n, spec.k)
    tx = coaml.gradient_transform(cfg.paper_mode, cfg.max_grad_norm)
    sigma_bar = cfg.sigma_ratio if cfg.sigma_ratio is not None else 0.5 * (cfg.sigma_f[0] + cfg.sigma_f[1])
    variance = sigma_bar if cfg.paper_mode else sigma_bar**2

    def init(key, hyper=None):
        return _common_init(cfg, spec, key)

    def update(st, data=None):
        e = st["episode"]
        sched = _schedules(cfg, e)
        lr = sched(cfg.lr)
        std_f = coaml.noise_std(sched(cfg.sigma_f), cfg.paper_mode)
        sel, train, val = _evaluate_and_select(cfg, spec, st)
        key, k_iter, _, episode = _collect(cfg, spec, st, std_f)
        replay = coaml.replay_add(st["replay"], episode)

        def iteration(carry, k):
            actor, critics, opt = carry
            batch = coaml.replay_sample(replay, k, (cfg.batch_size,))
            greedy = jax.vmap(top_k_mask, in_axes=(0, None))(batch["theta"], spec.k)
            v = jax.vmap(coaml.critic_reward, in_axes=(None, 0, 0, None))(
                critics["rew"], batch["obs"], greedy, spec.k
            )
            adv = jax.lax.stop_gradient(batch["ret"] - v)
            logp_old = -jnp.sum((batch["eta"] - batch["theta"]) ** 2, -1) / (2 * variance)

            def actor_loss(p):
                theta = jax.vmap(coaml.actor_scores, in_axes=(None, 0, None))(p, batch["obs"], cfg.activation)
                logp = -jnp.sum((batch["eta"] - theta) ** 2, -1) / (2 * variance)
                ratio = jnp.exp(logp - logp_old)
                clipped = jnp.clip(ratio, 1 - cfg.clip, 1 + cfg.clip)
                return -jnp.mean(jnp.minimum(ratio * adv, clipped * adv))

            a_loss, grads = jax.value_and_grad(actor_loss)(actor)
            actor, o_actor = coaml.apply_updates(tx, grads, opt["actor"], actor, lr)
            rew, o_rew, c_loss = _critic_rew_step(spec, tx, critics, opt["rew"], batch, lr)
            return (actor, {**critics, "rew": rew}, {**opt, "actor": o_actor, "rew": o_rew}), (a_loss, c_loss)

        carry = (st["actor"], st["critics"], st["opt"])
        (actor, critics, opt), (a_loss, c_loss) = jax.lax.scan(
            iteration, carry, jax.random.split(k_iter, cfg.iterations)
        )
        st = {
            **st,
            "actor": actor,
            "critics": critics,
            "opt": opt,
            "replay": replay,
            "selection": sel,
            "episode": e + 1,
            "key": key,
        }
        metrics = {
            "train_revenue": train,
            "val_revenue": val,
            "episode_return": episode["reward"].sum(),
            "actor_loss": a_loss.mean(),
            "critic_loss": c_loss.mean(),
            "lr": lr,
            "selected": sel.best_point == e,
        }
        return st, metrics

    return Trainer(init, update, cfg.episodes)


def vmap_trainer(trainer: Trainer) -> Trainer:
    """The same trainer over a batch of initialisation keys ``[S]`` (shared ``hyper`` and ``data``)."""
    return Trainer(
        jax.vmap(trainer.init, in_axes=(0, None)),
        jax.vmap(trainer.update, in_axes=(0, None)),
        trainer.num_updates,
    )
