"""Sharding the customer (or episode) axis over devices with ``jax.sharding``.

jaxretail keeps every per-customer array with the customer axis first and draws every random number
from global ids, so a population can be split over devices without changing its results:

    mesh = customer_mesh()                          # all devices on one "customers" axis
    state = shard_leading(state, mesh, num_customers)
    obs, state, reward, *_ = jax.jit(env.step_env)(key, state, action, params)   # GSPMD partitions it

Parameters and per-product arrays stay replicated. Where an explicit collective is cheaper than
what the partitioner infers, ``jax.shard_map`` is used, e.g.
:func:`jaxretail.agents.bandits.linear.sharded_update` (local Gram matrices, one ``psum``).
Across hosts the same code runs after ``jax.distributed.initialize``
(see ``scripts/multihost_example.py``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

AXIS = "customers"


def customer_mesh(devices=None, axis: str = AXIS) -> Mesh:
    """A 1-D mesh over ``devices`` (default: every device, across hosts too)."""
    devices = jax.devices() if devices is None else list(devices)
    return jax.make_mesh((len(devices),), (axis,), devices=devices, axis_types=(jax.sharding.AxisType.Auto,))


def shard_leading(tree: Any, mesh: Mesh, size: int, axis: str = AXIS) -> Any:
    """Place every array whose leading dimension is ``size`` sharded along it; replicate the rest.

    Raises:
      ValueError: if ``size`` is not divisible by the number of devices on ``axis``.
    """
    n = mesh.shape[axis]
    if size % n:
        raise ValueError(
            f"the sharded axis ({size}) must be divisible by the {n} devices of mesh axis {axis!r}"
        )
    split, whole = NamedSharding(mesh, P(axis)), NamedSharding(mesh, P())

    def place(x):
        if not hasattr(x, "shape"):
            return x
        return jax.device_put(x, split if x.ndim and x.shape[0] == size else whole)

    return jax.tree.map(place, tree)


ITEMS = "items"
_log = logging.getLogger(__name__)


class Placed(NamedTuple):
    """Items stacked on a leading axis and split over a :class:`DeviceMap`'s devices."""

    leaves: list  # the item indices [count + padding], then each leaf [count + padding, ...]
    item_def: Any  # the items' pytree structure
    count: int  # items before padding
    devices: tuple  # the devices they are split over


class DeviceMap:
    """``fn(shared, item, index)`` for a list of independent items (simulations, evaluation runs), the
    items split evenly over devices and each device mapping over its own share with ``lax.map``: one
    compiled program whatever the device, so every core of a CPU exposed as host devices
    (:func:`jaxretail.utils.devices.use_every_core`) or every local accelerator works at once, and the
    results do not depend on the number of devices.

        run = DeviceMap(lambda agent, start, i: evaluate(*start, agent))
        pending = run.dispatch(agent, starts)    # returns at once (asynchronous dispatch)
        outputs = run.collect(pending)           # one pytree of NumPy arrays per item, in order

    Items must share one pytree structure and leaf shapes (their leaves are stacked on a new leading
    axis, padded to a multiple of the device count by repeating the last item); ``shared`` is
    replicated on every device.

    On several CPU devices, a program whose lowering holds a ``custom_call`` (LAPACK solves and
    factorisations, host callbacks such as ``jax.debug.print``) runs on the first device only: the
    LAPACK kernels fan their batch out into the thread pool the device programs themselves run on, and
    deadlock once every pool thread runs one (jaxlib 0.10: a vmapped ``solve_triangular`` on two host
    devices of a 2-core CPU never returns); other custom calls are kept off the pool the same way, to
    be safe; there it runs the items without the padding copies, their shards copied to the first
    device one by one (never gathered by a program over several devices, see :func:`_first_rows`).
    Such a program is logged (``logging`` at INFO) and :attr:`safe_devices` tells how many devices
    each program used.

    Args:
      fn: ``fn(shared, item, index) -> pytree of arrays``, traceable; ``index`` is the item's position
        in the list (an int32 scalar, e.g. to fold into a key).
      devices: the devices to use (default: every local device of the default backend).

    Raises:
      ValueError: no devices, a repeated device or one that is not a ``jax.Device``; from ``place`` and
        ``dispatch``: no items, items whose structures or leaf shapes differ, leaves (of an item or of
        ``shared``) that are not arrays or numbers (naming the item), or items placed over other devices.
    """

    def __init__(self, fn: Callable, devices=None):
        self.fn = fn
        one = isinstance(devices, (str, jax.Device)) or not isinstance(devices, Iterable)
        if devices is not None and one:
            raise ValueError(f"DeviceMap devices must be a sequence of jax.Device, got devices={devices!r}")
        self.devices = list(jax.local_devices() if devices is None else devices)
        if not all(isinstance(d, jax.Device) for d in self.devices):
            raise ValueError(f"DeviceMap devices must be jax.Device objects, got devices={self.devices!r}")
        if not self.devices or len(set(self.devices)) != len(self.devices):
            raise ValueError(f"DeviceMap needs distinct devices, got devices={self.devices!r}")
        self.mesh = _item_mesh(self.devices)
        self._programs: dict = {}  # program key -> (jitted program, its mesh)
        self._out_defs: dict = {}  # program key -> output structure
        self.safe_devices: dict = {}  # program key -> devices its program uses

    def _build(self, key, mesh):
        shared_def, item_def = key[:2]

        def local(shared_leaves, item_leaves):
            shared = jax.tree.unflatten(shared_def, shared_leaves)

            def one(args):
                index, leaves = args
                out, self._out_defs[key] = jax.tree.flatten(
                    self.fn(shared, jax.tree.unflatten(item_def, leaves), index)
                )
                return out

            return jax.lax.map(one, (item_leaves[0], item_leaves[1:]))

        spec = (P(), P(ITEMS))
        return jax.jit(jax.shard_map(local, mesh=mesh, in_specs=spec, out_specs=P(ITEMS), check_vma=False))

    def _program(self, key, shared_leaves, item_leaves):
        if key not in self._programs:
            program, mesh = self._build(key, self.mesh), self.mesh
            if len(self.devices) > 1 and self.devices[0].platform == "cpu":
                text = program.lower(shared_leaves, item_leaves).as_text()
                calls = set(re.findall(r"custom_call\s*@([\w.]+)", text)) - _SHARDING_CALLS
                if calls:
                    _log.info("DeviceMap: %s calls %s; it runs on one CPU device", self.fn, sorted(calls))
                    mesh = _item_mesh(self.devices[:1])
                    program = self._build(key, mesh)
            self._programs[key] = (program, mesh)
            self.safe_devices[key] = len(mesh.devices.flat)
        return self._programs[key]

    def place(self, items) -> Placed:
        """Stack ``items`` (a sequence) and split them over the devices once, for repeated
        :meth:`dispatch` calls (the stacking runs in NumPy, whatever the number of items)."""
        if isinstance(items, Placed):
            if items.devices != tuple(self.devices):
                raise ValueError(
                    f"these items were placed over devices {list(items.devices)}, this DeviceMap runs on "
                    f"{self.devices}; place them with this DeviceMap"
                )
            return items
        if isinstance(items, (Mapping, str, bytes)) or not isinstance(items, Iterable):
            raise ValueError(f"DeviceMap items must be a sequence of pytrees, got {type(items).__name__}")
        items = list(items)
        if not items:
            raise ValueError("DeviceMap needs at least one item, got none")
        leaves, item_def = jax.tree.flatten(items[0])
        avals = _avals(leaves, "item 0")
        stacks = [[x] for x in leaves]
        for i, item in enumerate(items[1:], 1):
            other, other_def = jax.tree.flatten(item)
            if other_def != item_def or _avals(other, f"item {i}") != avals:
                raise ValueError(
                    f"DeviceMap items must share one structure and leaf shapes; item {i} differs from item "
                    f"0: {other_def} {[_aval(x) for x in other]} vs {item_def} {avals}"
                )
            for stack, x in zip(stacks, other, strict=True):
                stack.append(x)
        pad = -len(items) % len(self.devices)
        index = np.minimum(np.arange(len(items) + pad, dtype=np.int32), len(items) - 1)
        try:
            stacks = [_stack(xs + xs[-1:] * pad, aval) for xs, aval in zip(stacks, avals, strict=True)]
        except (TypeError, ValueError, OverflowError) as err:
            raise ValueError(f"DeviceMap items cannot be stacked into arrays: {err}") from None
        stacked = [index, *stacks]
        placed = jax.device_put(stacked, NamedSharding(self.mesh, P(ITEMS)))
        return Placed(placed, item_def, len(items), tuple(self.devices))

    def dispatch(self, shared: Any, items) -> tuple:
        """Start ``fn(shared, item, index)`` for every item (a sequence, or the result of
        :meth:`place`); returns a handle for :meth:`collect` at once."""
        placed = self.place(items)
        shared_leaves, shared_def = jax.tree.flatten(shared)
        # one program per structure and shapes, so each has one output structure
        key = (
            shared_def,
            placed.item_def,
            tuple(_avals(shared_leaves, "shared")),
            tuple(map(_aval, placed.leaves)),
        )
        program, mesh = self._program(key, shared_leaves, placed.leaves)
        item_leaves = placed.leaves
        if mesh is not self.mesh:  # kept on one device (see the class docstring): no padding copies
            device = mesh.devices.flat[0]
            item_leaves = [_first_rows(x, placed.count, device) for x in item_leaves]
        out = program(jax.device_put(shared_leaves, NamedSharding(mesh, P())), item_leaves)
        return out, self._out_defs[key], placed.count

    def collect(self, pending: tuple) -> list:
        """The outputs of a :meth:`dispatch` (waits for them): a list, per item, of NumPy pytrees
        (PRNG key leaves stay JAX arrays)."""
        out, out_def, count = pending
        host = [
            _KeyRows(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else np.asarray(x) for x in out
        ]
        return [jax.tree.unflatten(out_def, [x[i] for x in host]) for i in range(count)]

    def __call__(self, shared: Any, items) -> list:
        """:meth:`dispatch` then :meth:`collect`."""
        return self.collect(self.dispatch(shared, items))


# custom calls of the partitioner itself (not library kernels)
_SHARDING_CALLS = {"Sharding", "SPMDFullToShardShape", "SPMDShardToFullShape"}


def _item_mesh(devices) -> Mesh:
    return Mesh(np.asarray(devices), (ITEMS,))


def _avals(leaves: list, where: str) -> list:
    """``_aval`` of every leaf, a leaf that is not an array naming ``where`` it is (e.g. ``item 3``)."""
    try:
        return [_aval(x) for x in leaves]
    except (TypeError, ValueError, OverflowError) as err:
        raise ValueError(f"DeviceMap {where} must be a pytree of arrays or numbers: {err}") from None


def _aval(x) -> tuple:
    """``(shape, dtype)`` of a leaf as JAX would hold it (Python scalars in their default dtype)."""
    return (tuple(jnp.shape(x)), jnp.result_type(x))


def _first_rows(x: jax.Array, count: int, device) -> jax.Array:
    """The first ``count`` rows of ``x`` (split over devices on its leading axis) on ``device`` alone.

    The shards are copied one by one and joined there: no program runs over several devices. A
    cross-device program (slicing the split array would be one, an all-gather) waits for every
    device's thread, and on a small CPU it starves behind work still queued on one of them (jaxlib
    0.10 aborts the process after 40 s: a linear bandit's fit in flight on device 0, then its
    one-device evaluation)."""
    shards = sorted(x.addressable_shards, key=lambda s: s.index[0].start or 0)
    rows = [jax.device_put(s.data, device) for s in shards]
    return (jnp.concatenate(rows) if len(rows) > 1 else rows[0])[:count]


class _KeyRows:
    """Row ``i`` of a PRNG key array split over devices, read from its key data on the host (indexing
    the split array itself would run a cross-device program, see :func:`_first_rows`)."""

    def __init__(self, keys: jax.Array):
        self.impl = jax.random.key_impl(keys)
        self.data = np.asarray(jax.random.key_data(keys))

    def __getitem__(self, i: int) -> jax.Array:
        return jax.random.wrap_key_data(self.data[i], impl=self.impl)


def _stack(xs: list, aval: tuple):
    """``xs`` stacked on a new leading axis in NumPy (PRNG keys through their key data)."""
    dtype = aval[1]
    if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        data = np.stack([np.asarray(jax.random.key_data(x)) for x in xs])
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(xs[0]))
    return np.stack([np.asarray(x, dtype=dtype) for x in xs])
