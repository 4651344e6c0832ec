"""The learned assortment policies SIL, SRL and the paper's PPO on the protocol of Hoppe et al. (arXiv
2505.19053, :mod:`jaxretail.envs.assortment.protocol`): every method trains all initialisation seeds at
once (one ``vmap``ped trainer, run in jitted chunks with progress), selects its model on validation seeds
at every evaluation point, and the kept actors are evaluated on the train and test seeds.

The environment reaches the agents only as a :class:`~jaxretail.agents.coaml.EnvSpec` and the expert
only as a policy callable (its episodes become SIL's data), so ``jaxretail.agents`` never imports an
environment; this module is the wiring. Each method is one entry of :data:`TRAINERS` (its trainer
factory and whether it imitates the expert). Also the online PPO preset of the assortment main job.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxretail.agents import coaml, ppo, sil, srl
from jaxretail.agents.training import run as run_trainer
from jaxretail.core import spaces
from jaxretail.envs.assortment.policies import top_k_mask
from jaxretail.envs.assortment.protocol import MODES, PAPER_INIT_SEEDS, expert_episodes, summary_rows
from jaxretail.evaluation.plots import plt, save_figure

__all__ = [  # with the protocol names it re-exports from jaxretail.envs.assortment.protocol
    "METHODS", "MODES", "PAPER_INIT_SEEDS", "TRAINERS", "Method", "evaluate_actors", "expert_episodes",
    "make_trainer", "parse_methods", "plot_boxes", "plot_training_curves", "ppo_config", "ppo_policy",
    "summary_rows", "train_and_evaluate",
]  # fmt: skip


class Method(NamedTuple):
    """A learned method: ``make(config_overrides, paper_mode, spec, num_expert_episodes) -> trainer``
    and whether it trains on the expert's episodes."""

    make: Callable
    needs_expert: bool = False


TRAINERS: dict[str, Method] = {
    "sil": Method(
        lambda kw, paper, spec, n: sil.make_sil(sil.SILConfig(paper_mode=paper, **kw), spec, n), True
    ),
    "srl": Method(lambda kw, paper, spec, n: srl.make_srl(srl.SRLConfig(paper_mode=paper, **kw), spec)),
    "paper-ppo": Method(
        lambda kw, paper, spec, n: srl.make_paper_ppo(srl.PaperPPOConfig(paper_mode=paper, **kw), spec)
    ),
}
METHODS = tuple(TRAINERS)


def ppo_config(num_updates: int = 200, **overrides) -> ppo.PPOConfig:
    """Defaults for the assortment learner: item-score actor, 80-step rollouts (one episode)."""
    kw = dict(
        num_updates=num_updates, num_steps=80, update_epochs=4, num_minibatches=4, actor="item_scores",
        actor_hidden=(32, 32), critic_hidden=(64, 64),
        hyper=ppo.PPOHyper(learning_rate=1e-3, gamma=0.99, gae_lambda=0.95, ent_coef=0.0, clip_eps=0.2),
    )  # fmt: skip
    kw.update(overrides)
    return ppo.PPOConfig(**kw)


def ppo_policy(config: ppo.PPOConfig, agent: dict, greedy: bool = True):
    """Per-episode policy ``(key, obs [F, N], state, params) -> mask [N]`` of a trained PPO agent."""
    act = ppo.make_policy(config, spaces.Box(-jnp.inf, jnp.inf, (1,)), greedy=greedy)

    def policy(key, obs, state, params):
        del state
        return top_k_mask(act(agent, key, obs[None])[0], params.assortment_size)

    return policy


def parse_methods(text: str) -> list[str]:
    """``"sil,srl"`` -> ``["sil", "srl"]``; ``""`` / ``"none"`` -> ``[]``.

    Raises:
      ValueError: naming an unknown method and the allowed ones.
    """
    names = [m.strip() for m in text.split(",") if m.strip() and m.strip() != "none"]
    bad = [m for m in names if m not in METHODS]
    if bad:
        raise ValueError(f"--methods: unknown method(s) {bad}; allowed: {', '.join(METHODS)}")
    return names


def make_trainer(method: str, mode: str, spec: coaml.EnvSpec, num_expert_episodes: int = 100, **overrides):
    """The ``vmap``ped trainer of ``method`` with the paper's settings (``mode="clean"``: the original's
    conventions off, see :mod:`jaxretail.agents.srl`); ``overrides`` replace config fields."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got mode={mode!r}")
    if method not in TRAINERS:
        raise ValueError(f"method must be one of {METHODS}, got method={method!r}")
    trainer = TRAINERS[method].make(overrides, mode == "paper", spec, num_expert_episodes)
    return srl.vmap_trainer(trainer)


def evaluate_actors(spec: coaml.EnvSpec, actors: dict, seeds: Sequence[int], activation: str = "identity"):
    """Episode revenue ``[S_init, E]`` of a batch of actors (leading axis: init seed) on ``seeds``."""
    seeds = jnp.asarray(list(seeds), jnp.int32)
    fn = jax.jit(jax.vmap(lambda a: coaml.evaluate_actor(spec, a, seeds, activation)))
    return np.asarray(fn(actors))


def train_and_evaluate(
    method: str,
    mode: str,
    env,
    params,
    splits: dict[str, Sequence[int]],
    *,
    expert: Callable | None = None,
    init_seeds: Sequence[int] = PAPER_INIT_SEEDS,
    expert_seeds: Sequence[int] = range(1, 101),
    chunk: int = 20,
    progress: bool = True,
    **overrides,
) -> dict:
    """Train ``method`` for every init seed at once, keep the selected actors, evaluate them on ``splits``.

    SIL imitates ``expert`` (a rollout policy) on the episodes ``expert_seeds`` (paper: train seeds 1-100).

    Returns ``{"metrics": {name: [updates, S_init]}, "revenue": {split: [S_init, E]},
    "best_point": [S_init], "train_seconds", "eval_seconds", "env_steps"}``.
    """
    spec = coaml.EnvSpec(env, params, params.horizon, params.assortment_size)
    data = None
    start = time.perf_counter()
    if method in TRAINERS and TRAINERS[method].needs_expert:
        if expert is None:
            raise ValueError(f"method {method!r} needs the expert policy (expert=...)")
        data = expert_episodes(env, params, expert, expert_seeds)
    trainer = make_trainer(method, mode, spec, len(expert_seeds), **overrides)
    keys = jax.vmap(jax.random.key)(jnp.asarray(list(init_seeds), jnp.uint32))
    res = run_trainer(trainer, keys, None, data, chunk_updates=chunk, progress=progress)
    sel = res["state"]["selection"]
    jax.block_until_ready(sel.best_params)
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    all_seeds = [s for seeds in splits.values() for s in seeds]
    revenue = {}
    if all_seeds:  # one compiled rollout for every split
        table = evaluate_actors(spec, sel.best_params, all_seeds)
        bounds = np.cumsum([0] + [len(seeds) for seeds in splits.values()])
        revenue = {s: table[:, bounds[i] : bounds[i + 1]] for i, s in enumerate(splits)}
    metrics = {k: np.asarray(v) for k, v in res["metrics"].items()}
    updates = trainer.num_updates
    eval_steps = updates * 60 * params.horizon  # evaluation points x (30 + 30) episodes
    train_steps = updates * params.horizon if not TRAINERS[method].needs_expert else 0
    return {
        "metrics": metrics,
        "revenue": revenue,
        "best_point": np.asarray(sel.best_point),
        "train_seconds": train_seconds,
        "eval_seconds": time.perf_counter() - start,
        "env_steps": {"eval": eval_steps * len(init_seeds), "train": train_steps * len(init_seeds)},
    }


def plot_training_curves(results: dict[str, dict], path, references: dict[str, float] | None = None) -> None:
    """Evaluation revenue (mean of train and validation seeds) at every evaluation point, mean over
    init seeds with a +-1 s.e. band, one line per method."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, res in results.items():
        score = 0.5 * (res["metrics"]["train_revenue"] + res["metrics"]["val_revenue"])  # [P, S]
        mean = score.mean(1)
        se = score.std(1, ddof=1) / np.sqrt(score.shape[1]) if score.shape[1] > 1 else 0 * mean
        x = np.arange(1, len(mean) + 1)
        ax.plot(x, mean, label=name)
        ax.fill_between(x, mean - se, mean + se, alpha=0.2)
    for name, level in (references or {}).items():
        ax.axhline(level, linestyle="--", linewidth=1, label=name)
    ax.set_xlabel("evaluation point (episode)")
    ax.set_ylabel("mean revenue, seeds 1-30 and 1001-1030")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    save_figure(fig, path)


def plot_boxes(per_policy: dict[str, dict[str, np.ndarray]], path) -> None:
    """Box plots of the episode revenue per policy, one panel per split (learned policies: the mean over
    init seeds of each episode)."""
    splits = list(next(iter(per_policy.values())).keys())
    fig, axes = plt.subplots(
        1, len(splits), figsize=(1.2 * len(per_policy) + 3, 4.5), squeeze=False, sharey=True
    )
    for ax, split in zip(axes[0], splits, strict=True):
        names = list(per_policy)
        ax.boxplot([per_policy[n][split] for n in names], showmeans=True)
        ax.set_xticks(range(1, len(names) + 1), names, rotation=45, ha="right", fontsize=8)
        ax.set_title(f"{split} seeds")
        ax.grid(alpha=0.3, axis="y")
    axes[0, 0].set_ylabel("episode revenue")
    save_figure(fig, path)
