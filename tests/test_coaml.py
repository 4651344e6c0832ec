"""COaML actor, critics, returns, schedules and replay against NumPy references of the original code."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxretail.agents import coaml, sil, srl


def _np_dense(p, x):
    return np.asarray(p["w"]) @ x + np.asarray(p["b"])[:, None]


def test_actor_is_affine_per_item():
    params = coaml.init_actor(jax.random.key(0), 10, (5,))
    x = np.random.default_rng(0).normal(size=(10, 20)).astype(np.float32)
    w1, b1, w2, b2 = (np.asarray(params[f"l{i}"][n]) for i in (0, 1) for n in ("w", "b"))
    expected = (w2 @ w1) @ x + (w2 @ b1 + b2)[:, None]  # one affine map, 61 raw parameters
    got = jax.jit(coaml.actor_scores)(params, jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(got), expected[0], rtol=1e-5, atol=1e-5)
    assert sum(v.size for v in jax.tree.leaves(params)) == 61


def test_critics_match_the_julia_layout():
    """critic_rew: Dense(6=>3) on the offered items in index order, column-major vec, Dense(12=>1);
    critic_fut: Dense(11=>5) on [x; a], vec, Dense(100=>10), Dense(10=>1)."""
    rng = np.random.default_rng(1)
    params = coaml.init_critics(jax.random.key(1), 20, 4, 10)
    params = jax.tree.map(
        lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), params
    )  # non-zero biases
    x = rng.normal(size=(10, 20)).astype(np.float32)
    a = np.zeros(20, np.float32)
    a[[17, 2, 9, 5]] = 1
    h = _np_dense(params["rew"]["l0"], x[:6, [2, 5, 9, 17]])
    rew = _np_dense(params["rew"]["l1"], h.reshape(-1, order="F")[:, None])[0, 0]
    got = jax.jit(coaml.critic_reward, static_argnums=3)(params["rew"], jnp.asarray(x), jnp.asarray(a), 4)
    np.testing.assert_allclose(float(got), rew, rtol=1e-4)
    h = _np_dense(params["fut"]["l0"], np.vstack([x, a[None]]))
    fut = _np_dense(params["fut"]["l2"], _np_dense(params["fut"]["l1"], h.reshape(-1, order="F")[:, None]))[
        0, 0
    ]
    got = jax.jit(coaml.critic_future)(params["fut"], jnp.asarray(x), jnp.asarray(a))
    np.testing.assert_allclose(float(got), fut, rtol=1e-4)


@pytest.mark.parametrize("drop_last", [True, False])
def test_returns_against_the_original_loop(drop_last):
    r = np.random.default_rng(2).uniform(0, 10, size=9)
    g = np.zeros(9)
    if drop_last:  # generate_episode: starts at T-1 with G = r_{T-1}; G_T stays 0
        for i in range(7, -1, -1):
            g[i] = r[i] if i == 7 else r[i] + 0.99 * g[i + 1]
    else:
        for i in range(8, -1, -1):
            g[i] = r[i] + (0.99 * g[i + 1] if i < 8 else 0.0)
    got = coaml.discounted_returns(jnp.asarray(r, jnp.float32), 0.99, drop_last)
    np.testing.assert_allclose(np.asarray(got), g, rtol=1e-5)


def test_linear_schedule_matches_the_per_episode_decay():
    lr, lr0, lr1, episodes = 1e-3, 1e-3, 5e-4, 200
    step = (lr0 - lr1) / episodes
    for e in range(episodes + 5):
        assert float(coaml.linear_schedule(lr0, lr1, e, episodes)) == pytest.approx(lr, rel=1e-5)
        lr = max(lr - step, lr1)


def test_replay_wraps_and_samples_filled_slots():
    buf = coaml.replay_init({"x": jnp.zeros(())}, 5)
    buf = coaml.replay_add(buf, {"x": jnp.arange(1.0, 4.0)})
    assert int(buf.size) == 3
    draws = coaml.replay_sample(buf, jax.random.key(0), (200,))["x"]
    assert set(np.unique(np.asarray(draws))) == {1.0, 2.0, 3.0}
    buf = coaml.replay_add(buf, {"x": jnp.arange(4.0, 8.0)})  # 7 items in 5 slots: 1 and 2 overwritten
    np.testing.assert_array_equal(np.asarray(buf.data["x"]), [6.0, 7.0, 3.0, 4.0, 5.0])
    assert int(buf.size) == 5 and int(buf.position) == 2


def test_selection_keeps_the_running_best():
    params = {"w": jnp.zeros(())}
    sel = coaml.Selection(params, jnp.asarray(-jnp.inf), jnp.asarray(-1))
    for point, score in enumerate([1.0, 3.0, 2.0, 3.0, 0.5]):
        sel = coaml.select(sel, {"w": jnp.asarray(float(point))}, score, point)
    assert int(sel.best_point) == 3 and float(sel.best_params["w"]) == 3.0  # ties go to the later point
    sel = coaml.Selection(params, jnp.asarray(-jnp.inf), jnp.asarray(-1))
    sel = coaml.select(sel, {"w": jnp.ones(())}, 5.0, 0, counts=True, eligible=False)
    sel = coaml.select(sel, {"w": jnp.ones(())}, 4.0, 1, counts=True, eligible=True)
    assert int(sel.best_point) == -1  # the original keeps the initial actor here (paper-mode SIL quirk)


@pytest.mark.parametrize(
    ("factory", "kwargs", "match"),
    [
        (srl.SRLConfig, {"fy_epsilon": 0.0}, "fy_epsilon"),
        (srl.SRLConfig, {"fy_samples": 0}, "fy_samples"),
        (srl.SRLConfig, {"num_candidates": 0}, "num_candidates"),
        (srl.SRLConfig, {"sigma_b": (0.0, 1.0)}, "sigma_b"),
        (srl.PaperPPOConfig, {"clip": -0.1}, "clip"),
        (sil.SILConfig, {"fy_samples": 0}, "fy_samples"),
        (sil.SILConfig, {"fy_epsilon": -1.0}, "fy_epsilon"),
    ],
)
def test_bad_learner_configs(factory, kwargs, match):
    with pytest.raises(ValueError, match=match):
        factory(**kwargs)


def test_agents_never_import_environments():
    import pathlib

    import jaxretail.agents as agents

    for path in pathlib.Path(agents.__file__).parent.glob("*.py"):
        if path.name in ("coaml.py", "structured.py", "srl.py", "sil.py"):
            assert "jaxretail.envs" not in path.read_text(), path.name
