"""Structured imitation learning (SIL) of an expert's combinatorial actions (Hoppe et al., arXiv
2505.19053, ``scripts/DAP/01_SIL.jl``): the COaML actor ``topK(actor(x))`` is fitted to expert
assortments with the perturbed Fenchel-Young loss, one sample per step (batch size 1), episodes in
order, for ``epochs`` passes over the expert episodes.

The expert's episodes are the trainer's ``data`` (``obs [E, T, F, N]``, ``action [E, T, N]`` 0/1);
build them with any policy (e.g. the environment's brute-force expert) so this module never sees the
environment's internals. One :class:`~jaxretail.agents.training.Trainer` update covers
``episodes_per_eval`` expert episodes after an evaluation on 30 train and 30 validation seeds
(E = 100, 8 epochs: 200 evaluation points). Model selection keeps the actor whose mean is the best of
the points from ``selection_start`` on, and only after half the epochs (the original's "no lucky shot").
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jaxretail.agents import coaml
from jaxretail.agents.structured import check_perturbation, fenchel_young_loss
from jaxretail.agents.training import Trainer


@dataclasses.dataclass(frozen=True)
class SILConfig:
    epochs: int = 8
    lr: tuple[float, float] = (1e-4, 1e-4)  # linear decay once per epoch
    fy_epsilon: float = 1.0
    fy_samples: int = 20
    episodes_per_eval: int = 4
    selection_start: int | None = None  # 1-based first point of the running maximum (None: half)
    paper_mode: bool = True  # ClipValue(1e-3) + Adam; clean: global-norm clipping + Adam
    max_grad_norm: float = 1.0
    eval_episodes: int = 30
    eval_train_first: int = 1
    eval_val_first: int = 1001
    hidden: tuple[int, ...] = (5,)
    activation: str = "identity"

    def __post_init__(self):
        coaml.check_config(
            self,
            ("epochs", "fy_samples", "episodes_per_eval", "eval_episodes"),
            ("fy_epsilon", "max_grad_norm"),
            ("lr",),
        )
        if self.activation not in coaml.ACTIVATIONS:
            raise ValueError(f"activation must be one of {tuple(coaml.ACTIVATIONS)}, got {self.activation!r}")


def make_sil(cfg: SILConfig, spec: coaml.EnvSpec, num_episodes: int) -> Trainer:
    """SIL trainer over ``num_episodes`` expert episodes (``update(state, data)``, ``data`` as above).

    Metrics per update: ``train_revenue``, ``val_revenue`` (evaluation before the update's episodes),
    ``loss`` (mean Fenchel-Young loss), ``lr``, ``selected``.

    Raises:
      ValueError: for ``K > N``, ``fy_epsilon <= 0``, ``fy_samples < 1``, or ``num_episodes`` not a
        positive multiple of ``episodes_per_eval``.
    """
    f, n = coaml.obs_shape(spec)
    check_perturbation(n, spec.k, cfg.fy_epsilon, cfg.fy_samples)
    per = cfg.episodes_per_eval
    if num_episodes < per or num_episodes % per:
        raise ValueError(
            f"num_episodes must be a positive multiple of episodes_per_eval={per}, "
            f"got num_episodes={num_episodes}"
        )
    groups = num_episodes // per
    points = cfg.epochs * groups
    start = cfg.selection_start if cfg.selection_start is not None else points // 2
    tx = coaml.gradient_transform(cfg.paper_mode, cfg.max_grad_norm)

    def init(key, hyper=None):
        k_actor, k_run = jax.random.split(key)
        actor = coaml.init_actor(k_actor, f, cfg.hidden)
        return {
            "actor": actor,
            "opt": tx.init(actor),
            "selection": coaml.Selection(actor, jnp.asarray(-jnp.inf), jnp.asarray(-1, jnp.int32)),
            "point": jnp.zeros((), jnp.int32),
            "key": k_run,
        }

    def update(st, data):
        p = st["point"]
        epoch, group = p // groups, p % groups
        lr = coaml.linear_schedule(cfg.lr[0], cfg.lr[1], epoch, cfg.epochs)
        train, val = coaml.evaluate_train_val(
            spec, st["actor"], cfg.eval_episodes, cfg.eval_train_first, cfg.eval_val_first, cfg.activation
        )
        eligible = 2 * (epoch + 1) > cfg.epochs
        # The original's running maximum starts at point `start` although only later points are
        # eligible, so it can end with the initial actor; clean mode counts eligible points only.
        counts = (p >= start - 1) if cfg.paper_mode else (p >= start - 1) & eligible
        sel = coaml.select(
            st["selection"], st["actor"], 0.5 * (train + val), p, counts=counts, eligible=eligible
        )
        obs = jax.lax.dynamic_slice_in_dim(data["obs"], group * per, per).reshape((-1, f, n))
        act = (
            jax.lax.dynamic_slice_in_dim(data["action"], group * per, per).reshape((-1, n)).astype(obs.dtype)
        )
        key, k_fy = jax.random.split(st["key"])

        def step(carry, xs):
            actor, opt = carry
            x, y, k = xs

            def loss(a):
                theta = coaml.actor_scores(a, x, cfg.activation)
                return fenchel_young_loss(
                    theta, y, k, k=spec.k, epsilon=cfg.fy_epsilon, num_samples=cfg.fy_samples
                )

            value, grads = jax.value_and_grad(loss)(actor)
            actor, opt = coaml.apply_updates(tx, grads, opt, actor, lr)
            return (actor, opt), value

        (actor, opt), losses = jax.lax.scan(
            step, (st["actor"], st["opt"]), (obs, act, jax.random.split(k_fy, obs.shape[0]))
        )
        st = {"actor": actor, "opt": opt, "selection": sel, "point": p + 1, "key": key}
        metrics = {
            "train_revenue": train,
            "val_revenue": val,
            "loss": losses.mean(),
            "lr": lr,
            "selected": sel.best_point == p,
        }
        return st, metrics

    return Trainer(init, update, points)
