"""Instance generator: every item value is i.i.d. Uniform[draw_low, draw_high] (default [1, 10])."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxretail.envs.assortment.types import AssortmentParams


def draw_instance(key: jax.Array, params: AssortmentParams) -> dict[str, jax.Array]:
    """Draw one instance: ``price [N]``, ``static_features [d, N]``, ``hype [N]``, ``saturation [N]``.

    One ``(d + 3) x N`` uniform matrix is drawn with rows in the order of Hoppe et al.'s code
    ``[f_1 .. f_d, hype, saturation, price]``. (Neither reference's Julia stream can be reproduced
    bit for bit; the distribution is the same.) The uniforms are drawn in float32 and then cast, so a
    key gives the same instance with and without ``JAX_ENABLE_X64``.
    """
    d, n = params.num_features, params.num_items
    u = jax.random.uniform(key, (d + 3, n), jnp.float32).astype(float)  # same draws under x64
    values = params.draw_low + (params.draw_high - params.draw_low) * u
    return {
        "static_features": values[:d],
        "hype": values[d],
        "saturation": values[d + 1],
        "price": values[d + 2],
    }
