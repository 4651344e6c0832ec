"""Coupon benchmark scenario layer: configurations, latent draws, counter RNG, shelf-price chain."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxretail.core.counter_rng import hash_normal, hash_uniform
from jaxretail.envs.coupon import (
    customer_product_latents,
    get_config,
    initial_shelf_state,
    paper_base_prices,
    sample_scenario,
    shelf_step,
    stationary_discount_frequency,
)
from jaxretail.envs.coupon.configs import Dist


@pytest.mark.parametrize("name", ["benchmark", "hfhd", "calibrated"])
def test_named_configs_sample_with_spec_shapes(name):
    cfg = get_config(name)
    assert cfg.num_products == 2514 and cfg.num_categories == 30
    s = sample_scenario(jax.random.key(0), cfg, 50)
    assert (
        s.base_price.shape == (2514,) and s.beta_w_customer.shape == (50,) and s.category_slope.shape == (30,)
    )
    assert float(s.base_price.min()) >= cfg.min_price
    assert float(s.beta_w_product.max()) <= 0 and float(s.beta_w_customer.max()) <= 0
    assert float(s.category_slope.min()) >= 0 and float(s.category_slope.max()) <= 0.12
    np.testing.assert_array_equal(np.bincount(np.asarray(s.category)), cfg.category_sizes)


def test_base_prices_identical_across_simulations_and_paper_mode():
    cfg = get_config("benchmark")
    a = sample_scenario(jax.random.key(1), cfg, 10)
    b = sample_scenario(jax.random.key(2), cfg, 10)
    np.testing.assert_array_equal(a.base_price, b.base_price)
    assert not np.array_equal(a.beta_w_product, b.beta_w_product)
    paper = sample_scenario(jax.random.key(1), cfg, 10, base_prices="paper")
    category, price, z = paper_base_prices()
    np.testing.assert_allclose(paper.base_price, price, rtol=1e-6)
    np.testing.assert_array_equal(paper.category, category)
    # published sanity values of the original draw (coupon.md §1.8)
    assert np.median(price) == pytest.approx(1.95, abs=0.01) and price.max() == pytest.approx(12.3, abs=0.05)
    assert np.mean(price <= 1.0) == pytest.approx(0.14, abs=0.01) and z.mean() == pytest.approx(
        1.08, abs=0.01
    )


def test_customer_level_draws_match_truncated_normal_mean():
    cfg = get_config("benchmark")
    s = sample_scenario(jax.random.key(3), cfg, 20_000)
    expected = stats.truncnorm(-np.inf, (0 + 3) / 1.5, loc=-3, scale=1.5).mean()
    assert float(s.beta_w_customer.mean()) == pytest.approx(expected, abs=0.03)
    theta = np.asarray(s.visit_inertia)
    assert theta.min() >= 0.25 and theta.max() <= 0.45 and abs(theta.mean() - 0.35) < 0.002


def test_independent_keys_by_default_and_legacy_coupling_on_request():
    cfg = get_config("benchmark")
    clean = sample_scenario(jax.random.key(4), cfg, 5000)
    legacy = sample_scenario(jax.random.key(4), cfg, 5000, legacy_coupling=True)
    rho = lambda a, b: stats.spearmanr(np.asarray(a), np.asarray(b)).statistic
    assert abs(rho(clean.visit_inertia, clean.beta_w_customer)) < 0.05
    assert abs(rho(legacy.visit_inertia, legacy.beta_w_customer)) > 0.999
    assert not np.array_equal(clean.discount_start, clean.discount_stay)
    np.testing.assert_array_equal(legacy.discount_start, legacy.discount_stay)
    lat = customer_product_latents(legacy, cfg, jnp.arange(20))
    assert np.corrcoef(np.log(lat["beta_z"]).ravel(), np.log(lat["beta_x"]).ravel())[0, 1] > 0.999
    lat = customer_product_latents(clean, cfg, jnp.arange(20))
    assert abs(np.corrcoef(np.log(lat["beta_z"]).ravel(), np.log(lat["beta_x"]).ravel())[0, 1]) < 0.05


def test_streamed_latents_depend_only_on_global_ids():
    cfg = get_config("benchmark")
    s = sample_scenario(jax.random.key(5), cfg, 100)
    full = customer_product_latents(s, cfg, jnp.arange(40))
    part = customer_product_latents(s, cfg, jnp.array([37, 3, 12]))
    for k in full:
        np.testing.assert_array_equal(part[k], full[k][np.array([37, 3, 12])])
    logx = np.log(np.asarray(full["beta_x"])).ravel()  # LogNormal(-1, 1)
    assert logx.mean() == pytest.approx(-1.0, abs=0.02) and logx.std() == pytest.approx(1.0, abs=0.02)


def test_counter_rng_uniform_and_decorrelated():
    u = np.asarray(hash_uniform(jnp.uint32(7), jnp.arange(200)[:, None], jnp.arange(500)[None, :])).ravel()
    assert u.min() > 0.0 and u.max() < 1.0
    counts = np.histogram(u, bins=50, range=(0, 1))[0]
    assert stats.chisquare(counts).pvalue > 1e-3
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.01
    z = np.asarray(hash_normal(jnp.uint32(8), jnp.arange(100_000)))
    assert stats.kstest(z, "norm").pvalue > 1e-3


def test_shelf_discount_frequency_matches_stationary_value():
    cfg = get_config("benchmark")
    s = sample_scenario(jax.random.key(6), cfg, 10)
    weeks = 400

    def body(state, key):
        state, discount, price = shelf_step(key, state, s, cfg)
        return state, (state.discounted, discount, price)

    _, (on, discount, price) = jax.lax.scan(
        body, initial_shelf_state(cfg.num_products), jax.random.split(jax.random.key(0), weeks)
    )
    freq = np.asarray(on[50:]).mean()  # burn-in from S_0 = 0
    expected = float(stationary_discount_frequency(s).mean())
    assert freq == pytest.approx(expected, abs=0.01)
    depth = np.asarray(discount)[np.asarray(on)]
    assert depth.mean() == pytest.approx(0.5, abs=0.005)  # Beta(50, 50)
    assert float(price.min()) >= cfg.min_price
    np.testing.assert_allclose(
        np.asarray(price)[~np.asarray(on)],
        np.broadcast_to(np.asarray(s.base_price), price.shape)[~np.asarray(on)],
        rtol=1e-6,
    )


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"category_sizes": (3, -1)}, "category_sizes"),
        ({"category_sizes": ()}, "category_sizes"),
        ({"redemption_rate": 1.5}, "redemption_rate"),
        ({"coupon_levels": (0.0, 1.0)}, "coupon_levels"),
        ({"coupon_levels": (-0.1,)}, "coupon_levels"),
        ({"marketing_mode": "tv"}, "marketing_mode"),
        ({"discount_depth": Dist.of("Beta", concentration1=0.0, concentration0=2.0)}, "discount_depth"),
        ({"utility_clip_percentile": 0.0}, "utility_clip_percentile"),
    ],
)
def test_bad_scenario_config_raises_clear_error(overrides, field):
    with pytest.raises(ValueError, match=field):
        get_config("benchmark", **overrides)


def test_bad_sampling_arguments():
    cfg = get_config("benchmark")
    with pytest.raises(ValueError, match="num_customers"):
        sample_scenario(jax.random.key(0), cfg, 0)
    with pytest.raises(ValueError, match="base_prices"):
        sample_scenario(jax.random.key(0), cfg, 5, base_prices="real")
    with pytest.raises(ValueError, match="benchmark catalogue"):
        sample_scenario(
            jax.random.key(0), get_config("benchmark", category_sizes=(4, 4)), 5, base_prices="paper"
        )
    with pytest.raises(ValueError, match="unknown scenario configuration"):
        get_config("paper2")
