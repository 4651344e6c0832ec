"""One JAX host device per CPU core, so that work split over devices uses every core.

XLA runs one program on one CPU device mostly on one core (its intra-op parallelism covers few ops);
exposing each core as a host device lets :class:`jaxretail.core.sharding.DeviceMap` (independent
simulations, evaluation runs) and ``jax.shard_map`` (customers of one simulation) run on all of them.
"""

from __future__ import annotations

import os

FLAG = "--xla_force_host_platform_device_count"


def cpu_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS reports one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def use_every_core(count: int | None = None) -> bool:
    """Ask XLA for ``count`` host CPU devices (default: one per core) through ``XLA_FLAGS``.

    Call it at the top of a script, before JAX runs anything (JAX reads ``XLA_FLAGS`` once, when it
    starts its backends). A device count already in ``XLA_FLAGS`` is left as it is.

    Returns:
      Whether the flag now applies: False when JAX had already started (nothing is changed then).
    """
    from jax._src import xla_bridge

    if xla_bridge.backends_are_initialized():
        return FLAG in os.environ.get("XLA_FLAGS", "")
    flags = os.environ.get("XLA_FLAGS", "")
    if FLAG not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {FLAG}={count or cpu_cores()}".strip()
    return True
