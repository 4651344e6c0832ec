"""Shared benchmark machinery: device selection, compile vs steady-state timing, XLA cost and memory
analysis, and the device's measured memory bandwidth."""

from __future__ import annotations

import dataclasses
import resource
import statistics
import time
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

DEVICE_CHOICES = ("cpu", "gpu", "tpu", "auto")


class DeviceUnavailableError(RuntimeError):
    """The requested accelerator is not available to JAX."""


def select_device(name: str) -> jax.Device:
    """The first device of kind ``name`` (``auto``: JAX's default backend); never falls back.

    Raises:
      DeviceUnavailableError: naming the request and what JAX does have.
    """
    if name not in DEVICE_CHOICES:
        raise ValueError(f"--device must be one of {DEVICE_CHOICES}, got --device={name!r}")
    if name == "auto":
        return jax.devices()[0]
    try:
        devices = jax.devices(name)
    except RuntimeError as err:
        devices, reason = [], str(err).splitlines()[0]
    else:
        reason = ""
    if not devices:
        available = sorted({d.platform for d in jax.devices()})
        raise DeviceUnavailableError(
            f"--device {name} requested, but JAX has no {name} device (available: {', '.join(available)}). "
            f"{reason} For NVIDIA GPUs install the CUDA build: pip install -e '.[cuda12]'."
        )
    return devices[0]


@dataclasses.dataclass
class Timing:
    compile_s: float  # lowering + XLA compilation
    seconds: float  # median steady-state time of one call
    repeats: list[float]  # every timed call
    flops: float  # XLA cost analysis of the compiled program (loop bodies counted once)
    bytes_accessed: float
    buffer_bytes: int  # XLA buffer plan: arguments + outputs + temporaries - aliased
    output: object = None  # what the last timed call returned


def time_jit(fn: Callable, args: Sequence, repeats: int = 3, warmup: int = 1, donate: bool = False) -> Timing:
    """Compile ``jax.jit(fn)`` for ``args`` (timed apart), warm up, then time ``repeats`` calls
    with ``block_until_ready``; the figure is the median."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got repeats={repeats}")
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - start
    for _ in range(warmup):
        jax.block_until_ready(compiled(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - start)
    cost = compiled.cost_analysis() or {}
    cost = cost[0] if isinstance(cost, list) else cost
    mem = compiled.memory_analysis()
    buffers = (
        mem.argument_size_in_bytes
        + mem.output_size_in_bytes
        + mem.temp_size_in_bytes
        - mem.alias_size_in_bytes
        if mem is not None
        else 0
    )
    return Timing(
        compile_s,
        statistics.median(times),
        times,
        float(cost.get("flops", float("nan"))),
        float(cost.get("bytes accessed", float("nan"))),
        int(buffers),
        out,
    )


def xla_cost(fn: Callable, args: Sequence) -> tuple[float, float]:
    """``(flops, bytes accessed)`` of ``jax.jit(fn)`` compiled for ``args`` (arrays or
    ``jax.ShapeDtypeStruct``s; nothing is run). Loop bodies are counted once."""
    cost = jax.jit(fn).lower(*args).compile().cost_analysis() or {}
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost.get("flops", float("nan"))), float(cost.get("bytes accessed", float("nan")))


def time_python(fn: Callable[[], object], repeats: int = 3, warmup: int = 0) -> float:
    """Median wall time of a plain Python callable (NumPy references)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_memory_bytes(device: jax.Device) -> int | None:
    """Peak bytes in use on an accelerator (its allocator's statistics), or the process's peak
    resident set on CPU."""
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and "peak_bytes_in_use" in stats:
        return int(stats["peak_bytes_in_use"])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def memory_bandwidth(device: jax.Device, mib: int = 256, repeats: int = 5) -> float:
    """Measured streaming-read bandwidth of ``device`` in bytes/s (a jitted sum over ``mib`` MiB)."""
    x = jax.device_put(jnp.ones((mib * 2**20 // 4,), jnp.float32), device)
    t = time_jit(jnp.sum, (x,), repeats=repeats)
    return x.nbytes / t.seconds
