"""The validation layer's one piece of maths: the worst-case hype growth bound of the assortment model."""

import itertools

import numpy as np
import pytest

from jaxretail.envs.assortment.types import HISTORY_LENGTH, max_hype_growth


def brute_force_growth(lags, horizon):
    """Largest product of hype multipliers over every purchase sequence of one item (2**T of them)."""
    best = -np.inf
    for bought in itertools.product((0, 1), repeat=horizon):
        history, log_growth = [0] * HISTORY_LENGTH, 0.0
        for x in bought:
            history = [x, *history[:-1]]
            log_growth += np.log(1.0 + np.dot(history, lags))
        best = max(best, log_growth)
    return np.exp(best)


@pytest.mark.parametrize("seed", range(6))
def test_max_hype_growth_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    lags = rng.uniform(-0.15, 0.3, HISTORY_LENGTH)
    for horizon in (1, 3, 7, 10):
        assert max_hype_growth(lags, horizon) == pytest.approx(brute_force_growth(lags, horizon), rel=1e-9)


def test_default_model_hype_is_bounded_and_a_pure_lag_one_effect_compounds():
    default = [0.02, -0.005, -0.005, -0.005, -0.005]
    # buying every step cancels out (1 + 0.02 - 4 x 0.005 = 1): the default model's hype never passes x1.051
    assert max_hype_growth(default, 80) == pytest.approx(max_hype_growth(default, 100_000))
    assert max_hype_growth(default, 80) < 1.06
    assert max_hype_growth([0.5, 0, 0, 0, 0], 400) == pytest.approx(1.5**400, rel=1e-9)
