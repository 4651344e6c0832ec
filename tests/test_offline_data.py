"""Offline collection: Parquet round trip, interrupted writes, resume, exact state restore."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxretail.core.rollout import scan_steps
from jaxretail.data import collection as col
from jaxretail.data import dataset as ds
from jaxretail.envs.coupon.env import CONTEXT_FEATURES, CouponEnv, context
from jaxretail.envs.coupon.policies import static_coupon_policy

CFG = col.CollectionConfig(  # a tiny catalogue (27 products): the published one is for benchmarks/
    num_simulations=2, customers_per_simulation=64, num_weeks=3, block_size=64,
    category_sizes=(7, 3, 12, 5), base_prices="draw",
)  # fmt: skip


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    col.collect(root, CFG, progress=False)
    return root


def test_parquet_round_trip_preserves_columns_and_dtypes(collected):
    table = ds.load_dataset(collected)
    assert table.schema.equals(ds.SCHEMA, check_metadata=False)
    assert table.num_rows == 2 * 64 * 3
    assert sorted(set(table.column("simulation").to_pylist())) == [0, 1]
    probs = table.column("action_prob").to_numpy()
    np.testing.assert_allclose(probs, 1 / 11, rtol=1e-6)
    # values survive exactly: rebuild a table from NumPy columns and compare after a write/read cycle
    n = 10
    rng = np.random.default_rng(0)
    cols = {
        "simulation": np.full(n, 7),
        "customer": np.arange(n),
        "week": np.arange(n) % 3,
        "action": rng.integers(0, 11, n),
        "action_prob": rng.random(n),
        "reward": rng.random(n) * 5,
        "context": rng.normal(size=(n, 9)),
        "next_context": rng.normal(size=(n, 9)),
    }
    ds.write_part(collected / "extra", 7, ds.columns_to_table(cols), {"test": True})
    back = ds.pq.read_table(ds.part_path(collected / "extra", 7))
    assert back.schema.equals(ds.SCHEMA, check_metadata=False)
    np.testing.assert_array_equal(back.column("action").to_numpy(), cols["action"].astype(np.int32))
    np.testing.assert_array_equal(back.column("reward").to_numpy(), cols["reward"].astype(np.float32))
    for j, f in enumerate(CONTEXT_FEATURES):
        np.testing.assert_array_equal(
            back.column(f"next_ctx_{f}").to_numpy(), cols["next_context"][:, j].astype(np.float32)
        )
    assert b"jaxretail" in back.schema.metadata


def test_next_context_is_the_following_weeks_context(collected):
    t = ds.load_dataset(collected).to_pydict()
    key = {
        (s, c, w): i
        for i, (s, c, w) in enumerate(zip(t["simulation"], t["customer"], t["week"], strict=True))
    }
    f = f"ctx_{CONTEXT_FEATURES[6]}"
    for (s, c, w), i in list(key.items())[:200]:
        if w + 1 < CFG.num_weeks:
            assert t[f"next_{f}"][i] == t[f][key[(s, c, w + 1)]]


def test_interrupted_collection_is_incomplete_then_resumes_to_the_same_data(tmp_path, collected, monkeypatch):
    root = tmp_path / "ds"
    original = ds.write_part

    def crash_on_second(root_, sim, table, meta):
        if sim == 1:
            raise KeyboardInterrupt("simulated interruption")
        original(root_, sim, table, meta)

    monkeypatch.setattr(ds, "write_part", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        col.collect(root, CFG, progress=False)
    with pytest.raises(ds.IncompleteDatasetError):
        ds.load_dataset(root)
    assert not [p for p in root.iterdir() if ".tmp" in p.name]
    monkeypatch.setattr(ds, "write_part", original)
    col.collect(root, CFG, progress=False)
    resumed, fresh = ds.load_dataset(root), ds.load_dataset(collected)
    for name in ds.SCHEMA.names:
        np.testing.assert_array_equal(resumed.column(name).to_numpy(), fresh.column(name).to_numpy())
    # a listed part that went missing is detected
    ds.part_path(root, 0).unlink()
    with pytest.raises(ds.IncompleteDatasetError, match="missing"):
        ds.load_dataset(root)


def test_restored_state_resumes_the_same_trajectory(collected):
    env = CouponEnv()
    policy = static_coupon_policy(6)
    params = col.simulation_params(CFG, 1)

    @jax.jit  # the collection's own program (collection.py), so its compilation is reused
    def run(params, key):
        obs, state = env.reset(key, params)  # the coupon env's reset ignores its key
        return col.rollout_logged(env, params, key, obs, state, CFG.num_weeks)

    @jax.jit
    def three_weeks(params, obs, state):
        return scan_steps(env, policy, jax.random.key(5), params, obs, state, 3)[2]

    obs, state, _ = run(params, jax.random.fold_in(jax.random.key(CFG.seed + 1), 1))
    straight = three_weeks(params, obs, state)
    params2, restored = col.load_state(collected, CFG, 1)
    resumed = three_weeks(params2, context(restored, params2), restored)
    np.testing.assert_array_equal(np.asarray(straight), np.asarray(resumed))
    assert int(restored.t) == CFG.num_weeks


def test_bad_collection_config():
    with pytest.raises(ValueError, match="num_weeks"):
        col.CollectionConfig(num_weeks=0)
    with pytest.raises(ValueError, match="customers_per_simulation"):
        col.CollectionConfig(customers_per_simulation=-3)


def test_uniform_behaviour_probabilities():
    params = col.simulation_params(CFG, 0)
    action, prob = col.uniform_behaviour(jax.random.key(0), jnp.zeros((64, 9)), None, params)
    assert action.shape == (64,) and float(prob[0]) == pytest.approx(1 / 11)
