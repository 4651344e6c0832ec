"""Interoperability: gymnax wrappers and isinstance checks, gymnasium spaces, one invalid-action rule,
declared dtypes under x64, rollouts that stop at the end, registry and copyable adapters."""

import copy
import os
import pickle
import subprocess
import sys
import textwrap

import gymnasium
import gymnax
import gymnax.wrappers
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import checkify

import jaxretail
from jaxretail.core import LegacyStepAPI, make_gymnasium_vector_env, spaces
from jaxretail.core.action_views import SubsetIndex, TopKScores, subset_table
from jaxretail.core.actions import checked_actions, validate_action
from jaxretail.core.gymnax_compat import to_gymnax, to_gymnax_space
from jaxretail.envs.assortment import DynamicAssortment, greedy_policy, random_policy
from jaxretail.evaluation import evaluate_policy

BASE = DynamicAssortment(num_items=6, assortment_size=2, horizon=4, obs_mode="package")
P = BASE.default_params


def _mask(*items, n=6):
    return jnp.zeros(n, bool).at[jnp.array(items)].set(True)


def test_gymnax_wrappers_and_isinstance_accept_jaxretail_envs():
    genv = to_gymnax(TopKScores(BASE))
    params = genv.default_params
    assert isinstance(genv, gymnax.environments.environment.Environment)
    assert isinstance(params, gymnax.EnvParams) and params.max_steps_in_episode == 4
    assert isinstance(genv.observation_space(params), gymnax.environments.spaces.Box)
    flat = gymnax.wrappers.FlattenObservationWrapper(genv)  # failed: "Only Box spaces are supported"
    assert flat.observation_space(params).shape == (10 * 6,)
    env = gymnax.wrappers.LogWrapper(flat)
    obs, state = env.reset(jax.random.key(0), params)
    action = genv.action_space(params).sample(jax.random.key(1))
    for t in range(4):
        obs, state, reward, term, trunc, info = env.step(jax.random.key(t), state, action, params)
    assert obs.shape == (60,) and bool(info["returned_episode"]) and bool(term)
    assert float(info["returned_episode_returns"]) >= 0 and not bool(info["invalid_action"])
    # the adapted env is the jaxretail env: same transition under the same keys
    o1, s1 = BASE.reset(jax.random.key(3), P)
    o2, s2 = genv.reset(jax.random.key(3), params)
    r1 = TopKScores(BASE).step(jax.random.key(4), s1, action, P)[2]
    r2 = genv.step(jax.random.key(4), s2, action, params)[2]
    np.testing.assert_array_equal(o1, o2) and np.testing.assert_array_equal(r1, r2)
    d = to_gymnax(SubsetIndex(BASE))
    assert isinstance(d.action_space(d.default_params), gymnax.environments.spaces.Discrete)
    assert d.action_space(d.default_params).n == 15 == d.num_actions


def test_gymnax_to_gym_wrappers_convert_the_views():
    env = to_gymnax(SubsetIndex(BASE))
    gym_env = gymnax.wrappers.GymnaxToGymWrapper(env, seed=0)
    assert gym_env.action_space == gymnasium.spaces.Discrete(15)
    gym_env.reset(seed=1)
    obs, reward, term, trunc, info = gym_env.step(3)
    assert np.shape(obs) == (10, 6) and gym_env.observation_space.contains(np.asarray(obs))
    vec = gymnax.wrappers.GymnaxToVectorGymWrapper(to_gymnax(TopKScores(BASE)), num_envs=3, seed=0)
    vec.reset(seed=0)
    out = vec.step(vec.action_space.sample())
    assert np.shape(out[1]) == (3,)
    with pytest.raises(TypeError, match="TopKScores"):  # the bare K-subset action has no gymnax space
        to_gymnax(BASE)


def test_adapters_copy_deepcopy_and_pickle():
    for obj in (LegacyStepAPI(BASE), TopKScores(BASE), SubsetIndex(BASE), to_gymnax(SubsetIndex(BASE))):
        for clone in (copy.copy(obj), copy.deepcopy(obj), pickle.loads(pickle.dumps(obj))):
            assert clone.default_params is not None and clone.name == obj.name


def test_invalid_assortment_actions_never_pass_silently():
    obs, state = BASE.reset(jax.random.key(0), P)
    with pytest.raises(ValueError, match="shape"):  # an integer where a mask is expected
        BASE.step(jax.random.key(1), state, jnp.int32(3), P)
    with pytest.raises(ValueError, match="shape"):  # also inside jit: the shape is static
        jax.jit(BASE.step)(jax.random.key(1), state, jnp.int32(3), P)
    with pytest.raises(ValueError, match="exactly 2 ones"):  # concrete: checked before stepping
        BASE.step(jax.random.key(1), state, jnp.ones(6, bool), P)
    # inside jit: flagged, and the documented mapping (first K selected items) is what runs
    step = jax.jit(BASE.step_env)
    bad = step(jax.random.key(1), state, jnp.ones(6, bool), P)
    ref = step(jax.random.key(1), state, _mask(0, 1), P)
    assert bool(bad[5]["invalid_action"]) and not bool(ref[5]["invalid_action"])
    assert int(bad[5]["choice"]) == int(ref[5]["choice"]) and float(bad[2]) == float(ref[2])
    one = step(jax.random.key(1), state, _mask(4), P)  # too few: lowest-index unselected item added
    assert bool(one[5]["invalid_action"])
    assert float(one[5]["expected_revenue"]) == float(
        step(jax.random.key(1), state, _mask(0, 4), P)[5]["expected_revenue"]
    )
    # checked mode: a checkify error
    with checked_actions():
        err, _ = jax.jit(checkify.checkify(BASE.step_env))(jax.random.key(1), state, jnp.ones(6, bool), P)
    with pytest.raises(checkify.JaxRuntimeError, match="exactly 2 ones"):
        err.throw()
    # views: out-of-range subset index and non-finite scores
    sub = jax.jit(SubsetIndex(BASE).step_env)
    assert bool(sub(jax.random.key(1), state, jnp.int32(15), P)[5]["invalid_action"])
    assert not bool(sub(jax.random.key(1), state, jnp.int32(14), P)[5]["invalid_action"])
    with pytest.raises(ValueError, match=r"\[0, 14\]"):
        SubsetIndex(BASE).step(jax.random.key(1), state, jnp.int32(-3), P)
    scores = jax.jit(TopKScores(BASE).step_env)
    assert bool(scores(jax.random.key(1), state, jnp.full(6, jnp.nan), P)[5]["invalid_action"])
    with pytest.raises(ValueError, match="actions must be"):
        validate_action(
            BASE.action_space(P), jnp.stack([_mask(0, 1), _mask(0, 1, 2)]), name="actions", batched=True
        )


def test_gymnasium_adapter_samples_only_valid_subsets_and_refuses_invalid_ones():
    venv = make_gymnasium_vector_env(BASE, num_envs=4, seed=0)
    venv.action_space.seed(0)
    samples = np.stack([venv.action_space.sample() for _ in range(200)])  # [200, 4, 6]
    assert (samples.sum(-1) == 2).all()  # MultiBinary(6) gave 9, 9 and 7 ones for K = 4
    counts = np.bincount(np.flatnonzero(samples.reshape(-1, 6).ravel()) % 6, minlength=6)
    assert counts.min() > 0.8 * counts.mean()  # every item is offered about equally often
    assert venv.action_space.contains(samples[0]) and not venv.action_space.contains(np.ones((4, 6), np.int8))
    obs, _ = venv.reset(seed=1)
    assert obs.dtype == np.float32 and venv.observation_space.contains(obs)
    obs, reward, *_ = venv.step(samples[0])
    assert reward.dtype == np.float32
    bad = samples[1].copy()
    bad[2] = 1
    with pytest.raises(ValueError, match=r"row 2"):
        venv.step(bad)


def test_gymnasium_subset_space_flattens_like_a_mask():
    import gymnasium

    utils = gymnasium.spaces.utils
    venv = make_gymnasium_vector_env(BASE, num_envs=3, seed=0)
    for space in (venv.single_action_space, venv.action_space):
        x = space.sample()
        flat = utils.flatten(space, x)
        assert utils.flatdim(space) == flat.size == x.size and utils.flatten_space(space).contains(flat)
        back = utils.unflatten(space, flat)
        np.testing.assert_array_equal(back, x)
        assert space.contains(back)


def test_every_exported_space_samples_what_contains_and_the_env_accept():
    keys = jax.random.split(jax.random.key(0), 64)
    exported = [
        BASE.action_space(P), BASE.observation_space(P), TopKScores(BASE).action_space(P),
        SubsetIndex(BASE).action_space(P), spaces.Discrete(4), spaces.Box(-jnp.inf, jnp.inf, (3,)),
        spaces.Box(0, 3, (5,), jnp.int32),
    ]  # fmt: skip
    for space in exported:
        xs = jax.vmap(space.sample)(keys)
        assert bool(jax.vmap(space.contains)(xs).all()), space
        np.testing.assert_array_equal(jax.vmap(space.project)(xs), xs.astype(space.dtype))
        if not isinstance(space, spaces.FixedSizeSubset):
            g = to_gymnax_space(space)
            gx = jax.vmap(g.sample)(keys)
            assert bool(jax.vmap(space.contains)(gx).all()) and bool(jax.vmap(g.contains)(xs).all()), space
    # subset table: C(6, 2) distinct valid masks in lexicographic order
    table = subset_table(6, 2)
    assert table.shape == (15, 6) and (table.sum(1) == 2).all() and len({t.tobytes() for t in table}) == 15
    assert table[0].tolist() == [1, 1, 0, 0, 0, 0] and table[-1].tolist() == [0, 0, 0, 0, 1, 1]


def test_rollouts_never_count_rewards_after_the_end():
    seeds = range(5)
    at_horizon = evaluate_policy(BASE, random_policy, P, seeds)
    past = evaluate_policy(BASE, random_policy, P, seeds, num_steps=P.horizon + 3)
    assert past.shape == (5, 7) and (past[:, P.horizon :] == 0).all()
    np.testing.assert_array_equal(past[:, : P.horizon], at_horizon)
    assert (at_horizon.sum(1) > 0).any()


def test_registry_and_gymnax_make():
    env, params = jaxretail.make("jaxretail/assortment-v0", num_items=5, assortment_size=2)
    assert isinstance(env, DynamicAssortment) and params.num_items == 5
    with pytest.raises(ValueError, match="unknown environment id"):
        jaxretail.make("jaxretail/nope")
    ids = jaxretail.register_gymnax()
    assert "jaxretail/assortment-subsets-v0" in ids and ids == jaxretail.register_gymnax()
    genv, gparams = gymnax.make("jaxretail/assortment-subsets-v0", num_items=5, assortment_size=2)
    assert genv.action_space(gparams).n == 10 and isinstance(gparams, gymnax.EnvParams)


def test_declared_dtypes_with_and_without_x64():
    code = textwrap.dedent(
        """
        import jax, jax.numpy as jnp, numpy as np
        from jaxretail.core import make_gymnasium_vector_env
        from jaxretail.core.action_views import SubsetIndex, TopKScores
        from jaxretail.envs.assortment import DynamicAssortment
        base = DynamicAssortment(num_items=5, assortment_size=2, horizon=3)
        p = base.default_params
        for env, a in ((base, jnp.array([1, 1, 0, 0, 0], bool)), (TopKScores(base), jnp.zeros(5)),
                       (SubsetIndex(base), jnp.int32(2))):
            obs, s = env.reset(jax.random.key(0), p)
            obs2, s2, r, *_ = jax.jit(env.step)(jax.random.key(1), s, a, p)
            space = env.observation_space(p)
            floats = {str(x.dtype) for x in jax.tree.leaves((s, s2)) if jnp.issubdtype(x.dtype, jnp.floating)}
            assert obs.dtype == obs2.dtype == space.dtype == jnp.float32, (obs.dtype, space.dtype)
            assert bool(space.contains(obs)) and r.dtype == jnp.float32 and floats == {"float32"}, floats
        v = make_gymnasium_vector_env(base, 2)
        o, _ = v.reset(seed=0)
        assert o.dtype == np.float32 and v.observation_space.contains(o)
        print("ok", jnp.zeros(1).dtype)
        """
    )
    for x64, dtype in (("0", "float32"), ("1", "float64")):
        env = {**os.environ, "JAX_ENABLE_X64": x64, "JAX_PLATFORMS": "cpu"}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.split() == ["ok", dtype]


def test_greedy_beats_random_through_the_subset_view():
    """The views change only the action encoding: greedy's mask as a subset index earns the same."""
    table = jnp.asarray(subset_table(6, 2))

    def as_index(key, obs, state, params):
        mask = greedy_policy(key, obs, state, params)
        return jnp.argmax(jnp.all(table == mask, axis=1)).astype(jnp.int32)

    direct = evaluate_policy(BASE, greedy_policy, P, range(8))
    via = evaluate_policy(SubsetIndex(BASE), as_index, P, range(8))
    np.testing.assert_array_equal(direct, via)


def test_timestep_adapter_follows_the_episode():
    from jaxretail.core.timestep import StepType, TimeStepEnv

    env = TimeStepEnv(BASE)
    state, ts = env.reset(jax.random.key(5))
    assert bool(ts.first()) and float(ts.reward) == 0.0

    def body(carry, _):
        state, ts = env.step(carry[0], _mask(0, 1))
        return (state, ts), ts

    (_, _), traj = jax.lax.scan(body, (state, ts), None, P.horizon)  # one carry type: reset == step
    np.testing.assert_array_equal(traj.step_type, [StepType.MID] * (P.horizon - 1) + [StepType.LAST])
    np.testing.assert_array_equal(traj.discount, [1.0] * (P.horizon - 1) + [0.0])
    _, s = BASE.reset(jax.random.split(jax.random.key(5))[1], P)
    rewards = []
    for _ in range(P.horizon):
        _, s, r, *_ = BASE.step_env(jax.random.key(0), s, _mask(0, 1), P)  # the key is unused
        rewards.append(float(r))
    np.testing.assert_allclose(traj.reward, rewards)
