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

from typing import Any

import jax
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
