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
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=FORCED)
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
