"""Offline evaluation of pricing policies: IPW / SNIPW / DR against the on-line value, the replay
estimator's bias towards the logging policy, and difference in differences."""

import jax
import numpy as np
import pytest

from jaxretail.core.rollout import rollout
from jaxretail.envs.pricing import DynamicPricing, group_params, make_params, make_sku, policies, protocol
from jaxretail.evaluation import off_policy as ope

ENV = DynamicPricing()
PARAMS = group_params("luxury", reward="rcr", num_prices=5, horizon=1000)
RULE = policies.list_price_policy
B, T = 200, 10


@pytest.fixture(scope="module")
def logged():
    keys = jax.random.split(jax.random.key(0), B)
    logs = jax.jit(
        lambda k: protocol.collect_logs(
            ENV,
            policies.epsilon_policy(RULE, 0.5),
            k,
            PARAMS,
            keys,
            T,
            probs=policies.epsilon_probs(RULE, 0.5),
            targets={"opt": policies.optimal_policy, "rule": RULE},
        )
    )(jax.random.key(1))
    truth = {
        name: float(rollout(ENV, pol, jax.random.key(1), PARAMS, keys, T)[2].mean())
        for name, pol in (("opt", policies.optimal_policy), ("rule", RULE))
    }
    return logs, truth


def _flat(x):
    return x.reshape((-1,) + x.shape[2:])


def test_estimators_equal_the_logged_mean_for_the_logging_policy(logged):
    logs, _ = logged
    r, mu, a = _flat(logs["reward"]), _flat(logs["propensity"]), _flat(logs["action"])
    pi = _flat(logs["action_probs"])  # the evaluated policy IS the logging policy: every weight is 1
    q = ope.fit_linear_reward_model(_flat(logs["obs"]), a, r, 5)(_flat(logs["obs"]))
    for est in (ope.ipw(r, mu, pi, a), ope.snipw(r, mu, pi, a)):
        np.testing.assert_allclose(float(est["estimate"]), float(r.mean()), rtol=1e-5)
    dr = ope.doubly_robust(r, mu, pi, a, q)  # DR = mean(sum_a mu q) + mean(r - q(a)): unbiased, close
    assert abs(float(dr["estimate"]) - float(r.mean())) < 2 * float(dr["se"])


@pytest.mark.parametrize("target", ["opt", "rule"])
def test_ipw_and_dr_cover_the_online_value(logged, target):
    logs, truth = logged
    r, mu, a = _flat(logs["reward"]), _flat(logs["propensity"]), _flat(logs["action"])
    pi = jax.nn.one_hot(_flat(logs[f"target_{target}"]), 5)
    q = ope.fit_linear_reward_model(_flat(logs["obs"]), a, r, 5)(_flat(logs["obs"]))
    for est in (ope.ipw(r, mu, pi, a), ope.snipw(r, mu, pi, a), ope.doubly_robust(r, mu, pi, a, q)):
        lo, hi = est["ci95"]
        # the CI covers the on-line value (sampling noise of the on-line run: same SKUs and days)
        assert float(lo) - 1e-4 <= truth[target] <= float(hi) + 1e-4


def test_replay_estimator_favours_the_policy_that_agrees_with_the_log(logged):
    logs, truth = logged
    opt = protocol.replay_estimate(logs, logs["target_opt"], PARAMS)
    rule = protocol.replay_estimate(logs, logs["target_rule"], PARAMS)
    assert truth["opt"] > truth["rule"] * 1.2  # the oracle is truly better ...
    assert rule["score"] > 2 * opt["score"] and rule["hits"] > 3 * opt["hits"]  # ... but scores lower
    # the mean matched reward is the self-normalised estimate of a deterministic policy
    r, mu, a = _flat(logs["reward"]), _flat(logs["propensity"]), _flat(logs["action"])
    pi = jax.nn.one_hot(_flat(logs["target_opt"]), 5)
    np.testing.assert_allclose(
        opt["mean_matched_reward"], float(ope.snipw(r, mu, pi, a)["estimate"]), rtol=1e-4
    )


def test_continuous_replay_matches_within_half_an_area():
    params = make_params(action_type="continuous", num_prices=4, sku=make_sku(100.0, p_min=60.0, p_max=100.0))
    logs = {
        "reward": np.ones((1, 3)),
        "price": np.array([[60.0, 80.0, 100.0]]),
        "p_min": np.full((1, 3), 60.0),
        "p_max": np.full((1, 3), 100.0),
    }
    # policy prices 64.9 (|d| = 4.9 <= 5: hit), 86 (miss), 95.5 (hit)
    a = (np.array([[64.9, 86.0, 95.5]]) - 60.0) / 20.0 - 1.0
    out = protocol.replay_estimate(logs, a[..., None], params)
    assert out["hits"] == 2 and out["score"] == 2.0


def test_did_twins_show_no_effect_and_a_policy_change_is_recovered():
    rng = np.random.default_rng(0)
    T, N = 30, 40
    common = rng.normal(0, 1, (T, 1))  # shared daily shocks of similar products
    control = common + rng.normal(0, 0.5, (T, N))
    twin = common + rng.normal(0, 0.5, (T, N))
    same = protocol.did_estimate(control, twin, post_start=15)
    assert same["ci95"][0] <= 0.0 <= same["ci95"][1]
    treated = twin + 0.4 * (np.arange(T) >= 15)[:, None]
    diff = protocol.did_estimate(control, treated, post_start=15)
    assert diff["ci95"][0] <= 0.4 <= diff["ci95"][1] and diff["p_value"] < 0.01
    with pytest.raises(ValueError, match="post_start must be in 1..29, got post_start=0"):
        protocol.did_estimate(control, twin, post_start=0)
