"""The single-customer view of the coupon env is exact: customer c under the same coupons has the same
visits, purchases, rewards and state as row c of the population env."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxretail.envs.coupon.configs import get_config
from jaxretail.envs.coupon.env import CouponEnv
from jaxretail.envs.coupon.single import make_single_customer_env

U, WEEKS = 16, 4


def test_single_customer_view_matches_the_population_env():
    cfg = get_config("benchmark", category_sizes=(3, 3, 2), coupon_levels=(0.0, 0.15, 0.3, 0.45))
    env = make_single_customer_env(cfg, num_customers=U, horizon=WEEKS, seed=3)
    p = env.default_params
    pop = CouponEnv(jax.tree.map(lambda x: x, p.population))
    pop_params = env.default_params.population.replace(
        scenario=p.population.scenario.replace(
            noise_key=jax.random.wrap_key_data(p.population.scenario.noise_key)
        )
    )
    levels = jax.random.randint(jax.random.key(1), (WEEKS, U), 0, 4)

    @jax.jit
    def population():
        _, state = pop.reset(jax.random.key(0), pop_params)

        def body(state, a):
            obs, state, r, _, _, info = pop.step_env(jax.random.key(0), state, a, pop_params)
            return state, (obs, r, info["visited"], info["demand"])

        return jax.lax.scan(body, state, levels)[1]

    customers = jnp.array([0, 5, U - 1])

    @jax.jit
    def single():
        def one(c):
            _, state = env.reset_customer(c, p)

            def body(state, a):
                obs, state, r, term, trunc, info = env.step_env(jax.random.key(9), state, a[c], p)
                return state, (obs, r, info["visited"], info["demand"], trunc, info["invalid_action"])

            return jax.lax.scan(body, state, levels)[1]

        return jax.vmap(one)(customers)

    obs, reward, visited, demand = population()
    s_obs, s_reward, s_visited, s_demand, trunc, invalid = single()
    cols = customers
    np.testing.assert_array_equal(s_reward, reward[:, cols].T)
    np.testing.assert_array_equal(s_visited, visited[:, cols].T)
    np.testing.assert_array_equal(s_demand, demand[:, cols].T)
    # features 0-5 equal; 6-8 fall back to population means only before a first purchase
    np.testing.assert_allclose(s_obs[..., :6], np.moveaxis(obs[:, cols, :6], 1, 0), rtol=1e-6)
    assert s_reward.dtype == jnp.float32 and s_obs.dtype == jnp.float32
    assert trunc[:, -1].all() and not trunc[:, :-1].any() and not invalid.any()
    assert (reward.sum(0) > 0).any()  # some revenue to compare


def test_single_customer_invalid_levels():
    cfg = get_config("benchmark", category_sizes=(2, 2), coupon_levels=(0.0, 0.2))
    env = make_single_customer_env(cfg, num_customers=4, horizon=2, seed=0)
    p = env.default_params
    obs, state = env.reset(jax.random.key(0), p)
    with pytest.raises(ValueError, match=r"integer in \[0, 1\]"):  # -3 used to become the 40 % coupon
        env.step(jax.random.key(1), state, jnp.int32(-3), p)
    with pytest.raises(ValueError, match="customers must be"):
        make_single_customer_env(cfg, num_customers=4, customers=[7])
    assert env.action_space(p).n == 2 and obs.shape == (9,) and bool(env.observation_space(p).contains(obs))
