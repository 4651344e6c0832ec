"""Sharding the customer / episode axis over 4 forced CPU devices leaves every result unchanged:
assortment rollouts, coupon weeks and the shard_map bandit update (in one fresh process, since the
device count is fixed when JAX starts: the three checks share its start-up and JAX import)."""

import os
import subprocess
import sys
import textwrap

import pytest

FORCED = {
    **os.environ,
    "XLA_FLAGS": os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4",
    "JAX_PLATFORMS": "cpu",
}
CHECKS = {}  # name -> code run in the forced-device process; it prints "OK ..." when the check holds


def forced_check(code: str):
    """Register ``code`` as a check of the forced-device process; the decorated test reads its output."""

    def register(test):
        CHECKS[test.__name__] = textwrap.dedent(code)
        return test

    return register


RUNNER = """
import contextlib, io, sys, traceback
for name, code in CHECKS.items():
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, name, "exec"), {"__name__": name})
        print(f"@@ {name} " + out.getvalue().replace(chr(10), " "))
    except BaseException:
        print(f"@@ {name} FAILED " + traceback.format_exc().replace(chr(10), chr(31)))
"""


@pytest.fixture(scope="module")
def forced_outputs():
    """Runs every registered check in one process with 4 forced CPU devices: {test name: output}."""
    code = f"CHECKS = {CHECKS!r}\n" + RUNNER
    # a timeout turns a deadlock of the forced-device process into a failure instead of a hang
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=FORCED, timeout=900
    )
    assert res.returncode == 0, res.stderr[-3000:]
    lines = [line[3:] for line in res.stdout.splitlines() if line.startswith("@@ ")]
    return dict(line.split(" ", 1) for line in lines)


def run_forced(name: str, outputs: dict) -> str:
    out = outputs[name]
    assert not out.startswith("FAILED"), out.replace(chr(31), chr(10))[-3000:]
    return out


@forced_check(
    """
        import jax, numpy as np
        from jaxretail.core.rollout import rollout
        from jaxretail.core.sharding import customer_mesh, shard_leading
        from jaxretail.envs.assortment import DynamicAssortment, random_policy
        from jaxretail.evaluation.episodes import episode_keys
        env = DynamicAssortment(); p = env.default_params
        keys = episode_keys(range(64))
        run = jax.jit(lambda k, keys: rollout(env, random_policy, k, p, keys, 20)[2])
        single = np.asarray(run(jax.random.key(0), keys))
        mesh = customer_mesh()
        sharded = run(jax.random.key(0), shard_leading(keys, mesh, 64))
        assert len(jax.devices()) == 4 and len(sharded.sharding.device_set) == 4
        np.testing.assert_array_equal(single, np.asarray(sharded))
        try:
            shard_leading(keys[:7], mesh, 7)
        except ValueError as err:
            assert "divisible" in str(err)
        else:
            raise AssertionError("an uneven split must be an error")
        print("OK", single.sum())
        """
)
def test_sharded_assortment_rollout_equals_one_device(forced_outputs):
    out = run_forced("test_sharded_assortment_rollout_equals_one_device", forced_outputs)
    assert out.startswith("OK")


@forced_check(
    """
        import jax, jax.numpy as jnp, numpy as np
        from jaxretail.core.sharding import customer_mesh, shard_leading
        from jaxretail.envs.coupon import get_config, sample_scenario
        from jaxretail.envs.coupon import env as E
        from jaxretail.envs.coupon.sharded import shard_state, sharded_step
        cfg = get_config("hfhd", category_sizes=(7, 3, 12, 5))  # hfhd: marketing reads last week's coupon
        U = 256
        params = E.make_params(sample_scenario(jax.random.key(1), cfg, U), cfg, block_size=64)
        env = E.CouponEnv(params)
        obs, st = env.reset(jax.random.key(0), params)
        mesh = customer_mesh()
        step, st2 = sharded_step(params, mesh), shard_state(st, mesh)
        st3 = shard_leading(st, mesh, U)  # NamedSharding inputs, GSPMD-partitioned step
        one = jax.jit(env.step_env)
        for w in range(3):
            action = (jnp.arange(U, dtype=jnp.int32) * (w + 3)) % 11
            obs, st, r, _, _, info = one(jax.random.key(w), st, action, params)
            obs2, st2, r2, info2 = step(st2, shard_leading(action, mesh, U))
            obs3, st3, r3, _, _, info3 = one(jax.random.key(w), st3, shard_leading(action, mesh, U), params)
            for rr, oo, ii in ((r2, obs2, info2), (r3, obs3, info3)):
                np.testing.assert_allclose(np.asarray(r), np.asarray(rr), rtol=1e-6)
                np.testing.assert_allclose(np.asarray(obs), np.asarray(oo), rtol=1e-5, atol=1e-6)
                np.testing.assert_array_equal(np.asarray(info["visited"]), np.asarray(ii["visited"]))
        assert len(r3.sharding.device_set) == 4
        assert len(r2.sharding.device_set) == 4
        try:
            sharded_step(E.make_params(sample_scenario(jax.random.key(1), cfg, 10), cfg), mesh)
        except ValueError as err:
            assert "divisible" in str(err)
        else:
            raise AssertionError("an uneven split must be an error")
        print("OK", float(r.sum()))
        """
)
def test_sharded_coupon_weeks_equal_one_device(forced_outputs):
    """Customers sharded by NamedSharding (jit partitions the step) and by jax.shard_map: both give the
    single-device rewards, contexts and visits."""
    out = run_forced("test_sharded_coupon_weeks_equal_one_device", forced_outputs)
    assert out.startswith("OK")


@forced_check(
    """
        import jax, jax.numpy as jnp, numpy as np
        from jaxretail.agents.bandits import linear
        from jaxretail.core.sharding import customer_mesh, shard_leading
        rng = np.random.default_rng(0)
        x = jnp.asarray(rng.standard_normal((400, 5)), jnp.float32)
        a = jnp.asarray(rng.integers(0, 3, 400), jnp.int32)
        r = jnp.asarray(rng.standard_normal(400), jnp.float32)
        start = linear.update(linear.init(3, 5), x[:40], a[:40], r[:40])
        want = linear.update(start, x, a, r, 0.7)
        mesh = customer_mesh()
        got = linear.sharded_update(mesh)(start, *shard_leading((x, a, r), mesh, 400), 0.7)
        for w, g in zip(jax.tree.leaves(want), jax.tree.leaves(got)):
            np.testing.assert_allclose(np.asarray(w), np.asarray(g), rtol=1e-5, atol=1e-4)
        print("OK")
        """
)
def test_shard_map_bandit_update_equals_the_single_device_update(forced_outputs):
    out = run_forced("test_shard_map_bandit_update_equals_the_single_device_update", forced_outputs)
    assert out.startswith("OK")


@forced_check(
    """
        import tempfile, jax, jax.numpy as jnp, numpy as np
        from pathlib import Path
        from jaxretail.core.sharding import DeviceMap
        from jaxretail.data import collection as col, dataset as ds
        from jaxretail.envs.coupon import protocol as proto
        from jaxretail.envs.coupon.env import context
        from jaxretail.envs.coupon.policies import level_policy
        assert len(jax.devices()) == 4
        # 5 simulations over 4 devices (padded to 8) against the same collection on one device
        cfg = col.CollectionConfig(num_simulations=5, customers_per_simulation=64, num_weeks=3, block_size=64,
                                   category_sizes=(7, 3, 12, 5), base_prices="draw")
        root = Path(tempfile.mkdtemp())
        col.collect(root / "all", cfg, progress=False)
        col.collect(root / "one", cfg, progress=False, devices=jax.devices()[:1])
        a, b = ds.load_dataset(root / "all"), ds.load_dataset(root / "one")
        assert a.num_rows == b.num_rows == 5 * 64 * 3
        for name in a.column_names:
            np.testing.assert_array_equal(a.column(name).to_numpy(), b.column(name).to_numpy(), err_msg=name)
        starts = []
        for s in range(5):
            (p, st), (p1, st1) = col.load_state(root / "all", cfg, s), col.load_state(root / "one", cfg, s)
            for x, y in zip(jax.tree.leaves(st), jax.tree.leaves(st1)):  # float32 rounding aside
                np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-7)
            starts.append((p, st, context(st, p)))
        # the spread evaluation equals the one-simulation evaluator, simulation by simulation
        key = jax.random.key(3)
        spread = proto.spread_evaluator(level_policy, 3)
        got = spread((jnp.asarray(2), key, 1000), spread.place(starts))
        run = proto.evaluator(level_policy, 3)
        for i, (p, st, o) in enumerate(starts):
            want = run(p, st, o, jax.random.fold_in(key, 1000 + i), jnp.asarray(2))
            for k in want:
                np.testing.assert_allclose(got[i][k], np.asarray(want[k]), rtol=1e-6, err_msg=k)
        # items that cannot be stacked are refused before any compute, naming the item
        dm = DeviceMap(lambda shared, item, i: item * shared + i)
        assert [float(x) for x in dm(2.0, [jnp.ones(()), jnp.ones(()) * 3])] == [2.0, 7.0]
        assert list(dm.safe_devices.values()) == [4]
        # a batched LAPACK kernel fans out into the pool the device programs run on: with a program
        # on every device of a 2-core CPU it never returned, so such a program stays on one device
        chol = jnp.linalg.cholesky(jnp.eye(3)[None] * jnp.arange(1.0, 4.0)[:, None, None])
        tri = jax.scipy.linalg.solve_triangular
        solve = DeviceMap(lambda c, b, i: jax.vmap(lambda cc: tri(cc, b, lower=True))(c))
        got = solve(chol, [jnp.full((3, 8), float(k)) for k in range(5)])
        want = np.stack([np.linalg.solve(np.asarray(c), np.full((3, 8), 4.0)) for c in chol])
        np.testing.assert_allclose(got[4], want, rtol=1e-5)
        assert list(solve.safe_devices.values()) == [1]
        # ... and reads its items' shards one by one: no program over several devices (a gather of the
        # split items waited for every device's thread and, behind a linear bandit's fit still running,
        # aborted the coupon protocol after 40 s); every program compiled for a dispatch on one device
        # takes arguments on one device
        import logging
        compiled = []
        grab = logging.Handler()
        grab.emit = lambda record: compiled.append(record.getMessage())
        logging.getLogger("jax").addHandler(grab)
        jax.clear_caches()
        with jax.log_compiles(True):
            again = solve(chol, solve.place([jnp.full((3, 8), float(k)) for k in range(5)]))
        logging.getLogger("jax").removeHandler(grab)
        mappings = [m.split("Argument mapping:")[1] for m in compiled if "Argument mapping:" in m]
        assert mappings and not [m for m in mappings if "Mesh(" in m and "'items': 1" not in m], mappings
        np.testing.assert_array_equal(again[4], got[4])
        # kept on one device, the items run without the padding copies (5 calls, not 8)
        calls = []
        noted = DeviceMap(lambda s, x, i: (jax.debug.callback(lambda j: calls.append(int(j)), i), x * 2)[1])
        assert [float(v) for v in noted(None, [float(k) for k in range(5)])] == [0.0, 2.0, 4.0, 6.0, 8.0]
        assert list(noted.safe_devices.values()) == [1] and sorted(calls) == [0, 1, 2, 3, 4], calls
        # items placed by a map over other devices are refused, not recompiled or misplaced
        placed = DeviceMap(lambda s, x, i: x, jax.devices()[:2]).place([1.0, 2.0, 3.0])
        try:
            dm(1.0, placed)
        except ValueError as err:
            assert "placed over devices" in str(err), err
        else:
            raise AssertionError("items placed over 2 of 4 devices must be refused")
        for bad in ([], [jnp.ones(2), jnp.ones(3)]):
            try:
                dm(1.0, bad)
            except ValueError as err:
                assert "item" in str(err), err
            else:
                raise AssertionError(f"{bad} must be refused")
        print("OK")
        """
)
def test_collection_and_evaluation_spread_over_devices_equal_one_device(forced_outputs):
    """Simulations run one per host device (padded to a multiple of the device count) give the
    one-device dataset bit for bit and its saved states to float32 rounding (the two programs' loops
    differ in trip count), and the spread evaluation gives the per-simulation one."""
    out = run_forced("test_collection_and_evaluation_spread_over_devices_equal_one_device", forced_outputs)
    assert out.startswith("OK")


def test_multihost_example_matches_one_process():
    """Two processes joined by jax.distributed (CPU, gloo) give the single-process revenue."""
    import re
    import socket
    from pathlib import Path

    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    script = Path(__file__).resolve().parents[1] / "scripts" / "multihost_example.py"
    args = ["--local", "2", "--customers", "128", "--weeks", "2", "--coordinator", f"localhost:{port}"]
    args += ["--category-sizes", "7,3,12,5"]  # a tiny catalogue: the example's logic, not its scale
    res = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    revenues = re.findall(r"revenue (\S+)", res.stdout)
    assert "2 processes, 2 devices" in res.stdout and len(revenues) == 2
    assert float(revenues[0]) == float(revenues[1]) > 0
