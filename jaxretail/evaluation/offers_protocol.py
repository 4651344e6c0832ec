"""Offer protocol: the paper's DQN preset trained on the offer environment, a scikit-learn baseline,
baseline policies, the paper's metrics and (simulated data) the revenue the offers earn.

DQN settings of Mahdavian et al. (2025, §2.6 of the spec): 15 features -> four hidden ReLU layers
(256-128-64-32, widths not published) -> 5 Q-values; Adam 1e-3; MSE loss; gamma 0.95 (and the gamma = 0
ablation, trained in the same vmapped call); replay 50,000; minibatch 64; hard target copy every 1,000
gradient steps; epsilon-greedy decaying linearly from 1 to 0.05 over the first half of training. Plain
DQN targets (no double DQN) and no effective gradient clipping (norm cap 1e6), as in the paper.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxretail.agents import dqn
from jaxretail.agents.training import Trainer, run
from jaxretail.core import spaces
from jaxretail.core.vector import batched
from jaxretail.envs.offers import policies
from jaxretail.envs.offers.env import OfferEnv, make_params
from jaxretail.envs.offers.metrics import classification_report
from jaxretail.envs.offers.revenue import outcomes, summary
from jaxretail.envs.offers.types import NUM_ACTIONS

PAPER_HIDDEN = (256, 128, 64, 32)


def dqn_preset(num_updates: int = 20_000, gamma: float = 0.95, **overrides) -> dqn.DQNConfig:
    """The paper's DQN settings (module docstring); ``num_updates`` gradient steps, one vector-env
    step each."""
    hyper = dqn.DQNHyper(
        learning_rate=1e-3, gamma=gamma, epsilon_start=1.0, epsilon_end=0.05, exploration_fraction=0.5,
        tau=1.0, max_grad_norm=1e6,
    )  # fmt: skip
    cfg = dict(
        num_updates=num_updates, num_steps=1, gradient_steps=1, batch_size=64, buffer_size=50_000,
        learning_starts=1_000, target_update_interval=1_000, hidden=PAPER_HIDDEN, loss="mse",
        double_dqn=False, hyper=hyper,
    )  # fmt: skip
    cfg.update(overrides)
    return dqn.DQNConfig(**cfg)


def _stack(hypers):
    return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x, jnp.float32) for x in xs]), *hypers)


def train_dqn(
    features: np.ndarray,
    labels: np.ndarray,
    key: jax.Array,
    config: dqn.DQNConfig,
    gammas=(0.95, 0.0),
    num_envs: int = 8,
    episode_length: int = 10,
    progress: bool = True,
    chunk_updates: int = 1_000,
) -> dict:
    """Train one DQN per ``gamma`` (vmapped, same key) on the offer environment over ``features``.

    Returns ``{"params": stacked Q-network params [len(gammas), ...], "metrics", "seconds",
    "transitions": env transitions per agent}``."""
    env = OfferEnv()
    params = make_params(features, labels, episode_length)
    trainer = dqn.make_trainer(config, batched(env, params, num_envs))
    hyper = _stack([dataclasses.replace(config.hyper, gamma=float(g)) for g in gammas])
    vtrainer = Trainer(
        jax.vmap(trainer.init, in_axes=(None, 0)),
        jax.vmap(trainer.update, in_axes=(0, None)),
        trainer.num_updates,
    )
    out = run(
        vtrainer, key, hyper, None, chunk_updates=min(chunk_updates, config.num_updates), progress=progress
    )
    return {
        "params": out["state"].params,
        "metrics": out["metrics"],
        "seconds": out["seconds"],
        "transitions": config.num_updates * num_envs * config.num_steps,
    }


def q_values(config: dqn.DQNConfig, params, features: np.ndarray, batch: int = 65_536) -> jax.Array:
    """``Q [N, 5]`` of one agent's ``params`` on ``features [N, F]``, scored in jitted batches."""
    net = dqn.network(config, spaces.Discrete(NUM_ACTIONS))
    x = jnp.asarray(features, jnp.float32)
    n = x.shape[0]
    pad = (-n) % batch if n > batch else 0
    size = batch if n > batch else n
    xb = jnp.pad(x, ((0, pad), (0, 0))).reshape(-1, size, x.shape[1])
    q = jax.lax.map(lambda b: net.apply(params, b), xb) if xb.shape[0] > 1 else net.apply(params, xb[0])[None]
    return q.reshape(-1, NUM_ACTIONS)[:n]


def supervised_baseline(
    x_train, y_train, x_test, seed: int = 0, max_iter: int = 100, threads: int | None = 1
) -> np.ndarray:
    """scikit-learn ``HistGradientBoostingClassifier`` on the same features; returns ``log p [N, 5]`` as
    scores (probabilities floored at 1e-9, also for classes absent from training).

    ``threads`` caps its OpenMP threads (``None``: all cores); on a shared machine one thread is far
    faster than an oversubscribed pool."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    clf = HistGradientBoostingClassifier(max_iter=max_iter, random_state=seed)
    proba = np.full((len(x_test), NUM_ACTIONS), 1e-9)
    with threadpool_limits(threads):
        clf.fit(x_train, y_train)
        proba[:, clf.classes_] = np.maximum(clf.predict_proba(x_test), 1e-9)
    return np.log(proba).astype(np.float32)


def baseline_scores(features, labels, with_oracle: bool) -> dict[str, jax.Array]:
    """Scores of the no-offer, uniform-discount (each level) and (simulated data) oracle policies."""
    x, y = jnp.asarray(features), jnp.asarray(labels)
    out = {"no offer": policies.no_offer(x)}
    for a, name in ((2, "uniform 10%"), (3, "uniform 20%"), (4, "uniform 30%")):
        out[name] = policies.uniform_discount(a)(x)
    if with_oracle:
        out["oracle"] = policies.oracle(x, y)
    return out


evaluate_scores = jax.jit(classification_report)


def revenue_table(actions: dict[str, np.ndarray], test, levels) -> dict[str, dict]:
    """Revenue, margin, conversion and discount spend per policy (means with SE) and paired differences
    against the no-offer policy, on the simulated test samples (``test``: the samples DataFrame)."""
    cols = [
        jnp.asarray(test[c].to_numpy(np.float32))
        for c in ("sufficient_discount", "price", "quantity", "unit_cost")
    ]
    ref = outcomes(jnp.zeros(len(test), jnp.int32), *cols, levels)
    return {
        name: {
            k: float(v) for k, v in summary(outcomes(jnp.asarray(a, jnp.int32), *cols, levels), ref).items()
        }
        for name, a in actions.items()
    }
