"""Draw a simulation's latent parameters from a :class:`ScenarioConfig` with numpyro distributions.

By default every latent gets its own key (``fold_in`` of the simulation key with the latent's index).
``legacy_coupling=True`` reuses one key for every draw, as the original code does, which couples
equal-shape draws (``a01 == a11``; ``theta_u`` monotone in ``beta^w_u``; ``log beta^z``,
``log beta^x`` and ``log gamma^prod_1`` perfectly correlated). Base-price parameters always use the
fixed key 0, so base prices are the same in every simulation; ``base_prices="paper"`` uses the
original's own draw, shipped as package data.
"""

from __future__ import annotations

import csv
import functools
from importlib import resources

import jax
import jax.numpy as jnp
import numpy as np

from jaxretail.core.counter_rng import (
    bits_to_uniform,
    column_hash,
    pair_bits,
    row_hash,
    seed_from_key,
    uniform_to_normal,
)
from jaxretail.envs.coupon.configs import BENCHMARK_CATEGORY_SIZES, ScenarioConfig, validate
from jaxretail.envs.coupon.types import Scenario

BASE_PRICE_MODES = ("draw", "paper")


@functools.cache
def paper_base_prices() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The original benchmark's base prices: ``(category [I] int, base_price [I], Z [I])``, I = 2,514."""
    text = resources.files("jaxretail.envs.coupon").joinpath("data/retailsynth_base_prices.csv").read_text()
    rows = list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))
    category = np.array([int(r["category"]) for r in rows], np.int32)
    return category, np.array([float(r["base_price"]) for r in rows]), np.array([float(r["Z"]) for r in rows])


def category_index(category_sizes: tuple[int, ...]) -> np.ndarray:
    """``j(i)`` for contiguous category blocks, ``[I]`` int32."""
    return np.repeat(np.arange(len(category_sizes), dtype=np.int32), category_sizes)


def draw_base_prices(cfg: ScenarioConfig) -> tuple[jax.Array, jax.Array]:
    """``(base_price [I], Z [I])`` drawn with the fixed key 0 (identical for every simulation)."""
    k_alpha0, k_alpha1, k_mean, k_z = jax.random.split(jax.random.key(0), 4)
    n_i, n_j = cfg.num_products, cfg.num_categories
    alpha_0 = cfg.alpha_0.build().sample(k_alpha0, (n_i,))
    alpha_1 = cfg.alpha_1.build().sample(k_alpha1)
    mean_j = cfg.brand_mean.build().sample(k_mean, (n_j,))  # mu_j = sigma_j
    mean_i = mean_j[category_index(cfg.category_sizes)]
    import numpyro.distributions as dist

    z = dist.TruncatedNormal(mean_i, mean_i, low=0.0).sample(k_z)
    return jnp.maximum(alpha_0 + alpha_1 * z, cfg.min_price), z


def sample_scenario(
    key: jax.Array,
    cfg: ScenarioConfig,
    num_customers: int,
    *,
    legacy_coupling: bool = False,
    base_prices: str = "draw",
    mode: str | None = None,
) -> Scenario:
    """Draw one simulation's latent parameters.

    Args:
      key: the simulation's key.
      cfg: a validated :class:`ScenarioConfig` (see :func:`get_config`).
      num_customers: ``U``.
      legacy_coupling: reuse one key for every draw, as the original code does.
      base_prices: ``"draw"`` (this configuration's distributions with key 0) or ``"paper"`` (the
        original draw; needs the benchmark catalogue).
      mode: ``"clean"`` or ``"paper"`` sets ``legacy_coupling`` and ``base_prices`` at once
        (:mod:`jaxretail.envs.coupon.modes`; clean mode keeps ``base_prices`` unless it is the default).

    Every draw is float32, also under ``JAX_ENABLE_X64=1``, so both modes simulate the same customers.
    """
    validate(cfg)
    if mode is not None:
        from jaxretail.envs.coupon.modes import mode_settings

        m = mode_settings(mode, None if mode == "paper" else base_prices)
        legacy_coupling, base_prices = m.legacy_coupling, m.base_prices
    if not isinstance(legacy_coupling, bool):
        raise ValueError(f"legacy_coupling must be True or False, got legacy_coupling={legacy_coupling!r}")
    if isinstance(num_customers, bool) or int(num_customers) != num_customers or num_customers < 1:
        raise ValueError(f"num_customers must be a positive integer, got num_customers={num_customers!r}")
    if base_prices not in BASE_PRICE_MODES:
        raise ValueError(f"base_prices must be one of {BASE_PRICE_MODES}, got base_prices={base_prices!r}")
    if base_prices == "paper" and tuple(cfg.category_sizes) != BENCHMARK_CATEGORY_SIZES:
        raise ValueError(
            "base_prices='paper' needs the benchmark catalogue (category_sizes of coupon.md), "
            f"got {cfg.num_products} products in {cfg.num_categories} categories"
        )
    with jax.enable_x64(False):
        return _sample(key, cfg, int(num_customers), legacy_coupling, base_prices)


def _sample(key, cfg: ScenarioConfig, n_u: int, legacy_coupling: bool, base_prices: str) -> Scenario:
    n_i, n_j = cfg.num_products, cfg.num_categories
    counter = iter(range(1, 100))

    def draw(spec, shape=()):
        k = key if legacy_coupling else jax.random.fold_in(key, next(counter))
        return spec.build().sample(k, shape)

    if base_prices == "paper":
        _, price, z = paper_base_prices()
        price, z = jnp.asarray(price, jnp.float32), jnp.asarray(z, jnp.float32)
    else:
        price, z = draw_base_prices(cfg)
    seed_key = key if legacy_coupling else jax.random.fold_in(key, 1000)
    seeds = jax.vmap(lambda i: seed_from_key(jax.random.fold_in(seed_key, i)))(jnp.arange(3))
    if legacy_coupling:
        seeds = jnp.full((3,), seeds[0])
    return Scenario(
        category=jnp.asarray(category_index(cfg.category_sizes)),
        base_price=price,
        brand=z,
        beta_w_product=draw(cfg.beta_w_product, (n_i,)),
        quantity_intercept=draw(cfg.quantity_intercept, (n_i,)),
        discount_start=draw(cfg.discount_start, (n_i,)),
        discount_stay=draw(cfg.discount_stay, (n_i,)),
        category_intercept=draw(cfg.category_intercept, (n_j,)),
        category_slope=draw(cfg.category_slope, (n_j,)),
        beta_w_customer=draw(cfg.beta_w_customer, (n_u,)),
        visit_inertia=draw(cfg.visit_inertia, (n_u,)),
        redemption_rate=jnp.full((n_u,), cfg.redemption_rate, jnp.float32),
        visit_intercept=draw(cfg.visit_intercept),
        visit_slope=draw(cfg.visit_slope),
        marketing_weight=draw(cfg.marketing_weight),
        latent_seeds=seeds,
        noise_key=jax.random.fold_in(key, 2000),
    )


def _lognormal_params(spec) -> tuple[float, float]:
    kw = dict(spec.kwargs)
    if spec.name != "LogNormal":
        raise ValueError(f"streamed customer-product latents must be LogNormal, got {spec}")
    return kw["loc"], kw["scale"]


def customer_product_latents(
    scenario: Scenario, cfg: ScenarioConfig, customer_ids: jax.Array, legacy_coupling: bool | None = None
) -> dict[str, jax.Array]:
    """``beta_z``, ``beta_x`` and ``quantity_slope`` for the given customers, each ``[B, I]``.

    Recomputed from hashes of ``(stream seed, customer id, product id)``, exactly as the environment
    computes them (:func:`jaxretail.envs.coupon.customer.tastes`): the same customer always gets the
    same values, whatever block, order or device it is processed in. ``legacy_coupling`` must match
    the environment's (``make_params``); default: a scenario sampled with legacy coupling (equal latent
    seeds) is read as one.
    """
    from jaxretail.envs.coupon.customer import taste_normals

    products = jnp.arange(scenario.base_price.shape[0], dtype=jnp.uint32)[None, :]
    u = jnp.asarray(customer_ids).astype(jnp.uint32)[:, None]
    seeds = scenario.latent_seeds
    words = [pair_bits(row_hash(seeds[s], u), column_hash(seeds[s], products)) for s in range(3)]
    if legacy_coupling is None:
        legacy = jnp.all(seeds == seeds[0])
        pairs = [taste_normals(words[0], words[1], flag) for flag in (False, True)]
        normals = [jnp.where(legacy, b, a) for a, b in zip(*pairs, strict=True)]
    else:
        normals = list(taste_normals(words[0], words[1], bool(legacy_coupling)))
    normals.append(uniform_to_normal(bits_to_uniform(words[2])))
    out = {}
    for z, (name, spec) in zip(
        normals,
        (("beta_z", cfg.beta_z), ("beta_x", cfg.beta_x), ("quantity_slope", cfg.quantity_slope)),
        strict=True,
    ):
        loc, scale = _lognormal_params(spec)
        out[name] = jnp.exp(jnp.float32(loc) + jnp.float32(scale) * z)
    return out
