"""SIL, SRL and the paper's PPO on a tiny assortment problem: selection invariants, learning, errors."""

import jax
import numpy as np
import pytest

from jaxretail.agents import coaml
from jaxretail.envs.assortment import DynamicAssortment, expert_parametric_policy
from jaxretail.jobs import assortment_learning as al

TINY = dict(num_items=6, assortment_size=2, horizon=6)
EVAL = dict(eval_episodes=3)
SPLITS = {"train": range(1, 5), "test": range(2001, 2005)}
NO_SPLITS = {}  # the final evaluation is the same rollout as the evaluation points; skip its compile


@pytest.fixture(scope="module")
def tiny():
    env = DynamicAssortment(**TINY)
    return env, env.default_params


def _check_selection(res, start=0):
    score = 0.5 * (res["metrics"]["train_revenue"] + res["metrics"]["val_revenue"])  # [points, seeds]
    for s, point in enumerate(res["best_point"]):
        assert start <= point < score.shape[0]
        assert score[point, s] == pytest.approx(score[start : point + 1, s].max())  # kept = best so far
    for r in res["revenue"].values():
        assert r.shape == (2, 4) and np.all(np.isfinite(r)) and np.all(r >= 0)


def test_sil_imitates_the_expert(tiny):
    env, params = tiny
    res = al.train_and_evaluate(
        "sil",
        "clean",
        env,
        params,
        SPLITS,
        expert=expert_parametric_policy(),
        init_seeds=(14, 16),
        expert_seeds=range(1, 9),
        progress=False,
        epochs=4,
        lr=(3e-2, 3e-2),
        **EVAL,
    )
    assert res["metrics"]["loss"].shape == (4 * 2, 2)
    first, last = res["metrics"]["loss"][:2].mean(), res["metrics"]["loss"][-2:].mean()
    assert last < 0.7 * first  # the Fenchel-Young loss to the expert's assortments falls
    _check_selection(res, start=4)  # clean mode: only the second half of the epochs counts


def test_srl_selects_its_best_evaluation_point(tiny):
    """The paper's PPO shares this loop; its trainer runs in the main job, not here (suite time)."""
    method = "srl"
    env, params = tiny
    extra = dict(num_candidates=3, fy_samples=4, critic_passes=2)
    res = al.train_and_evaluate(
        method,
        "paper",
        env,
        params,
        NO_SPLITS,
        init_seeds=(14, 16),
        progress=False,
        episodes=4,
        iterations=3,
        buffer_capacity=12,
        **EVAL,
        **extra,
    )
    assert res["metrics"]["train_revenue"].shape == (4, 2)
    _check_selection(res)


def test_bad_trainer_configs_fail_before_compute(tiny):
    env, params = tiny
    spec = coaml.EnvSpec(env, params, params.horizon, 7)  # K > N = 6
    with pytest.raises(ValueError, match="k must"):
        al.make_trainer("srl", "paper", spec)
    spec = coaml.EnvSpec(env, params, params.horizon, 2)
    with pytest.raises(ValueError, match="fy_epsilon"):
        al.make_trainer("srl", "paper", spec, fy_epsilon=0.0)
    with pytest.raises(ValueError, match="fy_samples"):
        al.make_trainer("sil", "paper", spec, fy_samples=0)
    with pytest.raises(ValueError, match="mode"):
        al.make_trainer("sil", "fast", spec)
    with pytest.raises(ValueError, match="unknown method"):
        al.parse_methods("sil,dqn")
    with pytest.raises(ValueError, match="expert"):
        al.train_and_evaluate("sil", "paper", env, params, SPLITS, progress=False)


def test_every_method_starts_from_the_same_actor_per_init_seed(tiny):
    """The original trains SIL, PPO and SRL from one saved initial actor; so must one init seed here
    (SIL splits its key in two, SRL and PPO in three: the first key agrees under jax's partitionable
    threefry, which this guards)."""
    env, params = tiny
    spec = coaml.EnvSpec(env, params, params.horizon, params.assortment_size)
    keys = jax.vmap(jax.random.key)(np.array([14, 16], np.uint32))
    actors = {m: al.make_trainer(m, "paper", spec, 8).init(keys, None)["actor"] for m in al.METHODS}
    ref = jax.tree.leaves(actors["srl"])
    for m in al.METHODS:
        for a, b in zip(jax.tree.leaves(actors[m]), ref, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    w = np.asarray(actors["srl"]["l0"]["w"])
    assert not np.array_equal(w[0], w[1])  # different init seeds do differ
