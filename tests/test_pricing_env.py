"""Dynamic pricing environment: closed-form optimum, RCR/PCR/DRCR against NumPy, markdown stock-out,
degenerate inputs without NaN, the count sampler's distribution and configuration errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
import scipy.stats

from jaxretail.choice import pricing as choice_pricing
from jaxretail.core.rollout import rollout
from jaxretail.envs.pricing import (
    DynamicPricing,
    group_params,
    make_params,
    make_sku,
    metrics,
    poisson_from_uniform,
    policies,
    price_grid,
    price_to_action,
)

ENV = DynamicPricing()


def test_lambertw_and_closed_form_optimal_price():
    x = np.array([0.0, 1e-4, 0.3, 1.0, 7.0, 1e4, 1e25])
    np.testing.assert_allclose(
        choice_pricing.lambertw(jnp.asarray(x)), scipy.special.lambertw(x).real, rtol=2e-6
    )
    for a, b, v, c in [(2.0, 3.0, [0.5], 0.2), (-3.0, 0.01, [-2.0, 1.0], 50.0), (60.0, 1.0, [0.0], 0.0)]:
        p = choice_pricing.optimal_price(a, b, jnp.asarray(v), c)
        grid = np.linspace(c, c + (abs(a) + 50.0) / b, 400_001)
        # NumPy margin (p - c) P(p) with P the MNL share against 1 + sum e^v
        util = a - b * grid
        share = np.exp(util - np.logaddexp(np.log1p(np.exp(v).sum()), util))
        assert abs(float(p) - grid[np.argmax((grid - c) * share)]) < 1e-3 * (abs(a) + 50.0) / b


def _sku(**kw):
    base = dict(
        list_price=100.0,
        unit_cost=40.0,
        p_min=60.0,
        p_max=100.0,
        base_uv=200.0,
        conversion=0.03,
        slope=2.0,
        season_amplitude=0.3,
        traffic_noise=0.3,
        competitor_noise=0.1,
        shock_sd=0.3,
        shock_rho=0.8,
    )
    return make_sku(**{**base, **kw})


@pytest.mark.parametrize("reward,lag,relative", [("pcr", 1, False), ("drcr", 2, False), ("dpcr", 1, True)])
def test_rewards_match_a_numpy_recomputation(reward, lag, relative):
    # base_uv = 1.5 gives days without visitors, so the UV = 0 rule is exercised
    params = make_params(
        reward=reward,
        lag=lag,
        relative=relative,
        normalize_reward=False,
        horizon=40,
        sku=_sku(base_uv=1.5, conversion=0.3, traffic_noise=0.8),
    )
    keys = jax.random.split(jax.random.key(3), 16)
    rec = lambda tr: (tr.reward, tr.info["revenue"], tr.info["profit"], tr.info["uv"])
    _, _, (r, rev, profit, uv) = rollout(
        ENV, policies.random_policy, jax.random.key(4), params, keys, 40, record=rec
    )
    r, rev, profit, uv = map(np.asarray, (r, rev, profit, uv))
    assert (uv == 0).any() and (uv > 0).any()
    amount = profit if reward in ("pcr", "dpcr") else rev
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(uv > 0, amount / uv, 0.0)
    if reward in ("rcr", "pcr"):
        np.testing.assert_allclose(r, rate, rtol=1e-5, atol=1e-6)
        return
    now, before = rate[lag:], rate[:-lag]
    ok = (uv[lag:] > 0) & (uv[:-lag] > 0)
    if relative:
        ok &= before != 0
        with np.errstate(divide="ignore", invalid="ignore"):
            expected = np.where(ok, (now - before) / np.abs(before), 0.0)
    else:
        expected = np.where(ok, now - before, 0.0)
    np.testing.assert_allclose(r[lag:], expected, rtol=1e-5, atol=1e-5)
    if reward == "drcr":  # the series helper used for DID agrees, and RCR itself is the NumPy rate
        np.testing.assert_allclose(
            metrics.drcr_series(jnp.asarray(rev), jnp.asarray(uv), lag), expected, atol=1e-5
        )


def test_markdown_terminates_exactly_at_stock_out():
    params = make_params(mode="markdown", horizon=60, initial_stock=10.0, sku=_sku(base_uv=30.0))
    obs, state = jax.vmap(ENV.reset, in_axes=(0, None))(jax.random.split(jax.random.key(0), 64), params)
    policy = policies.manual_markdown_policy(step_days=3)

    def body(carry, k):
        obs, state, alive = carry
        a = jax.vmap(policy, in_axes=(0, 0, 0, None))(jax.random.split(k, 64), obs, state, params)
        obs, new, _, term, trunc, info = jax.vmap(ENV.step_env, in_axes=(0, 0, 0, None))(
            jax.random.split(k, 64), state, a, params
        )
        return (obs, new, alive & ~(term | trunc)), (info["units"] * alive, new.stock, term & alive, alive)

    _, (units, stock, term, alive) = jax.lax.scan(
        body, (obs, state, jnp.ones(64, bool)), jax.random.split(jax.random.key(1), 60)
    )
    units, stock, term, alive = map(np.asarray, (units, stock, term, alive))
    cum = units.cumsum(0)
    assert (cum <= 10).all() and (stock[alive] >= 0).all()
    first_out = np.argmax(cum >= 10, axis=0)
    assert (cum[-1] == 10).all()  # every SKU sells out within 60 days
    np.testing.assert_array_equal(np.argmax(term, axis=0), first_out)
    assert term.sum(0).max() == 1


def test_analytic_optimum_beats_every_rule_and_is_the_best_area():
    params = group_params("luxury", reward="rcr", num_prices=8)
    keys = jax.random.split(jax.random.key(2), 64)
    rules = [
        policies.optimal_policy,
        policies.list_price_policy,
        policies.random_policy,
        policies.traffic_policy,
        policies.competitor_policy(),
        policies.cost_plus_policy(),
    ]

    def value(i):  # one compiled rollout for every rule (lax.switch on the rule index)
        pol = lambda k, o, s, p: jax.lax.switch(i, rules, k, o, s, p)
        rec = lambda tr: tr.info["rcr"] / tr.info["price"].max()
        return rollout(ENV, pol, jax.random.key(5), params, keys, 10, record=rec)[2].mean()

    values = np.asarray(jax.jit(jax.vmap(value))(jnp.arange(len(rules))))
    assert (values[0] >= values[1:] - 1e-6).all() and values[0] > values[2] + 1e-3
    # the discrete oracle's area equals the area with the highest NumPy expected RCR
    _, state = ENV.reset(jax.random.key(9), params)
    grid = np.asarray(price_grid(state.sku, params))
    s = state.sku
    u = float(s.intercept + state.shock) - float(s.price_slope) * grid
    v = float(s.competitor_intercept + state.shock - s.price_slope * state.competitor_rel * s.list_price)
    share = np.exp(u) / (1 + np.exp(v) + np.exp(u))
    assert int(policies.optimal_policy(None, None, state, params)) == int(np.argmax(grid * share))


def test_price_to_action_inverts_the_bin_centres_and_the_tanh_map():
    sku = _sku()
    for mode in ("daily", "markdown"):
        params = make_params(mode=mode, num_prices=9)
        grid = price_grid(sku, params)
        actions = jax.vmap(lambda p, params=params: price_to_action(p, sku, params))(grid)
        np.testing.assert_array_equal(actions, np.arange(9))
    cont = make_params(action_type="continuous")
    a = jnp.linspace(-1, 1, 7)
    from jaxretail.envs.pricing import action_price

    prices = jax.vmap(lambda x: action_price(x, sku, cont)[0])(a)
    np.testing.assert_allclose(prices, 60.0 + (a + 1) * 20.0, rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(lambda p: price_to_action(p, sku, cont))(prices), a, atol=1e-6)


@pytest.mark.parametrize("action_type", ["discrete", "continuous"])
def test_no_nan_with_zero_traffic_zero_stock_and_a_flat_price_range(action_type):
    cases = [
        make_params(action_type=action_type, mode="markdown", initial_stock=0.0, sku=_sku()),
        make_params(
            action_type=action_type,
            reward="drcr",
            relative=True,
            sku=_sku(base_uv=0.0, p_min=80.0, p_max=80.0),
        ),
    ]
    for i, params in enumerate(cases):
        keys = jax.random.split(jax.random.key(0), 8)
        rec = lambda tr: (tr.reward, tr.info["price"], tr.info["rcr"], tr.terminated)
        obs, state, (r, price, rcr, term) = rollout(
            ENV, policies.random_policy, jax.random.key(1), params, keys, 6, record=rec
        )
        for x in (obs, r, price, rcr, *jax.tree.leaves(state)):
            if jnp.issubdtype(x.dtype, jnp.floating):
                assert np.isfinite(np.asarray(x)).all()
        if i == 0:
            assert np.asarray(term[0]).all()  # zero stock: the markdown episode ends on its first day


@pytest.mark.parametrize("action_type", ["continuous", "discrete"])
def test_invalid_actions_follow_the_library_rule(action_type):
    """An error outside jit; inside jit the projected action (clipped; NaN -> the point nearest 0) is
    stepped and flagged; a wrong shape or a float level is always an error (jaxretail.core.actions)."""
    params = make_params(action_type=action_type, num_prices=10, sku=_sku())
    obs, state = ENV.reset(jax.random.key(0), params)
    step = jax.jit(ENV.step_env)
    if action_type == "continuous":
        bad = [(jnp.array([1.5]), jnp.array([1.0])), (jnp.array([jnp.nan]), jnp.array([0.0]))]
        wrong = [jnp.float32(0.3), jnp.array([0.1, 0.2])]
    else:
        bad = [(jnp.int32(10), jnp.int32(9)), (jnp.int32(-1), jnp.int32(0))]
        wrong = [jnp.float32(3.5), jnp.array([3])]
    for action, projected in bad:
        with pytest.raises(ValueError, match="action must be"):
            ENV.step_env(jax.random.key(1), state, action, params)
        _, new, r, *_, info = step(jax.random.key(1), state, action, params)
        _, ref, r_ref, *_, info_ref = step(jax.random.key(1), state, projected, params)
        assert bool(info["invalid_action"]) and not bool(info_ref["invalid_action"])
        assert float(r) == float(r_ref) and float(info["price"]) == float(info_ref["price"])
        assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(new) if x.dtype != jnp.int32)
    for action in wrong:
        with pytest.raises(ValueError, match="action"):
            step(jax.random.key(1), state, action, params)


def test_count_sampler_matches_poisson():
    u = jax.random.uniform(jax.random.key(0), (200_000,), minval=1e-7, maxval=1.0)
    for mean in (0.3, 4.0, 11.0):
        k = np.asarray(poisson_from_uniform(u, jnp.full(u.shape, mean)))
        counts = np.bincount(k.astype(int), minlength=30)[:30] / k.size
        np.testing.assert_allclose(counts, scipy.stats.poisson.pmf(np.arange(30), mean), atol=4e-3)
    k = np.asarray(poisson_from_uniform(u, jnp.full(u.shape, 400.0)))
    assert abs(k.mean() - 400.0) < 0.3 and abs(k.var() / 400.0 - 1.0) < 0.02


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (
            dict(mode="markdown", initial_stock=-3.0),
            "initial_stock must be a finite number >= 0.0, got initial_stock=-3.0",
        ),
        (dict(num_prices=1), "num_prices must be an integer >= 2, got num_prices=1"),
        (dict(lag=0), "lag must be an integer >= 1, got lag=0"),
        (dict(reward="profit_margin"), "reward must be one of"),
        (dict(mode="hourly"), "mode must be one of"),
        (dict(initial_stock=float("nan")), "initial_stock must be a finite number"),
        (dict(shock_sd=float("inf")), "shock_sd must be a finite number"),
    ],
)
def test_bad_params_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match.replace("(", r"\(").replace(")", r"\)")):
        make_params(**kwargs)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(unit_cost=-1.0), "unit_cost must be a finite number >= 0.0, got unit_cost=-1.0"),
        (dict(p_min=90.0, p_max=80.0), "p_min must be <= p_max, got p_min=90.0, p_max=80.0"),
        (dict(list_price=float("nan")), "list_price must be a finite number > 0.0"),
        (dict(conversion=0.7), "conversion must be"),
    ],
)
def test_bad_sku_raises_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_sku(**{"list_price": 100.0, **kwargs})


def test_willingness_to_pay_is_the_indifference_price():
    """``choice.pricing.willingness_to_pay``: at p = WTP the random utility of buying is 0 (the outside
    option's), above it negative, below it positive; the offers generator's draws use it."""
    cp = choice_pricing
    rng = np.random.default_rng(0)
    u, c, ref = rng.normal(size=200), -rng.uniform(0.5, 5.0, 200), rng.uniform(1.0, 10.0, 200)
    wtp = np.asarray(cp.willingness_to_pay(jnp.asarray(u), jnp.asarray(c), jnp.asarray(ref)))
    buy = lambda p: u + c * np.log(p / ref)  # noqa: E731
    np.testing.assert_allclose(buy(wtp), 0.0, atol=1e-5)
    assert np.all(buy(wtp * 1.01) < 0) and np.all(buy(wtp * 0.99) > 0)
    assert np.isfinite(np.asarray(cp.willingness_to_pay(jnp.float32(1e6), jnp.float32(0.0), 1.0)))
