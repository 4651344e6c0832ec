"""Independent NumPy reference of the dynamic assortment model, written from the specification."""

import itertools

import numpy as np

LAGS = np.array([0.02, -0.005, -0.005, -0.005, -0.005])


def utility(price, feats, hype, sat):
    """theta_i = -0.8 p + 0.6 h - 0.4 sigma + 0.3 f1 + 0.5 f2 (+0.7 f3 ...)."""
    w = 0.3 + 0.2 * np.arange(feats.shape[0])
    return -0.8 * price + 0.6 * hype - 0.4 * sat + w @ feats


def transition(hype, sat, history, choice, n_items, exogenous=False):
    """Apply one purchase (choice == n_items: no purchase). history is a Python list, newest last."""
    history = history + [choice]
    if exogenous:
        return hype.copy(), sat.copy(), history
    mult = np.ones(n_items)
    for lag, item in enumerate(reversed(history[-5:])):
        if item < n_items:
            mult[item] += LAGS[lag]
    hype = hype * mult
    sat = sat.copy()
    if choice < n_items:
        sat[choice] *= 1.01
    return hype, sat, history


def mnl_probs(theta, mask):
    w = np.where(mask, np.exp(theta.astype(np.float64)), 0.0)
    return np.append(w, 1.0) / (1.0 + w.sum())


def brute_force_revenues(theta, price, k):
    """Expected revenue of every k-subset, in itertools (lexicographic) order."""
    v = np.exp(theta.astype(np.float64))
    subsets = list(itertools.combinations(range(len(price)), k))
    revs = np.array([(v[list(s)] * price[list(s)]).sum() / (1.0 + v[list(s)].sum()) for s in subsets])
    return subsets, revs
