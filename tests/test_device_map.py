"""DeviceMap on this process's device(s): outputs per item, structures, keys, refused inputs; use_every_core.

The multi-device behaviour (results independent of the device count, the one-device fallback of programs
with LAPACK kernels) is checked in tests/test_sharding.py, in a process with 4 forced host devices."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxretail.core.sharding import DeviceMap
from jaxretail.utils.devices import use_every_core


def test_outputs_follow_each_item_and_its_index():
    run = DeviceMap(lambda shared, item, i: {"y": item["x"] * shared + i, "n": jnp.sum(item["v"])})
    items = [{"x": float(k), "v": np.full(3, k, np.float32)} for k in range(5)]
    out = run(2.0, items)
    assert [float(o["y"]) for o in out] == [2.0 * k + k for k in range(5)]
    assert [float(o["n"]) for o in out] == [3.0 * k for k in range(5)]


def test_many_items_are_stacked_like_numpy():
    xs = np.random.default_rng(0).normal(size=(3000, 4)).astype(np.float32)
    out = DeviceMap(lambda s, x, i: x.sum() + s)(1.0, list(xs))
    np.testing.assert_allclose(np.array(out), xs.sum(1) + 1.0, rtol=1e-5)


def test_output_structure_belongs_to_its_own_dispatch():
    """A structure that depends on a shape: a handle keeps its own (regression: it took the last traced)."""
    run = DeviceMap(lambda s, x, i: {"x": x} if s.shape == (1,) else {"y": x, "z": x})
    first = run.dispatch(jnp.ones(1), [1.0, 2.0])
    second = run.dispatch(jnp.ones(2), [1.0, 2.0])
    assert [set(o) for o in run.collect(first)] == [{"x"}, {"x"}]
    assert [set(o) for o in run.collect(second)] == [{"y", "z"}, {"y", "z"}]
    assert [set(o) for o in run(jnp.ones(1), [3.0])] == [{"x"}]


def test_prng_keys_as_items_and_outputs():
    keys = [jax.random.key(k) for k in range(3)]
    out = DeviceMap(lambda s, k, i: (jax.random.fold_in(k, i), jax.random.uniform(k)))(None, keys)
    for k, (key, u) in enumerate(out):
        assert u == jax.random.uniform(jax.random.key(k))
        assert jnp.all(
            jax.random.key_data(key) == jax.random.key_data(jax.random.fold_in(jax.random.key(k), k))
        )


def test_bad_inputs_are_refused_before_compute():
    run = DeviceMap(lambda s, x, i: x)
    with pytest.raises(ValueError, match="at least one item"):
        run(None, [])
    with pytest.raises(ValueError, match="item 1 differs"):
        run(None, [jnp.ones(2), jnp.ones(3)])
    with pytest.raises(ValueError, match="item 1 differs"):
        run(None, [jnp.ones(2), jnp.ones(2, jnp.int32)])
    with pytest.raises(ValueError, match="sequence"):
        run(None, {"a": 1.0})
    with pytest.raises(ValueError, match="distinct devices"):
        DeviceMap(lambda s, x, i: x, devices=[])
    with pytest.raises(ValueError, match="distinct devices"):
        DeviceMap(lambda s, x, i: x, devices=[jax.devices()[0]] * 2)
    # regressions of a break test: each of these raised a bare AttributeError / TypeError
    for devices in (["cpu"], [None], [0, 1]):
        with pytest.raises(ValueError, match="jax.Device"):
            DeviceMap(lambda s, x, i: x, devices=devices)
    for devices in (jax.devices()[0], "cpu"):
        with pytest.raises(ValueError, match="sequence of jax.Device"):
            DeviceMap(lambda s, x, i: x, devices=devices)
    with pytest.raises(ValueError, match="sequence"):
        run(None, "abc")
    with pytest.raises(ValueError, match="item 0 must be a pytree of arrays"):
        run(None, [{"a": "x"}, {"a": "y"}])
    with pytest.raises(ValueError, match="shared must be a pytree of arrays"):
        run("hello", [1.0])
    with pytest.raises(ValueError, match="cannot be stacked"):
        run(None, [2**40, 1])


def test_use_every_core_reports_the_started_backend_and_checks_count():
    jax.devices()  # JAX has started: nothing can change, the answer is the CPU device count
    before = os.environ.get("XLA_FLAGS")
    assert use_every_core() == (len(jax.devices("cpu")) > 1)
    assert os.environ.get("XLA_FLAGS") == before
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="count must be an integer"):
            use_every_core(bad)
