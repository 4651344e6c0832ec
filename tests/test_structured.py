"""Perturbed top-K and its Fenchel-Young loss against closed forms, finite differences and references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

from jaxretail.agents import structured as st


def test_top_k_mask_matches_numpy_with_ties_to_lower_index():
    rng = np.random.default_rng(0)
    for k in (1, 3, 8):
        scores = rng.integers(0, 4, size=9).astype(np.float32)  # many ties
        order = np.lexsort((np.arange(9), -scores))[:k]  # descending score, then lower index
        expected = np.zeros(9, np.float32)
        expected[order] = 1
        np.testing.assert_array_equal(np.asarray(st.top_k_mask(jnp.asarray(scores), k)), expected)
    # NaN and -inf never reduce the number of chosen items
    mask = st.top_k_mask(jnp.array([1.0, jnp.nan, -jnp.inf, 3.0]), 3)
    assert float(mask.sum()) == 3 and mask[0] == 1 and mask[3] == 1


def test_expected_top_k_two_items_normal_cdf():
    """N=2, K=1: P(item 0 chosen) = Phi((theta_0 - theta_1) / (eps sqrt 2))."""
    theta, eps, s = jnp.array([0.3, -0.2]), 0.7, 40_000
    y = jax.jit(st.expected_top_k, static_argnums=(2, 3, 4))(jax.random.key(1), theta, 1, eps, s)
    p = norm.cdf(0.5 / (eps * np.sqrt(2)))
    assert abs(float(y[0]) - p) < 4 * np.sqrt(p * (1 - p) / s)
    assert float(y.sum()) == pytest.approx(1.0)


def test_gradient_matches_finite_differences_of_closed_form_smoothed_max():
    """N=2, K=1: F_eps(theta) = theta_1 + D Phi(D / c) + c phi(D / c), D = theta_0 - theta_1, c = eps sqrt 2.
    The loss gradient with target 0 is the Monte Carlo grad F_eps; compare with central differences."""
    eps, c = 1.0, np.sqrt(2.0)

    def smoothed(th):
        d = th[0] - th[1]
        return th[1] + d * norm.cdf(d / c) + c * norm.pdf(d / c)

    theta = np.array([0.4, 0.1])
    h = 1e-5
    fd = np.array([(smoothed(theta + h * e) - smoothed(theta - h * e)) / (2 * h) for e in np.eye(2)])
    s = 40_000
    grad = jax.jit(
        jax.grad(
            lambda th: st.fenchel_young_loss(
                th, jnp.zeros(2), jax.random.key(2), k=1, epsilon=eps, num_samples=s
            )
        )
    )(jnp.asarray(theta, jnp.float32))
    assert np.max(np.abs(np.asarray(grad) - fd)) < 4 * 0.5 / np.sqrt(s)
    # the Monte Carlo smoothed maximum itself agrees with the closed form
    f = jax.jit(st.smoothed_max, static_argnums=(2, 3, 4))(
        jax.random.key(3), jnp.asarray(theta, jnp.float32), 1, eps, s
    )
    assert abs(float(f) - smoothed(theta)) < 4 * 1.2 / np.sqrt(s)


def test_custom_vjp_equals_finite_differences_of_the_sampled_loss():
    """With the noise fixed, the sampled loss is piecewise linear in theta; its finite differences equal
    the Danskin gradient (mean perturbed mask - target)."""
    rng = np.random.default_rng(4)
    theta = jnp.asarray(rng.normal(size=7), jnp.float32)
    target = st.top_k_mask(jnp.asarray(rng.normal(size=7)), 3)
    key = jax.random.key(5)
    loss = lambda th: st.fenchel_young_loss(th, target, key, k=3, epsilon=0.5, num_samples=16)  # noqa: E731
    grad = np.asarray(jax.jit(jax.grad(loss))(theta))
    h = 1e-2
    steps = h * jnp.eye(7, dtype=jnp.float32)  # theta stays float32 (the noise follows its dtype)
    values = jax.jit(jax.vmap(loss))(jnp.concatenate([theta + steps, theta - steps]))
    fd = np.asarray((values[:7] - values[7:]) / (2 * h))
    np.testing.assert_allclose(grad, fd, atol=2e-3)
    explicit = st.fenchel_young_grad(theta, target, key, k=3, epsilon=0.5, num_samples=16)
    np.testing.assert_allclose(grad, np.asarray(explicit), atol=1e-6)
    assert abs(grad.sum()) < 1e-5  # masks and target both sum to K


def test_zero_gradient_at_the_targets_own_smoothed_solution():
    theta = jnp.array([0.5, -1.0, 0.2, 0.9, 0.0, -0.3])
    key = jax.random.key(6)
    expected = jax.jit(st.expected_top_k, static_argnums=(2, 3, 4))
    y = expected(key, theta, 2, 1.0, 50)
    grad = jax.jit(jax.grad(lambda th: st.fenchel_young_loss(th, y, key, k=2, epsilon=1.0, num_samples=50)))(
        theta
    )
    np.testing.assert_allclose(np.asarray(grad), 0.0, atol=1e-6)  # same samples: exactly zero
    y_ref = expected(jax.random.key(7), theta, 2, 1.0, 40_000)
    grad = jax.jit(
        lambda th, y: st.fenchel_young_grad(th, y, jax.random.key(8), k=2, epsilon=1.0, num_samples=40_000)
    )(theta, y_ref)
    assert float(jnp.max(jnp.abs(grad))) < 4 * 0.5 * np.sqrt(2 / 40_000)  # two independent estimates


def test_score_function_estimator_is_unbiased_for_the_same_gradient():
    """optax.perturbations' score-function estimate agrees with the pathwise one (independent code)."""
    theta = jnp.array([0.5, -1.0, 0.2, 0.9, 0.0])
    target = jnp.array([1.0, 0.0, 0.0, 1.0, 0.0])
    path = jax.jit(
        lambda th: st.fenchel_young_grad(th, target, jax.random.key(9), k=2, epsilon=1.0, num_samples=40_000)
    )(theta)
    score = jax.jit(
        lambda th: st.fenchel_young_grad_score_function(
            th, target, jax.random.key(10), k=2, epsilon=1.0, num_samples=40_000
        )
    )(theta)
    np.testing.assert_allclose(np.asarray(score), np.asarray(path), atol=0.05)


def test_vmap_over_examples():
    thetas = jax.random.normal(jax.random.key(11), (3, 6))
    targets = jax.vmap(st.top_k_mask, in_axes=(0, None))(thetas, 2)
    keys = jax.random.split(jax.random.key(12), 3)
    f = lambda th, y, k: st.fenchel_young_loss(th, y, k, k=2, epsilon=1.0, num_samples=8)  # noqa: E731
    batched = jax.jit(jax.vmap(jax.grad(f)))(thetas, targets, keys)
    single_grad = jax.jit(jax.grad(f))
    single = jnp.stack([single_grad(thetas[i], targets[i], keys[i]) for i in range(3)])
    np.testing.assert_allclose(np.asarray(batched), np.asarray(single), atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k": 2, "epsilon": 0.0, "num_samples": 4}, "epsilon"),
        ({"k": 2, "epsilon": -1.0, "num_samples": 4}, "epsilon"),
        ({"k": 2, "epsilon": float("nan"), "num_samples": 4}, "epsilon"),
        ({"k": 7, "epsilon": 1.0, "num_samples": 4}, "k must"),
        ({"k": 0, "epsilon": 1.0, "num_samples": 4}, "k must"),
        ({"k": 2, "epsilon": 1.0, "num_samples": 0}, "num_samples"),
    ],
)
def test_bad_configs_raise_clear_errors(kwargs, match):
    theta = jnp.zeros(6)
    with pytest.raises(ValueError, match=match):
        st.fenchel_young_loss(theta, theta, jax.random.key(0), **kwargs)
    with pytest.raises(ValueError, match=match):
        st.expected_top_k(jax.random.key(0), theta, kwargs["k"], kwargs["epsilon"], kwargs["num_samples"])
