"""Offer metrics in JAX against scikit-learn on random data and edge cases."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import metrics as skm

from jaxretail.envs.offers import metrics as om
from jaxretail.envs.offers.types import WEIGHT_TABLE

report = jax.jit(om.classification_report)


def _softmax(q):
    e = np.exp(q - q.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _check_against_sklearn(y, q):
    r = jax.tree.map(np.asarray, report(jnp.asarray(y), jnp.asarray(q)))
    pred = q.argmax(1)
    np.testing.assert_array_equal(r["confusion"], skm.confusion_matrix(y, pred, labels=range(5)))
    for avg, key in (("macro", "macro"), ("micro", "micro")):
        if avg == "micro":
            np.testing.assert_allclose(r["micro_f1"], skm.f1_score(y, pred, average="micro"), atol=1e-6)
            continue
        for name, fn in (
            ("precision", skm.precision_score),
            ("recall", skm.recall_score),
            ("f1", skm.f1_score),
        ):
            ref = fn(y, pred, average="macro", zero_division=0)
            np.testing.assert_allclose(r[f"{key}_{name}"], ref, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(
        r["f1"], skm.f1_score(y, pred, labels=range(5), average=None, zero_division=0), atol=1e-6
    )
    prob = _softmax(q.astype(np.float64)).astype(np.float32)
    present = np.unique(y)
    ovr = np.mean([skm.roc_auc_score(y == c, prob[:, c]) for c in present])
    np.testing.assert_allclose(r["auc_ovr"], ovr, atol=1e-5)
    ovo = []
    for j, k in itertools.combinations(present, 2):
        m = (y == j) | (y == k)
        ovo.append((skm.roc_auc_score(y[m] == j, prob[m, j]) + skm.roc_auc_score(y[m] == k, prob[m, k])) / 2)
    np.testing.assert_allclose(r["auc_ovo"], np.mean(ovo), atol=1e-5)
    np.testing.assert_allclose(r["ndcg"], skm.ndcg_score(np.eye(5)[y], q, k=5), atol=1e-5)
    graded = WEIGHT_TABLE[y] - WEIGHT_TABLE.min()
    np.testing.assert_allclose(r["ndcg_graded"], skm.ndcg_score(graded, q, k=5), atol=1e-5)
    cm = skm.confusion_matrix(y, pred, labels=range(5))
    np.testing.assert_allclose(r["wma"], (cm * WEIGHT_TABLE).sum() / (10 * len(y)), atol=1e-6)
    y2, p2 = (y > 0).astype(int), (pred > 0).astype(int)
    np.testing.assert_allclose(
        r["two_class_f1"], skm.f1_score(y2, p2, average="macro", zero_division=0), atol=1e-6
    )
    np.testing.assert_allclose(r["two_class_accuracy"], skm.accuracy_score(y2, p2), atol=1e-6)
    assert all(np.isfinite(r[k]) for k in om.SCALAR_METRICS)
    return r


def test_random_scores_match_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 200)
    q = rng.normal(size=(200, 5)).astype(np.float32) + 1.5 * np.eye(5, dtype=np.float32)[y]
    r = _check_against_sklearn(y, q)
    # the OvR multi-class call of scikit-learn agrees when every class is present
    prob = _softmax(q.astype(np.float64))
    np.testing.assert_allclose(r["auc_ovr"], skm.roc_auc_score(y, prob, multi_class="ovr"), atol=1e-5)
    np.testing.assert_allclose(r["auc_ovo"], skm.roc_auc_score(y, prob, multi_class="ovo"), atol=1e-5)


def test_edge_cases_never_predicted_absent_label_and_ties():
    rng = np.random.default_rng(1)
    y = rng.choice([0, 1, 2, 4], 200)  # class 3 absent from the labels
    q = np.round(rng.normal(size=(200, 5)), 1).astype(np.float32)  # many ties in the scores
    q[:, 2] = -9.0  # class 2 never predicted
    q[:20] = 0.0  # rows with all scores tied
    r = _check_against_sklearn(y, q)
    assert np.isnan(r["auc_ovr_per_class"][3])
    assert r["recall"][2] == 0 and r["precision"][2] == 0


def test_wma_range_and_perfect_prediction():
    y = np.arange(5).repeat(40)
    r = report(jnp.asarray(y), jnp.asarray(np.eye(5, dtype=np.float32)[y]))
    for k in ("macro_f1", "auc_ovr", "auc_ovo", "ndcg", "wma", "two_class_f1"):
        assert float(r[k]) == pytest.approx(1.0), k
    worst = report(jnp.zeros(200, jnp.int32), jnp.asarray(np.eye(5, dtype=np.float32)[np.ones(200, int)]))
    assert float(worst["wma"]) == pytest.approx(-0.4)
