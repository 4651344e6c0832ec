"""One JAX host device per CPU core, so that work split over devices uses every core.

XLA runs one program on one CPU device mostly on one core (its intra-op parallelism covers few ops);
exposing each core as a host device lets :class:`jaxretail.core.sharding.DeviceMap` (independent
simulations, evaluation runs) and ``jax.shard_map`` (customers of one simulation) run on all of them.
"""

from __future__ import annotations

import os
import re

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
      Whether the process has (or, once JAX starts, will have) more than one CPU device. When JAX has
      already started nothing is changed and the answer is read from ``jax.devices("cpu")``.

    Raises:
      ValueError: ``count`` is not an integer >= 1.
    """
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ValueError(
            f"use_every_core: count must be an integer >= 1 (or None: one per core), got {count!r}"
        )
    import jax
    from jax._src import xla_bridge

    if xla_bridge.backends_are_initialized():
        try:
            return len(jax.devices("cpu")) > 1
        except RuntimeError:  # no CPU backend in this process
            return False
    flags = os.environ.get("XLA_FLAGS", "")
    match = re.search(FLAG + r"=(\d+)", flags)
    if match:
        return int(match.group(1)) > 1
    count = count or cpu_cores()
    os.environ["XLA_FLAGS"] = f"{flags} {FLAG}={count}".strip()
    return count > 1
