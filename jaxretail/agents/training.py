"""Trainers as ``(init, update)`` pairs, the pure ``train(key)`` they make, and a resumable driver.

A :class:`Trainer` holds ``init(key, hyper) -> runner_state`` and ``update(runner_state, data) ->
(runner_state, metrics)`` (one iteration: collect + learn; ``data`` is the logged dataset of offline
trainers and ``None`` online), plus the static ``num_updates``. ``hyper=None`` means the config's.

- :func:`make_train` turns it into ``train(key, hyper, data) -> {"state", "metrics"}``, one ``lax.scan``
  (PureJaxRL style): jit it, ``vmap`` it over seeds and over vmappable hyperparameters.
- :func:`run` executes the same updates in jitted chunks, shows progress, saves the runner state and
  the metrics so far with orbax after every chunk, and resumes from the latest checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
import orbax.checkpoint as ocp
from tqdm import tqdm


class Trainer(NamedTuple):
    init: Callable[[jax.Array, Any], Any]
    update: Callable[[Any, Any], tuple[Any, Any]]
    num_updates: int


def make_train(trainer: Trainer) -> Callable[[jax.Array, Any], dict]:
    """``train(key, hyper=None, data=None) -> {"state": final runner state, "metrics": each leaf
    [num_updates, ...]}``."""

    def train(key, hyper=None, data=None):
        state = trainer.init(key, hyper)
        state, metrics = jax.lax.scan(lambda s, _: trainer.update(s, data), state, None, trainer.num_updates)
        return {"state": state, "metrics": metrics}

    return train


def _is_key(x) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _to_storable(tree):
    """Typed PRNG keys become their uint32 key data (orbax stores plain arrays)."""
    return jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, tree)


def _from_storable(tree, abstract):
    return jax.tree.map(lambda x, a: jax.random.wrap_key_data(x) if _is_key(a) else x, tree, abstract)


def _abstract_storable(abstract):
    return jax.tree.map(lambda a: jax.eval_shape(jax.random.key_data, a) if _is_key(a) else a, abstract)


def run(
    trainer: Trainer,
    key: jax.Array,
    hyper: Any = None,
    data: Any = None,
    *,
    checkpoint_dir: str | Path | None = None,
    chunk_updates: int = 10,
    progress: bool = True,
    stop_after: int | None = None,
) -> dict:
    """Run ``trainer`` for ``num_updates`` in chunks of ``chunk_updates``, checkpointing each chunk.

    With ``checkpoint_dir`` set, an existing checkpoint there is resumed (finished updates and their
    metrics are kept), and each chunk's state is saved atomically (orbax ``CheckpointManager``).
    ``stop_after`` ends the call after that many chunks (for staged runs); call again to continue.

    Returns ``{"state", "metrics" (NumPy, [updates_done, ...]), "updates_done", "seconds"}``.
    """
    if int(chunk_updates) != chunk_updates or chunk_updates < 1:
        raise ValueError(f"chunk_updates must be a positive integer, got chunk_updates={chunk_updates!r}")
    total = trainer.num_updates
    abstract = jax.eval_shape(trainer.init, key, hyper)
    metric_shapes = jax.eval_shape(lambda s, d: trainer.update(s, d)[1], abstract, data)
    metrics = jax.tree.map(lambda m: np.zeros((total,) + m.shape, m.dtype), metric_shapes)
    done = 0
    manager = None
    if checkpoint_dir is not None:
        manager = ocp.CheckpointManager(
            Path(checkpoint_dir).absolute(), options=ocp.CheckpointManagerOptions(max_to_keep=2)
        )
        latest = manager.latest_step()
        if latest is not None:
            target = {"state": _abstract_storable(abstract), "metrics": metrics}
            restored = manager.restore(latest, args=ocp.args.StandardRestore(target))
            state = _from_storable(restored["state"], abstract)
            metrics = jax.tree.map(np.array, restored["metrics"])
            done = int(latest)
    if done == 0:
        state = jax.jit(trainer.init)(key, hyper)

    chunk = jax.jit(
        lambda state, data, n: jax.lax.scan(lambda s, _: trainer.update(s, data), state, None, n),
        static_argnums=2,
        donate_argnums=0,
    )
    start, chunks = time.perf_counter(), 0
    bar = tqdm(total=total, initial=done, desc="updates", disable=not progress, leave=False)
    while done < total and (stop_after is None or chunks < stop_after):
        n = min(chunk_updates, total - done)
        state, m = chunk(state, data, n)
        m = jax.tree.map(np.asarray, m)
        for dst, src in zip(jax.tree.leaves(metrics), jax.tree.leaves(m), strict=True):
            dst[done : done + n] = src
        done += n
        chunks += 1
        if manager is not None:
            manager.save(done, args=ocp.args.StandardSave({"state": _to_storable(state), "metrics": metrics}))
            manager.wait_until_finished()
        bar.update(n)
    bar.close()
    if manager is not None:
        manager.close()
    return {
        "state": state,
        "metrics": jax.tree.map(lambda m: m[:done], metrics),
        "updates_done": done,
        "seconds": time.perf_counter() - start,
    }
