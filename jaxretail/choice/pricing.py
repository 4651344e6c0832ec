"""Single-product pricing under a multinomial logit with competitors and a no-purchase option.

One choice situation (vmap for batches): a visitor chooses between the focal product with
utility ``u(p) = a - b p``, ``J`` competing products with fixed utilities ``v_j`` and not buying
(utility 0). The focal product's purchase probability is

    P(p) = e^{a - b p} / (C + e^{a - b p}),      C = 1 + sum_j e^{v_j},

and the expected margin per visitor ``(p - c) P(p)`` is maximised by the classical closed form
(Hanson and Martin 1996; Li and Huh 2011, single-product case)

    p* = c + (1 + W(e^{a - b c - 1} / C)) / b,

with ``W`` the principal branch of the Lambert W function. ``(p - c) P(p)`` is unimodal in ``p``, so
the optimum over an interval ``[lo, hi]`` is ``clip(p*, lo, hi)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxretail.choice import mnl


def lambertw(x: jax.Array, iterations: int = 8) -> jax.Array:
    """Principal branch ``W(x)`` for ``x >= 0`` (solves ``w e^w = x``), elementwise.

    Halley iterations from ``log1p(x)`` (an upper bound for ``x >= 0``); 8 iterations reach float32
    round-off for ``x`` up to 1e30. Negative or NaN input returns NaN.
    """
    x = jnp.asarray(x)
    w = jnp.log1p(jnp.maximum(x, 0.0))
    for _ in range(iterations):
        ew = jnp.exp(w)
        f = w * ew - x
        wp1 = w + 1.0
        w = w - f / (ew * wp1 - (w + 2.0) * f / (2.0 * wp1))
    return jnp.where(x >= 0, w, jnp.nan)


def outside_weight(competitor_utilities: jax.Array) -> jax.Array:
    """``C = 1 + sum_j e^{v_j}`` for competitor utilities ``[J]`` (computed with log-sum-exp)."""
    v = jnp.asarray(competitor_utilities)
    return jnp.exp(jnp.logaddexp(0.0, jax.nn.logsumexp(v)))


def purchase_probability(
    price: jax.Array, intercept: jax.Array, slope: jax.Array, competitor_utilities: jax.Array
) -> jax.Array:
    """``P(p)`` of the focal product: MNL share of option 0 among ``[focal, competitors]`` + none.

    Args:
      price: ``[]`` price of the focal product.
      intercept, slope: ``a`` and ``b`` of ``u(p) = a - b p`` (``b > 0``: utility falls with price).
      competitor_utilities: ``[J]`` utilities of the similar/competing products.
    """
    v = jnp.reshape(jnp.asarray(competitor_utilities), (-1,))
    if v.shape[0] == 1:
        # one competitor (the pricing market's case): mnl.probs' arithmetic on scalars, without
        # [2]-wide temporaries and a reduction; XLA compiles mnl.probs' division of the [3] weights
        # by their total as a product with the reciprocal, and so does this
        u = intercept - slope * price
        m = jnp.maximum(jnp.maximum(u, v[0]), 0.0)
        w = jnp.exp(u - m)
        return w * (1.0 / ((w + jnp.exp(v[0] - m)) + jnp.exp(-m)))
    u = jnp.concatenate([jnp.reshape(intercept - slope * price, (1,)), v])
    return mnl.probs(u, jnp.ones(u.shape, bool))[0]


def optimal_price(
    intercept: jax.Array, slope: jax.Array, competitor_utilities: jax.Array, cost: jax.Array = 0.0
) -> jax.Array:
    """Unconstrained maximiser ``p*`` of ``(p - cost) P(p)`` (see the module docstring).

    ``cost = 0`` gives the revenue-maximising price. The exponent is evaluated in log space so large
    intercepts do not overflow: ``W(e^z)`` for ``z > 40`` uses the asymptotic ``z - log z``
    refined by the same Halley steps.
    """
    z = intercept - slope * cost - 1.0 - jnp.log(outside_weight(competitor_utilities))
    w = lambertw(jnp.exp(jnp.minimum(z, 40.0)))
    big = z > 40.0
    w_big = z - jnp.log(jnp.maximum(z, 1.0))
    for _ in range(4):  # Newton on w + log w = z
        w_big = w_big - (w_big + jnp.log(w_big) - z) / (1.0 + 1.0 / w_big)
    w = jnp.where(big, w_big, w)
    return cost + (1.0 + w) / slope


def expected_margin(
    price: jax.Array, intercept: jax.Array, slope: jax.Array, competitor_utilities: jax.Array, cost=0.0
) -> jax.Array:
    """``(p - cost) P(p)``: expected margin (revenue if ``cost = 0``) per visitor."""
    return (price - cost) * purchase_probability(price, intercept, slope, competitor_utilities)


def willingness_to_pay(utility: jax.Array, price_coef: jax.Array, reference_price: jax.Array) -> jax.Array:
    """Highest price at which buying beats not buying, for one buy-or-not situation (elementwise).

    The random utility of buying at price ``p`` is ``utility + price_coef * log(p / reference_price)``
    (``utility`` includes the occasion's noise draw; not buying has utility 0), so the customer buys
    iff ``p <= WTP = reference_price * exp(utility / -price_coef)``. ``price_coef < 0``; values above
    ``-1e-6`` are treated as ``-1e-6`` and the exponent is clipped to ``[-30, 30]``, so WTP is finite
    and positive. Shapes: any, broadcast together; units of ``reference_price``.
    """
    log_ratio = utility / jnp.maximum(-price_coef, 1e-6)
    return reference_price * jnp.exp(jnp.clip(log_ratio, -30.0, 30.0))
