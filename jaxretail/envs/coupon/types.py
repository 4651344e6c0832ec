"""Latent parameters of one coupon-benchmark simulation and the shelf-price state.

Shapes: ``U`` customers, ``I`` products, ``J`` categories. No ``[U, I]`` array is stored: the three
per-(customer, product) latents are recomputed from counter-based hashes of their global indices
(:func:`jaxretail.envs.coupon.generator.customer_product_latents`).
"""

from __future__ import annotations

import jax
from flax import struct


@struct.dataclass
class Scenario:
    """One simulation's latent parameters (RetailSynth, Xia et al. arXiv 2312.14095 / 2405.10469)."""

    # products [I]
    category: jax.Array  # [I] int32, category index j(i) (contiguous blocks)
    base_price: jax.Array  # [I] P_i^base = max(alpha_0i + alpha_1 Z_i, p_min), same in every simulation
    brand: jax.Array  # [I] Z_i >= 0, unobserved brand strength
    beta_w_product: jax.Array  # [I] beta^w_i <= 0
    quantity_intercept: jax.Array  # [I] gamma^prod_0i
    discount_start: jax.Array  # [I] a01_i = P(S=1 | S_prev=0)
    discount_stay: jax.Array  # [I] a11_i = P(S=1 | S_prev=1)
    # categories [J]
    category_intercept: jax.Array  # [J] gamma^cat_0j
    category_slope: jax.Array  # [J] gamma^cat_1j in [0, 0.12]
    # customers [U]
    beta_w_customer: jax.Array  # [U] beta^w_u <= 0
    visit_inertia: jax.Array  # [U] theta_u
    redemption_rate: jax.Array  # [U] rho_u
    # store (scalars)
    visit_intercept: jax.Array  # [] gamma^s_0
    visit_slope: jax.Array  # [] gamma^s_1 >= 0
    marketing_weight: jax.Array  # [] gamma^s_2
    # seeds of the streamed [U, I] latents (uint32 words)
    latent_seeds: jax.Array  # [3] uint32 for (beta_z, beta_x, quantity_slope); equal under legacy coupling
    # per-week randomness of this simulation
    noise_key: jax.Array  # [] PRNG key


@struct.dataclass
class ShelfState:
    """High-low shelf pricing state of the catalogue."""

    discounted: jax.Array  # [I] bool, S_it (False before the first week)
