"""Coupon environment: each stage against its closed form, monotonicity, summaries, numerics, API."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxretail.choice import tiled
from jaxretail.envs.coupon import customer as cm
from jaxretail.envs.coupon import env as E  # noqa: N812
from jaxretail.envs.coupon import get_config, sample_scenario
from jaxretail.envs.coupon.configs import Dist

U = 256


@pytest.fixture(scope="module")
def setup():
    cfg = get_config("benchmark")
    sc = sample_scenario(jax.random.key(0), cfg, U, base_prices="paper")
    params = E.make_params(sc, cfg, block_size=128)
    env = E.CouponEnv(params)
    return cfg, params, env


def _customers(params, seeds, coupon, redeemed=None):
    ids = jnp.arange(params.num_customers, dtype=jnp.uint32)
    hashes = E._customer_hashes(seeds, ids)
    return cm.CustomerWeek(
        customer_hashes=hashes,
        category_hashes=E.category_hashes(seeds, ids),
        beta_w_customer=params.scenario.beta_w_customer,
        coupon=jnp.broadcast_to(
            jnp.asarray(coupon, jnp.float32), (ids.shape[0], params.config.num_categories)
        ),
        redeemed=jnp.ones(ids.shape) if redeemed is None else redeemed,
        x_chi2=E.observed_feature_totals(params, seeds["week"], seeds)[0],
        x_total=E.observed_feature_totals(params, seeds["week"], seeds)[1],
    )


def _week(params, week, coupon=0.0):
    seeds = {**E.stream_seeds(params.scenario, jnp.asarray(week)), "week": jnp.asarray(week)}
    tiles = E.week_tiles(params, params.scenario.base_price, seeds)
    layout = E.layout_for(params.config.category_sizes)
    cust = _customers(params, seeds, coupon)
    opts = E.model_options(params)
    out = jax.jit(jax.vmap(lambda t, c: cm.purchase_week(t, c, opts, layout), in_axes=(None, 0)))(tiles, cust)
    return out, tiles, cust, layout


def test_visit_frequency_matches_ar_probability(setup):
    _, params, env = setup
    _, state = env.reset(jax.random.key(0), params)
    action = jnp.zeros(U, jnp.int32)
    visits, probs = [], []
    week = jax.jit(E.simulate_week)  # one compiled week (calling it eagerly compiles ~150 small programs)
    for _ in range(8):
        out = week(state, action, params)
        visits.append(np.asarray(out["info"]["visited"]))
        probs.append(np.asarray(out["visit_probability"]))
        state = out["state"]
    v, p = np.array(visits[1:]), np.array(probs[1:])  # week 0 keeps p = 1 (first step of a trajectory)
    assert visits[0].all() and np.allclose(probs[0], 1.0)
    z = (v.sum() - p.sum()) / np.sqrt((p * (1 - p)).sum())
    assert abs(z) < 4, z
    # recursion p_t = (1 - theta) sigmoid(g0 + g1 V SV + g2 M) + theta p_{t-1}, checked for week 1 by hand
    sc = params.scenario
    st0 = env.reset(jax.random.key(0), params)[1]
    out0 = week(st0, action, params)
    st1 = out0["state"]
    s = jax.nn.sigmoid(
        sc.visit_intercept
        + sc.visit_slope * jnp.where(st1.visited, st1.store_value, 0.0)
        + sc.marketing_weight * st1.marketing
    )
    expected = (1 - sc.visit_inertia) * s + sc.visit_inertia * st1.visit_probability
    np.testing.assert_allclose(week(st1, action, params)["visit_probability"], expected, rtol=1e-5)


def test_category_purchase_matches_logistic_and_quantity_matches_shifted_poisson(setup):
    _, params, _ = setup
    bought, prob, qty, rate = [], [], [], []
    for week in range(6):
        out, *_ = _week(params, week)
        bought.append(np.asarray(out["quantity"]) > 0)
        prob.append(np.asarray(out["category_probability"]))
        qty.append(np.asarray(out["quantity"]))
        rate.append(np.asarray(out["rate"]))
    b, p = np.concatenate(bought), np.concatenate(prob)
    z = (b.sum() - p.sum()) / np.sqrt((p * (1 - p)).sum())
    assert abs(z) < 4, z
    q, lam = np.concatenate(qty)[b], np.concatenate(rate)[b]
    assert q.min() >= 1
    z = ((q - 1).sum() - lam.sum()) / np.sqrt(lam.sum())  # Poisson: variance = mean
    assert abs(z) < 4, z


def test_category_values_and_product_shares_match_mnl(setup):
    _, params, _ = setup
    seeds = {**E.stream_seeds(params.scenario, jnp.asarray(0)), "week": jnp.asarray(0)}
    tiles = E.week_tiles(params, params.scenario.base_price, seeds)
    layout = E.layout_for(params.config.category_sizes)
    cust = jax.tree.map(lambda a: a[0], _customers(params, seeds, 0.0))
    mu = cm.utilities(tiles, cust, E.model_options(params)).reshape(layout.product.shape)
    iv = tiled.inclusive_values(mu, layout)
    mu_np = np.asarray(mu, np.float64)
    flat = np.full(params.config.num_products, -np.inf)
    flat[layout.product[layout.valid]] = mu_np[layout.valid]
    cat = np.asarray(params.scenario.category)
    cv_ref = np.array([np.logaddexp.reduce(flat[cat == j]) for j in range(params.config.num_categories)])
    np.testing.assert_allclose(iv["cv"], cv_ref, rtol=1e-4, atol=1e-3)
    # product choice in category 5 (145 products, 5 rows): 40,000 inverse-CDF draws vs MNL shares
    draws = 40_000
    u = jax.random.uniform(jax.random.key(1), (draws, params.config.num_categories))
    rows, slots = jax.jit(jax.vmap(lambda uu: tiled.sample(uu, mu, iv, layout)))(u)
    chosen = layout.product[np.asarray(rows)[:, 5], np.asarray(slots)[:, 5]]
    members = np.flatnonzero(cat == 5)
    assert np.isin(chosen, members).all()
    share = np.exp(flat[members] - flat[members].max())
    share /= share.sum()
    counts = np.array([(chosen == i).sum() for i in members])
    keep = share * draws >= 5
    expected = share[keep] * draws
    observed = counts[keep]
    chi2 = ((observed - expected) ** 2 / expected).sum()
    assert stats.chi2.sf(chi2, keep.sum() - 1) > 1e-3


def test_tiled_choice_is_the_exact_inverse_cdf_of_each_category():
    """Inclusive values and the row-then-slot choice on a layout with one-row and many-row categories whose
    utilities lie hundreds apart, against a float64 NumPy inverse CDF over each category's products."""
    sizes = (1, 40, 3, 200, 33)
    layout = tiled.make_layout(sizes, row_width=8)
    rng = np.random.default_rng(3)
    offsets = np.repeat([0.0, -300.0, 40.0, -5.0, 200.0], sizes)
    flat = rng.normal(0, 2, sum(sizes)) + offsets
    mu = np.full(layout.product.shape, -np.inf, np.float32)
    mu[layout.valid] = flat[layout.product[layout.valid]]
    iv = tiled.inclusive_values(jnp.asarray(mu), layout)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    cv_ref = np.array([np.logaddexp.reduce(flat[a : a + n]) for a, n in zip(starts, sizes, strict=True)])
    np.testing.assert_allclose(np.asarray(iv["cv"], np.float64), cv_ref, rtol=1e-6, atol=1e-5)
    assert float(iv["sv"]) == pytest.approx(np.logaddexp.reduce(cv_ref), rel=1e-6)
    grid = (np.arange(4000) + 0.5) / 4000
    u = jnp.asarray(np.repeat(grid[:, None], len(sizes), axis=1), jnp.float32)
    rows, slots = jax.jit(jax.vmap(lambda uu: tiled.sample(uu, jnp.asarray(mu), iv, layout)))(u)
    chosen = layout.product[np.asarray(rows), np.asarray(slots)]  # [draws, J]
    for j, (a, n) in enumerate(zip(starts, sizes, strict=True)):
        share = np.exp(flat[a : a + n] - flat[a : a + n].max())
        cum = np.cumsum(share / share.sum())
        ref = a + np.minimum(np.searchsorted(cum, grid, side="left"), n - 1)
        near = np.abs(cum[np.clip(ref - a, 0, n - 1)] - grid) < 1e-5  # float32 boundary cases
        assert np.all((chosen[:, j] == ref) | near), j
        assert np.all((chosen[:, j] >= a) & (chosen[:, j] < a + n))


def test_larger_coupon_never_lowers_purchase_probability(setup):
    _, params, _ = setup
    probs = [np.asarray(_week(params, 3, coupon)[0]["category_probability"]) for coupon in (0.0, 0.1, 0.5)]
    assert np.all(probs[1] >= probs[0] - 1e-7) and np.all(probs[2] >= probs[1] - 1e-7)
    assert np.mean(probs[2] > probs[0]) > 0.5


def test_summaries_match_numpy_recomputation(setup):
    _, params, env = setup
    obs, state = env.reset(jax.random.key(0), params)
    np.testing.assert_array_equal(obs, 0.0)
    rng = np.random.default_rng(0)
    step = jax.jit(E.simulate_week)
    lines, coupons = [], []
    for _ in range(5):
        action = jnp.asarray(rng.integers(0, 11, U), jnp.int32)
        out = step(state, action, params)
        state = out["state"]
        lines.append(jax.tree.map(np.asarray, out["lines"]))
        coupons.append(0.05 * np.asarray(action))
    q = np.array([ln["quantity"] for ln in lines])  # [T, U, J]
    bought = q > 0
    items = q.sum(2)
    shelf = np.array([ln["shelf_price"] for ln in lines])
    base = np.array([ln["base_price"] for ln in lines])
    paid = np.array([ln["paid_price"] for ln in lines])
    n_lines = bought.sum((0, 2))
    purchase_weeks = (items > 0).sum(0)
    avg_qty = np.where(purchase_weeks > 0, items.sum(0) / np.maximum(purchase_weeks, 1), 0)
    avg_price = np.where(bought, shelf, 0).sum((0, 2)) / np.maximum(n_lines, 1)
    avg_disc = np.where(bought, 1 - shelf / base, 0).sum((0, 2)) / np.maximum(n_lines, 1)
    has = n_lines > 0
    avg_price = np.where(has, avg_price, avg_price[has].mean())
    avg_disc = np.where(has, avg_disc, avg_disc[has].mean())
    red = (bought & (paid < shelf)).sum(2)  # [T, U]
    red_value = (red * np.array(coupons)).sum(0)
    red_lines = red.sum(0)
    avg_red = np.where(red_lines > 0, red_value / np.maximum(red_lines, 1), 0)
    avg_red = np.where(red_lines > 0, avg_red, avg_red[red_lines > 0].mean())
    ctx = np.asarray(E.context(state, params))
    np.testing.assert_allclose(ctx[:, 0], items[-1] / params.config.num_products, rtol=1e-6)
    np.testing.assert_allclose(ctx[:, 4], avg_qty, rtol=1e-5)
    np.testing.assert_allclose(ctx[:, 5], purchase_weeks / 5, rtol=1e-6)
    np.testing.assert_allclose(ctx[:, 6], avg_price, rtol=1e-5)
    np.testing.assert_allclose(ctx[:, 7], avg_red, rtol=1e-5)
    np.testing.assert_allclose(ctx[:, 8], avg_disc, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out["reward"], (q[-1] * paid[-1]).sum(1), rtol=1e-5)


def test_extreme_legal_parameters_stay_finite():
    cfg = get_config(
        "benchmark",
        beta_w_customer=Dist.of("TruncatedNormal", loc=-40.0, scale=5.0, high=0.0),
        beta_x=Dist.of("LogNormal", loc=2.0, scale=1.5),
        category_slope=Dist.of("TruncatedNormal", loc=0.0, scale=0.001, low=0.0, high=0.12),
        coupon_levels=(0.0, 0.999),
        min_price=0.01,
    )
    sc = sample_scenario(jax.random.key(1), cfg, 64)
    params = E.make_params(sc, cfg, block_size=64)
    env = E.CouponEnv(params)
    obs, state = env.reset(jax.random.key(0), params)
    for a in (0, 1, 1):
        obs, state, reward, *_, info = env.step_env(
            jax.random.key(0), state, jnp.full(64, a, jnp.int32), params
        )
        chex.assert_tree_all_finite((obs, reward, info["demand"]))


def test_step_compiles_once_and_resume_equals_uninterrupted(setup):
    _, params, env = setup
    step = jax.jit(chex.assert_max_traces(env.step, n=1))
    obs, state = env.reset(jax.random.key(0), params)
    rewards = []
    for w in range(4):
        obs, state, r, *_ = step(jax.random.key(w), state, jnp.full(U, w % 11, jnp.int32), params)
        rewards.append(np.asarray(r))
    # resume: a state saved after 2 weeks and restored reproduces weeks 3 and 4 exactly
    _, s2 = env.reset(jax.random.key(0), params)
    for w in range(2):
        _, s2, *_ = step(jax.random.key(w), s2, jnp.full(U, w % 11, jnp.int32), params)
    restored = jax.tree.map(
        lambda x: (
            jnp.asarray(np.asarray(x)) if not jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x
        ),
        s2,
    )
    for w in range(2, 4):
        _, restored, r, *_ = step(jax.random.key(w), restored, jnp.full(U, w % 11, jnp.int32), params)
        np.testing.assert_array_equal(np.asarray(r), rewards[w])


def test_bad_env_arguments(setup):
    cfg, params, _ = setup
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="block_size"):
            E.make_params(params.scenario, cfg, block_size=bad)
    with pytest.raises(ValueError, match="sub_block_size"):
        E.make_params(params.scenario, cfg, block_size=100, sub_block_size=30)
    with pytest.raises(ValueError, match="discount_factor"):
        E.make_params(params.scenario, cfg, discount_factor=1.5)
    with pytest.raises(ValueError, match="products"):
        E.make_params(params.scenario, get_config("benchmark", category_sizes=(10, 10)))


def test_category_coupons_generalise_store_wide_coupons(setup):
    """Per-category coupons equal to a store-wide level reproduce it; a coupon on one category raises
    that category's purchase probability only."""
    cfg, params, _ = setup
    cat_params = E.make_params(params.scenario, cfg, block_size=128, coupon_scope="category")
    env_s, env_c = E.CouponEnv(params), E.CouponEnv(cat_params)
    _, st_s = env_s.reset(jax.random.key(0), params)
    _, st_c = env_c.reset(jax.random.key(0), cat_params)
    J = cfg.num_categories
    assert env_c.action_space(cat_params).shape == (U, J)
    out_s = E.simulate_week(st_s, jnp.full(U, 4, jnp.int32), params)
    out_c = E.simulate_week(st_c, jnp.full((U, J), 4, jnp.int32), cat_params)
    np.testing.assert_allclose(out_s["reward"], out_c["reward"], rtol=1e-5)
    np.testing.assert_allclose(out_s["obs"], out_c["obs"], rtol=1e-5, atol=1e-6)
    # coupon only on category 5: compare category purchase probabilities of visitors
    seeds = {**E.stream_seeds(params.scenario, jnp.asarray(0)), "week": jnp.asarray(0)}
    tiles = E.week_tiles(params, params.scenario.base_price, seeds)
    layout = E.layout_for(cfg.category_sizes)
    opts = E.model_options(params)
    base = _customers(params, seeds, jnp.zeros(J))
    one = base.replace(coupon=jnp.broadcast_to(jnp.zeros(J).at[5].set(0.5), (U, J)))
    run = jax.jit(jax.vmap(lambda c: cm.purchase_week(tiles, c, opts, layout)["category_probability"]))
    p0, p1 = np.asarray(run(base.replace(coupon=jnp.zeros((U, J))))), np.asarray(run(one))
    assert np.all(p1[:, 5] > p0[:, 5])
    np.testing.assert_allclose(np.delete(p1, 5, axis=1), np.delete(p0, 5, axis=1), rtol=1e-6)


def test_observed_feature_law_and_consistency_with_context(setup):
    """X = m + s z (m, z ~ N(0,1), s ~ HalfNormal): variance 2, kurtosis 4.5, E|s| = sqrt(2/pi); the
    context's mean observed feature is exactly the mean of the X that enters the utilities."""
    cfg, params, _ = setup
    layout = E.layout_for(cfg.category_sizes)
    valid = jnp.asarray(layout.valid)
    week = jnp.asarray(2)
    seeds = E.stream_seeds(params.scenario, week)
    chi2, total = E.observed_feature_totals(params, week, seeds)
    g = jax.random.normal(jax.random.key(0), (U,) + valid.shape)
    z0 = jax.random.normal(jax.random.key(1), (U,) + valid.shape)
    x = jax.vmap(cm.observed_feature, in_axes=(0, 0, 0, 0, None))(g, z0, chi2, total, valid)
    xs = np.asarray(x)[:, layout.valid]
    np.testing.assert_allclose(xs.mean(1), np.asarray(total) / cfg.num_products, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(xs.mean(1), E.mean_observed_feature(params, seeds, week), rtol=1e-4, atol=1e-6)
    flat = xs.ravel()
    assert abs(flat.mean()) < 0.01 and flat.var() == pytest.approx(2.0, rel=0.02)
    assert stats.kurtosis(flat, fisher=False) == pytest.approx(4.5, rel=0.05)
    assert np.asarray(chi2).mean() == pytest.approx(cfg.num_products, rel=0.01)


def test_accelerator_block_settings_simulate_the_same_customers_on_cpu():
    """An accelerator's settings (large visitor chunks, utilities of a whole chunk at once) run the same
    code on CPU at a small size and give the CPU settings' results."""
    cfg = get_config("benchmark", category_sizes=(7, 3, 12, 5))
    sc = sample_scenario(jax.random.key(2), cfg, 200)
    assert E.default_block_sizes("gpu") == (8192, 8192) and E.default_block_sizes("cpu") == (128, 32)
    big = E.make_params(sample_scenario(jax.random.key(2), cfg, 10_000), cfg, platform="gpu")
    assert (big.block_size, big.sub_block_size) == (8192, 8192)
    runs = []
    for params in (
        E.make_params(sc, cfg, platform="cpu", block_size=64, sub_block_size=32),
        E.make_params(sc, cfg, platform="gpu"),  # one chunk of 256 >= U, computed at once
        E.make_params(sc, cfg, block_size=100, sub_block_size=50),  # any block size: same customers
    ):
        env = E.CouponEnv(params)
        obs, state = env.reset(jax.random.key(0), params)
        step = jax.jit(E.simulate_week)
        out = []
        for w in range(2):
            res = step(state, (jnp.arange(200, dtype=jnp.int32) * (w + 2)) % 11, params)
            state = res["state"]
            out.append((res["reward"], res["info"]["visited"], res["obs"]))
        runs.append(jax.tree.map(np.asarray, out))
    assert runs[1][0][0].shape == (200,)
    assert E.make_params(sc, cfg, block_size=100).sub_block_size == 25
    for (r0, v0, o0), (r1, v1, o1) in zip(runs[0], runs[1], strict=True):
        np.testing.assert_array_equal(v0, v1)
        np.testing.assert_allclose(r0, r1, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(o0, o1, rtol=1e-5, atol=1e-6)
    for (r0, v0, o0), (r2, v2, o2) in zip(runs[0], runs[2], strict=True):  # same CPU code: bitwise
        np.testing.assert_array_equal(v0, v2)
        np.testing.assert_array_equal(r0, r2)
        np.testing.assert_array_equal(o0, o2)
