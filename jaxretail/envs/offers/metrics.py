"""Classification metrics of the offer paper in JAX (``shared/specs/pricing_and_offers.md`` §2.4, §2.7).

Inputs: ``y_true [N]`` and ``y_pred [N]`` ints in ``0..K-1``, ``q [N, K]`` the Q-values (scores).
Everything is jittable and NaN-free except where a quantity is undefined, which is reported by an
explicit mask (AUC of a class absent from the labels).

- precision / recall / F1 per class with ``F1 = 2 TP / (2 TP + FP + FN)`` and 0 where the denominator
  is 0 (scikit-learn ``zero_division=0``); macro = unweighted mean over the classes present in
  ``y_true`` or ``y_pred`` (scikit-learn's default label set); macro F1 is the mean of per-class F1,
  not the harmonic mean of macro precision and recall;
- micro F1 (= accuracy for single-label data);
- one-vs-rest and one-vs-one (Hand & Till 2001) macro ROC AUC from ``softmax(q)``, ties counted 1/2;
- NDCG@k of the actions ranked by ``q`` with one-hot relevance on the true class, and graded relevance
  (the Table-5 row of the true class shifted to be >= 0); tied scores share their positions' discounts
  (scikit-learn ``ndcg_score`` with ``ignore_ties=False``);
- weighted multi-class accuracy ``WMA = sum C * W / (10 N)`` (Table 5), range [-0.4, 1];
- the 2-class view (no purchase vs purchase, classes 1..4 merged): macro precision, recall, F1 over the
  two classes and accuracy.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from jaxretail.envs.offers.types import NUM_ACTIONS, WEIGHT_TABLE


def confusion_matrix(y_true: jax.Array, y_pred: jax.Array, num_classes: int = NUM_ACTIONS) -> jax.Array:
    """``C[i, j]`` = number of samples of true class ``i`` predicted ``j``, ``[K, K]`` int32."""
    flat = y_true.astype(jnp.int32) * num_classes + y_pred.astype(jnp.int32)
    counts = jnp.zeros((num_classes * num_classes,), jnp.int32).at[flat].add(1)
    return counts.reshape(num_classes, num_classes)


def _safe_div(num, den):
    return jnp.where(den > 0, num / jnp.where(den > 0, den, 1), 0.0)


def per_class(cm: jax.Array) -> dict[str, jax.Array]:
    """Per-class precision, recall, F1, support ``[K]`` and the ``present`` mask from a confusion matrix."""
    cm = cm.astype(jnp.float32)
    tp = jnp.diag(cm)
    pred = cm.sum(0)
    true = cm.sum(1)
    return {
        "precision": _safe_div(tp, pred),
        "recall": _safe_div(tp, true),
        "f1": _safe_div(2 * tp, pred + true),
        "support": true,
        "present": (pred + true) > 0,
    }


def _macro(values, mask):
    return jnp.sum(jnp.where(mask, values, 0.0)) / jnp.maximum(jnp.sum(mask), 1)


def sorted_ties(score: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(order, start, end) [N]``: the ascending sort of ``score`` and, for each sorted position, the
    first and last position of its group of equal scores (cumulative max / min, no search)."""
    order = jnp.argsort(score)
    s = score[order]
    n = s.shape[0]
    idx = jnp.arange(n)
    change = s[1:] != s[:-1]
    start = jax.lax.cummax(jnp.where(jnp.concatenate([jnp.array([True]), change]), idx, 0))
    end = jax.lax.cummin(jnp.where(jnp.concatenate([change, jnp.array([True])]), idx, n - 1), reverse=True)
    return order, start, end


def auc_from_sorted(ties, positive: jax.Array, mask: jax.Array) -> jax.Array:
    """Mann-Whitney AUC among the ``mask`` rows from :func:`sorted_ties` of the scores (all rows).

    A masked row's mid-rank among the masked rows is the mean of the first and last masked rank of its
    tie group: ``(masked before the group + 1 + masked up to the group's end) / 2``."""
    order, start, end = ties
    m = mask[order].astype(jnp.int32)
    cm = jnp.cumsum(m)
    rank = ((cm[start] - m[start]) + 1 + cm[end]) / 2.0
    pos = (positive & mask)[order]
    n_pos = jnp.sum(pos).astype(jnp.float32)
    n_neg = jnp.sum(mask & ~positive).astype(jnp.float32)
    u = jnp.sum(jnp.where(pos, rank, 0.0)) - n_pos * (n_pos + 1) / 2
    defined = (n_pos > 0) & (n_neg > 0)
    return jnp.where(defined, u / jnp.where(defined, n_pos * n_neg, 1.0), jnp.nan)


def binary_auc(score: jax.Array, positive: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """ROC AUC of ``score [N]`` for ``positive [N]`` among the ``mask`` rows (ties count 1/2); NaN when
    the masked rows hold no positive or no negative (AUC undefined)."""
    mask = jnp.ones_like(positive, bool) if mask is None else mask
    return auc_from_sorted(sorted_ties(score.astype(jnp.float32)), positive, mask)


def auc_ovr(y_true: jax.Array, prob: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(per-class AUC [K] (NaN if undefined), macro AUC over the defined classes)``."""
    ties = jax.vmap(sorted_ties, in_axes=1)(prob.astype(jnp.float32))  # each [K, N]
    every = jnp.ones_like(y_true, bool)
    aucs = jax.vmap(lambda t, c: auc_from_sorted(t, y_true == c, every))(ties, jnp.arange(prob.shape[1]))
    defined = ~jnp.isnan(aucs)
    return aucs, _macro(jnp.where(defined, aucs, 0.0), defined)


def auc_ovo(y_true: jax.Array, prob: jax.Array) -> jax.Array:
    """Hand & Till (2001) M-measure: mean over class pairs ``(j, k)`` of ``(A(j|k) + A(k|j)) / 2``,
    each on the rows of classes ``j`` and ``k``; pairs with an absent class are left out. Each class's
    scores are sorted once and shared by its pairs."""
    ties = jax.vmap(sorted_ties, in_axes=1)(prob.astype(jnp.float32))
    pairs = np.array(list(itertools.combinations(range(prob.shape[1]), 2)), np.int32)

    def pair(jk):
        j, k = jk[0], jk[1]
        mask = (y_true == j) | (y_true == k)
        t_j = jax.tree.map(lambda a: a[j], ties)
        t_k = jax.tree.map(lambda a: a[k], ties)
        return (auc_from_sorted(t_j, y_true == j, mask) + auc_from_sorted(t_k, y_true == k, mask)) / 2

    vals = jax.lax.map(pair, jnp.asarray(pairs))
    defined = ~jnp.isnan(vals)
    return _macro(jnp.where(defined, vals, 0.0), defined)


def ndcg_at_k(relevance: jax.Array, scores: jax.Array, k: int = NUM_ACTIONS) -> jax.Array:
    """Per-row NDCG@k ``[N]`` of ``scores [N, K]`` against ``relevance [N, K] >= 0`` (linear gains,
    discount ``1 / log2(1 + position)``, tied scores averaged over the positions they share)."""
    n_items = scores.shape[1]
    disc = jnp.where(jnp.arange(1, n_items + 1) <= k, 1.0 / jnp.log2(jnp.arange(2, n_items + 2)), 0.0)
    cum = jnp.concatenate([jnp.zeros(1), jnp.cumsum(disc)])  # cum[m] = sum of the first m discounts

    def row(rel, sc):
        above = jnp.sum(sc[None, :] > sc[:, None], axis=1)  # items ranked strictly before each item
        ties = jnp.sum(sc[None, :] == sc[:, None], axis=1)
        dcg = jnp.sum(rel * (cum[above + ties] - cum[above]) / ties)
        ideal = jnp.sum(jnp.sort(rel)[::-1] * disc)
        return _safe_div(dcg, ideal)

    return jax.vmap(row)(relevance.astype(jnp.float32), scores.astype(jnp.float32))


def graded_relevance(y_true: jax.Array) -> jax.Array:
    """Table-5 row of the true class shifted to be >= 0 (``W + 4``), ``[N, 5]``."""
    w = jnp.asarray(WEIGHT_TABLE)
    return w[y_true] - w.min()


def weighted_accuracy(cm: jax.Array, weights: jax.Array | None = None) -> jax.Array:
    """``WMA = sum_ij C_ij W_ij / (10 N)`` with the Table-5 weights (range [-0.4, 1])."""
    w = jnp.asarray(WEIGHT_TABLE) if weights is None else weights
    return jnp.sum(cm.astype(jnp.float32) * w) / (10.0 * jnp.maximum(jnp.sum(cm), 1))


def two_class(y_true: jax.Array, y_pred: jax.Array) -> dict[str, jax.Array]:
    """No purchase (0) vs purchase (1..4 merged): macro precision, recall, F1 and accuracy."""
    cm2 = confusion_matrix((y_true > 0).astype(jnp.int32), (y_pred > 0).astype(jnp.int32), 2)
    pc = per_class(cm2)
    return {
        "precision": _macro(pc["precision"], pc["present"]),
        "recall": _macro(pc["recall"], pc["present"]),
        "f1": _macro(pc["f1"], pc["present"]),
        "accuracy": jnp.trace(cm2) / jnp.maximum(jnp.sum(cm2), 1),
    }


def classification_report(y_true: jax.Array, q: jax.Array, k: int = NUM_ACTIONS) -> dict[str, jax.Array]:
    """Every metric of the paper for Q-values ``q [N, 5]`` (prediction ``argmax q``) against ``y_true [N]``.

    Keys: ``confusion`` [5, 5]; ``precision``, ``recall``, ``f1``, ``support``, ``auc_ovr_per_class`` [5];
    scalars ``macro_precision``, ``macro_recall``, ``macro_f1``, ``micro_f1``, ``accuracy``,
    ``auc_ovr``, ``auc_ovo``, ``ndcg``, ``ndcg_graded``, ``wma`` and ``two_class_*``.
    """
    y_true = y_true.astype(jnp.int32)
    y_pred = jnp.argmax(q, axis=1).astype(jnp.int32)
    cm = confusion_matrix(y_true, y_pred, q.shape[1])
    pc = per_class(cm)
    prob = jax.nn.softmax(q.astype(jnp.float32), axis=1)
    auc_pc, auc_macro = auc_ovr(y_true, prob)
    one_hot = jax.nn.one_hot(y_true, q.shape[1])
    acc = jnp.trace(cm) / jnp.maximum(jnp.sum(cm), 1)
    out = {
        "confusion": cm,
        "precision": pc["precision"],
        "recall": pc["recall"],
        "f1": pc["f1"],
        "support": pc["support"],
        "auc_ovr_per_class": auc_pc,
        "macro_precision": _macro(pc["precision"], pc["present"]),
        "macro_recall": _macro(pc["recall"], pc["present"]),
        "macro_f1": _macro(pc["f1"], pc["present"]),
        "micro_f1": acc,
        "accuracy": acc,
        "auc_ovr": auc_macro,
        "auc_ovo": auc_ovo(y_true, prob),
        "ndcg": jnp.mean(ndcg_at_k(one_hot, q, k)),
        "ndcg_graded": jnp.mean(ndcg_at_k(graded_relevance(y_true), q, k)),
        "wma": weighted_accuracy(cm),
    }
    out.update({f"two_class_{name}": v for name, v in two_class(y_true, y_pred).items()})
    return out


SCALAR_METRICS = (
    "macro_precision", "macro_recall", "macro_f1", "micro_f1", "auc_ovr", "auc_ovo", "ndcg", "ndcg_graded",
    "wma", "two_class_precision", "two_class_recall", "two_class_f1", "two_class_accuracy",
)  # fmt: skip
