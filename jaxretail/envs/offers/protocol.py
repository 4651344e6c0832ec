"""Offer protocol, agent-agnostic parts: the scikit-learn baseline, the fixed policies' scores, the
paper's metrics of any score matrix and (simulated data) the revenue the chosen offers earn.

A policy enters as scores ``q [N, 5]`` over the test samples (its action: ``argmax q``), so a trained
agent's Q-values, a classifier's log-probabilities and the fixed policies are compared alike. The DQN of
the paper is trained and scored by the main job (:mod:`jaxretail.jobs.offers`); this module never
imports an agent.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxretail.envs.offers import policies
from jaxretail.envs.offers.metrics import classification_report
from jaxretail.envs.offers.revenue import outcomes, summary
from jaxretail.envs.offers.types import NUM_ACTIONS


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
    """Scores ``[N, 5]`` of the no-offer, uniform-discount (each level) and (simulated data) oracle
    policies on ``features [N, F]`` (``labels [N]``: the oracle's true classes)."""
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
    against the no-offer policy, on the simulated test samples (``test``: the samples DataFrame;
    ``actions``: policy -> action ``[N]``)."""
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
