"""Counter-based random numbers of the coupon simulator: open-interval uniforms, finite derived draws,
independent two-index draws (no symmetric pairs, no fixed diagonal), the documented latent tastes, and
the exact streamed utility percentile."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxretail.core import counter_rng as rng
from jaxretail.envs.coupon import customer as cm
from jaxretail.envs.coupon import env as E  # noqa: N812
from jaxretail.envs.coupon import get_config, sample_scenario
from jaxretail.envs.coupon.clip import from_order_key, order_key, streamed_percentile
from jaxretail.envs.coupon.generator import customer_product_latents

EXTREME = np.array(
    [0, 1, 0x1FF, 0x200, 0x7FFFFFFF, 0x80000000, 0xFFFFFDFF, 0xFFFFFE00, 0xFFFFFF00, 0xFFFFFFFE, 0xFFFFFFFF],
    np.uint32,
)


@pytest.mark.parametrize("x64", [False, True])
def test_uniforms_strictly_inside_unit_interval_and_derived_draws_finite(x64):
    with jax.enable_x64(x64):
        u = rng.bits_to_uniform(jnp.asarray(EXTREME))
        assert u.dtype == jnp.float32
        u64 = np.asarray(u, np.float64)
        assert (u64 > 0).all() and (u64 < 1).all()
        assert u64.min() == rng.UNIFORM_MIN and u64.max() == rng.UNIFORM_MAX
        z = np.asarray(rng.uniform_to_normal(u))
        g = np.asarray(rng.uniform_to_gumbel(u, 0.1))
        ln = np.asarray(jnp.exp(jnp.float32(1.0) + jnp.float32(0.4) * rng.uniform_to_normal(u)))
        assert np.isfinite(z).all() and np.isfinite(g).all() and np.isfinite(ln).all() and (ln > 0).all()
        assert np.abs(z).max() < 5.5
        np.testing.assert_allclose(z[0], -z[-1], rtol=1e-6)  # symmetric extremes
        # the grid is exact: k + 1/2 in units of 2^-23 from the top 23 bits
        np.testing.assert_array_equal(u64, ((EXTREME >> 9).astype(np.float64) + 0.5) * 2.0**-23)


def test_transposed_pairs_uncorrelated_and_diagonal_uniform():
    n = 300
    seed = jnp.uint32(12345)
    ids = jnp.arange(n)
    a = np.asarray(rng.pair_uniform(seed, ids[:, None], ids[None, :]))
    off = ~np.eye(n, dtype=bool)
    r = np.corrcoef(a[off], a.T[off])[0, 1]
    assert abs(r) < 4 / np.sqrt(off.sum() / 2), r
    assert np.mean(a[off] == a.T[off]) < 1e-3
    diag = np.asarray(rng.pair_uniform(seed, jnp.arange(20_000), jnp.arange(20_000)))
    assert stats.kstest(diag, "uniform").pvalue > 1e-3
    # the diagonal is not fixed across streams (weeks use other seeds)
    other = np.asarray(rng.pair_uniform(jnp.uint32(777), jnp.arange(2000), jnp.arange(2000)))
    assert np.corrcoef(diag[:2000], other)[0, 1] < 0.1 and len(np.unique(diag)) > 19_900


def _pair_chi2(x, y, bins=10):
    h = np.histogram2d(x, y, bins=bins, range=[[0, 1], [0, 1]])[0]
    expected = len(x) / bins**2
    return stats.chi2.sf(((h - expected) ** 2 / expected).sum(), bins**2 - 1)


def test_neighbouring_customers_products_and_weeks_independent():
    cfg = get_config("benchmark")
    sc = sample_scenario(jax.random.key(3), cfg, 8, base_prices="draw")
    seeds = [E.stream_seeds(sc, jnp.asarray(t))["weekly"][11] for t in (4, 5)]  # the Gumbel stream
    u = jnp.arange(201)[:, None]
    i = jnp.arange(401)[None, :]
    w4, w5 = (np.asarray(rng.pair_uniform(s, u, i)) for s in seeds)
    assert stats.kstest(w4.ravel(), "uniform").pvalue > 1e-3
    for x, y in ((w4[:-1], w4[1:]), (w4[:, :-1], w4[:, 1:]), (w4, w5)):  # customer u+1, product i+1, week t+1
        assert _pair_chi2(x.ravel(), y.ravel()) > 1e-3


def test_documented_latent_tastes_equal_what_the_environment_uses():
    cfg = get_config("benchmark")
    sc = sample_scenario(jax.random.key(4), cfg, 70, base_prices="paper")
    params = E.make_params(sc, cfg, block_size=64)
    seeds = E.stream_seeds(sc, jnp.asarray(2))
    tiles = E.week_tiles(params, sc.base_price, seeds)
    ids = jnp.array([0, 5, 69], jnp.uint32)
    hashes = E._customer_hashes(seeds, ids)
    env_tastes = jax.vmap(lambda h: cm.tastes(h, tiles.product_consts, E.model_options(params)))(hashes)
    documented = customer_product_latents(sc, cfg, ids)
    layout = E.layout_for(cfg.category_sizes)
    for name, value in documented.items():
        np.testing.assert_array_equal(
            np.asarray(env_tastes[name])[:, layout.valid.ravel()],
            np.asarray(value)[:, layout.product[layout.valid]],
        )
    # transposed customer / product pairs of a taste are unrelated
    lat = np.log(np.asarray(customer_product_latents(sc, cfg, jnp.arange(60))["beta_z"])[:, :60])
    off = ~np.eye(60, dtype=bool)
    assert abs(np.corrcoef(lat[off], lat.T[off])[0, 1]) < 0.15


def test_order_key_is_monotone_and_invertible():
    x = np.array([-np.inf, -3e38, -1.5, -1e-40, -0.0, 0.0, 1e-40, 2.5, 3e38, np.inf], np.float32)
    k = np.asarray(order_key(jnp.asarray(x)))
    assert (np.diff(k.astype(np.int64)) >= 0).all()
    np.testing.assert_array_equal(np.asarray(from_order_key(jnp.asarray(k))), x)


@pytest.mark.parametrize("q", [99.99, 99.0, 50.0, 100.0])
def test_streamed_percentile_equals_numpy(q):
    r = np.random.default_rng(0)
    x = (r.standard_normal(12_000) * 4).astype(np.float32)
    x[::7] = np.round(x[::7])  # ties
    mask = r.random(12_000) < 0.9
    xb, mb = jnp.asarray(x.reshape(12, 1000)), jnp.asarray(mask.reshape(12, 1000))
    got = jax.jit(lambda: streamed_percentile(lambda b: (xb[b], mb[b]), 12, q, count=int(mask.sum())))()
    ref = np.percentile(x[mask].astype(np.float64), q)
    np.testing.assert_allclose(float(got), ref, rtol=2e-7, atol=1e-6)


def test_env_clip_is_the_percentile_of_the_weeks_customer_product_utilities():
    cfg = get_config("benchmark", category_sizes=(7, 3, 12, 5), utility_clip_percentile=99.0)
    sc = sample_scenario(jax.random.key(5), cfg, 100)
    params = E.make_params(sc, cfg, block_size=64, utility_clip="percentile")
    _, state = E.CouponEnv(params).reset(jax.random.key(0), params)
    action = jnp.arange(100, dtype=jnp.int32) % 11
    out = jax.jit(E.simulate_week)(state, action, params)
    # reference: materialise every customer's utilities of that week, unclipped
    seeds = E.stream_seeds(sc, state.t)
    tiles = E.week_tiles(params, state.price, seeds)
    ids = jnp.arange(100, dtype=jnp.uint32)
    coupon, _ = E.coupon_fractions(action, params)
    chi2, total = E.observed_feature_totals(params, state.t, seeds)
    cust = cm.CustomerWeek(
        E.customer_hashes(seeds, ids), E.category_hashes(seeds, ids), sc.beta_w_customer, coupon,
        jnp.ones(100), chi2, total,
    )  # fmt: skip
    valid = E.layout_for(cfg.category_sizes).valid.ravel()
    mu = np.asarray(jax.vmap(lambda c: cm.utilities(tiles, c, E.model_options(params)))(cust))[:, valid]
    ref = np.percentile(mu.astype(np.float64), 99.0)
    np.testing.assert_allclose(float(out["utility_cap"]), ref, rtol=1e-6)
    assert float(out["utility_cap"]) < float(mu.max())


def test_sincos_turn_matches_numpy_on_the_angle_grid():
    k = np.concatenate([np.arange(0, 2**23, 97), ((np.arange(9) << 20)[:, None] + np.arange(-2, 2)).ravel()])
    k = k.ravel().clip(0, 2**23 - 1).astype(np.uint32)  # a strided grid and each octant boundary
    s, c = (np.asarray(v, np.float64) for v in jax.jit(rng.sincos_turn)(jnp.asarray(k << 9)))
    t = 2 * np.pi * (k.astype(np.float64) + 0.5) * 2.0**-23
    assert np.abs(s - np.sin(t)).max() < 2e-7 and np.abs(c - np.cos(t)).max() < 2e-7
    assert np.isfinite(s).all() and (s != 0).all() and (c != 0).all()  # never on an axis


def test_box_muller_pairs_are_independent_standard_normals():
    n = 60_000
    words = np.asarray(rng.hash_bits(jnp.uint32(9), jnp.arange(2 * n)), np.uint32).reshape(2, n)
    z1, z2 = (
        np.asarray(v, np.float64) for v in rng.normal_pair(jnp.asarray(words[0]), jnp.asarray(words[1]))
    )
    for z in (z1, z2):
        assert stats.kstest(z, "norm").pvalue > 1e-3
        assert abs(stats.kurtosis(z)) < 0.06 and abs(stats.skew(z)) < 0.03
    se = 4 / np.sqrt(n)
    assert abs(np.corrcoef(z1, z2)[0, 1]) < se and abs(np.corrcoef(z1**2, z2**2)[0, 1]) < se
    # their polar angle is uniform (the pair is rotation invariant) and the radius is Rayleigh
    assert stats.kstest(np.arctan2(z2, z1), "uniform", args=(-np.pi, 2 * np.pi)).pvalue > 1e-3
    assert stats.kstest(np.hypot(z1, z2), "rayleigh").pvalue > 1e-3
    # extreme words: finite, |z| <= sqrt(-2 log 2^-24)
    a, b = np.meshgrid(EXTREME, EXTREME)
    e1, e2 = (np.asarray(v) for v in rng.normal_pair(jnp.asarray(a.ravel()), jnp.asarray(b.ravel())))
    assert np.isfinite(e1).all() and np.isfinite(e2).all()
    assert max(np.abs(e1).max(), np.abs(e2).max()) <= np.sqrt(-2 * np.log(2.0**-24)) + 1e-5


def test_half_turn_normal_and_square_law():
    """(z, w^2) of normal_and_square: z ~ N(0, 1) and w^2 ~ chi^2_1, independent; the angle's sine matches
    NumPy on the grid and a precomputed sine gives the same draws."""
    k = np.concatenate([np.arange(0, 2**23, 89), [0, 2**22 - 1, 2**22, 2**23 - 1]]).astype(np.uint32)
    s = np.asarray(jax.jit(rng.half_turn_sine)(jnp.asarray(k << 9)), np.float64)
    r = (k & 0x3FFFFF).astype(np.float64) + 0.5
    t = np.where(k >> 22 == 1, -1.0, 1.0) * np.pi / 2 * r * 2.0**-22
    assert np.abs(s - np.sin(t)).max() < 2e-7 and np.abs(s).max() <= 1  # so that w^2 >= 0
    n = 60_000
    words = np.asarray(rng.hash_bits(jnp.uint32(21), jnp.arange(2 * n)), np.uint32).reshape(2, n)
    radius, angle = jnp.asarray(words[0]), jnp.asarray(words[1])
    z, w2 = (np.asarray(v, np.float64) for v in jax.jit(rng.normal_and_square)(radius, angle))
    assert stats.kstest(z, "norm").pvalue > 1e-3 and stats.kstest(w2, "chi2", args=(1,)).pvalue > 1e-3
    assert (w2 >= 0).all()
    se = 4 / np.sqrt(n)
    assert abs(np.corrcoef(z**2, w2)[0, 1]) < se and abs(np.corrcoef(z, w2)[0, 1]) < se
    given = jax.jit(lambda a, b: rng.normal_and_square(a, sine=rng.half_turn_sine(b)))(radius, angle)
    np.testing.assert_array_equal(np.asarray(given[0]), z.astype(np.float32))
    np.testing.assert_array_equal(np.asarray(given[1]), w2.astype(np.float32))


@pytest.mark.parametrize("rate", [0.0, 0.07, 0.9, 4.0, 15.0, 31.5])
def test_inverse_cdf_poisson_equals_the_closed_form_quantile(rate):
    u = np.asarray(rng.bits_to_uniform(rng.hash_bits(jnp.uint32(3), jnp.arange(50_000))), np.float64)
    n = np.asarray(jax.jit(rng.poisson_inverse_cdf)(jnp.asarray(u, jnp.float32), jnp.float32(rate)))
    ref = stats.poisson.ppf(u, rate) if rate > 0 else np.zeros_like(u)
    assert np.mean(n == ref) > 0.999  # float32 CDF: only draws at a quantile boundary may differ
    assert np.abs(n - ref).max() <= 1
    if rate > 0:
        assert abs(n.mean() - rate) < 4 * np.sqrt(rate / len(u))
    # the largest uniform lands in the far tail, never beyond it (float32 F may stop short of 1)
    top = int(rng.poisson_inverse_cdf(jnp.float32(rng.UNIFORM_MAX), jnp.float32(rate)))
    assert (
        top == 0
        if rate == 0
        else stats.poisson.ppf(1 - 1e-6, rate) <= top <= stats.poisson.ppf(1 - 1e-9, rate)
    )


def test_quantities_above_the_inverse_cdf_range_use_the_exact_sampler():
    from jaxretail.envs.coupon.week import exact_poisson_fallback

    b, j = 400, 4
    rate = jnp.broadcast_to(jnp.array([0.5, 40.0, 300.0, 0.0]), (b, j))
    need = rate > rng.POISSON_INVERSE_CDF_MAX_RATE
    lines = {"rate": rate, "needs_exact_poisson": need, "quantity": jnp.full((b, j), 7, jnp.int32)}
    q = np.asarray(exact_poisson_fallback(lines, jax.random.key(0), jnp.arange(b, dtype=jnp.uint32)))
    assert (q[:, [0, 3]] == 7).all()  # lines in range keep their inverse-CDF quantity
    for col, lam in ((1, 40.0), (2, 300.0)):
        assert abs((q[:, col] - 1).mean() - lam) < 4 * np.sqrt(lam / b)
    none = {**lines, "needs_exact_poisson": need & False}
    assert (
        np.asarray(exact_poisson_fallback(none, jax.random.key(0), jnp.arange(b, dtype=jnp.uint32))) == 7
    ).all()
