"""Trainers as ``(init, update)`` pairs, the pure ``train(key)`` they make, and a resumable driver.

A :class:`Trainer` holds ``init(key, hyper) -> runner_state`` and ``update(runner_state, data) ->
(runner_state, metrics)`` (one iteration: collect + learn; ``data`` is the logged dataset of offline
trainers and ``None`` online), plus the static ``num_updates``. ``hyper=None`` means the config's.

- :func:`make_train` turns it into ``train(key, hyper, data) -> {"state", "metrics"}``, one ``lax.scan``
  (PureJaxRL style): jit it, ``vmap`` it over seeds and over vmappable hyperparameters.
- :func:`run` executes the same updates in jitted chunks, shows progress, saves the runner state and
  the metrics so far with orbax after every chunk, and resumes from the latest checkpoint -- only if
  the checkpoint belongs to the same run (:func:`run_identity`).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
import orbax.checkpoint as ocp
from tqdm import tqdm

from jaxretail.core.vector import tree_sha1
from jaxretail.utils.atomic import atomic_write_bytes


class Trainer(NamedTuple):
    init: Callable[[jax.Array, Any], Any]
    update: Callable[[Any, Any], tuple[Any, Any]]
    num_updates: int
    config: Any = None  # static settings (e.g. PPOConfig); part of a checkpoint's run identity
    environment: Any = None  # what it trains on (VectorEnv.description); part of the run identity too


IDENTITY_FILE = "run_identity.json"


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


def _jsonable(x):
    return json.loads(json.dumps(x, sort_keys=True, default=repr))


def _leaves(tree, fn) -> dict[str, Any]:
    return {jax.tree_util.keystr(p): fn(x) for p, x in jax.tree_util.tree_leaves_with_path(tree)}


def _describe_config(config) -> Any:
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
        fields.pop("num_updates", None)  # may grow between calls: runs can be extended
        return {k: _describe_config(v) for k, v in fields.items()}
    if isinstance(config, jax.Array | np.ndarray | np.generic):
        return np.asarray(config).tolist()
    return config


def run_identity(
    trainer: Trainer, key: jax.Array, hyper: Any = None, data: Any = None, extra: Any = None
) -> dict:
    """What makes two calls of :func:`run` the same run: the trainer's static ``config`` (without
    ``num_updates``, which may be extended), the hyperparameters (values), the key data, the shapes
    and dtypes of the runner state, the shapes and a SHA-1 of ``data``, the environment the trainer
    steps (``Trainer.environment``: its class and a SHA-1 of its params, set by the online trainers from
    :func:`jaxretail.core.vector.describe_env`), and ``extra`` (anything the caller adds). JSON-ready."""
    abstract = jax.eval_shape(trainer.init, key, hyper)
    return _jsonable({
        "config": _describe_config(trainer.config),
        "hyper": None if hyper is None else _leaves(hyper, lambda x: np.asarray(x).tolist()),
        "key": np.asarray(jax.random.key_data(key)).tolist() if _is_key(key) else np.asarray(key).tolist(),
        "state": _leaves(_abstract_storable(abstract), lambda a: [list(a.shape), str(a.dtype)]),
        "data": {"leaves": _leaves(data, lambda x: [list(np.shape(x)), str(np.asarray(x).dtype)]),
                 "sha1": tree_sha1(data)},
        "environment": _jsonable(trainer.environment),
        "extra": extra,
    })  # fmt: skip


def _check_same_run(stored: dict, current: dict, folder: Path) -> None:
    differ = [k for k in current if stored.get(k) != current[k]]
    if differ:
        detail = "; ".join(
            f"{k}: checkpoint has {json.dumps(stored.get(k))[:200]}, this call {json.dumps(current[k])[:200]}"
            for k in differ
        )
        raise ValueError(
            f"checkpoint_dir {folder} holds a different run ({', '.join(differ)} differ: {detail}); "
            "pass overwrite=True to discard it, or use another checkpoint_dir"
        )


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
    identity: Any = None,
    overwrite: bool = False,
) -> dict:
    """Run ``trainer`` for ``num_updates`` in chunks of ``chunk_updates``, checkpointing each chunk.

    With ``checkpoint_dir`` set, an existing checkpoint there is resumed (finished updates and their
    metrics are kept), and each chunk's state is saved atomically (orbax ``CheckpointManager``).
    ``stop_after`` ends the call after that many chunks (for staged runs); call again to continue.
    A checkpoint is resumed only by the same run (:func:`run_identity` of ``trainer``, ``key``,
    ``hyper``, ``data`` and ``identity``, stored in ``run_identity.json``); ``num_updates`` may be
    raised to extend a finished run. ``overwrite=True`` discards a checkpoint of another run.

    Returns ``{"state", "metrics" (NumPy, [updates_done, ...]), "updates_done", "seconds"}``;
    ``updates_done <= num_updates`` always.

    Raises:
      ValueError: if ``checkpoint_dir`` holds a different run, a checkpoint without its identity, or
        more updates than ``num_updates`` (each unless ``overwrite``).
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
        folder = Path(checkpoint_dir).absolute()
        current = run_identity(trainer, key, hyper, data, identity)
        id_path = folder / IDENTITY_FILE
        stored = json.loads(id_path.read_text()) if id_path.exists() else None
        manager = ocp.CheckpointManager(folder, options=ocp.CheckpointManagerOptions(max_to_keep=2))
        latest = manager.latest_step()
        if latest is not None:
            problem = None
            if stored is None:
                problem = f"checkpoint_dir {folder} holds a checkpoint without {IDENTITY_FILE}"
            elif int(latest) > total:
                problem = (
                    f"checkpoint_dir {folder} holds {int(latest)} finished updates, more than "
                    f"num_updates={total}; ask for num_updates >= {int(latest)}"
                )
            else:
                try:
                    _check_same_run(stored["identity"], current, folder)
                except ValueError as err:
                    problem = str(err)
            if problem is not None and not overwrite:
                raise ValueError(
                    problem + ("" if "overwrite=True" in problem else "; or pass overwrite=True")
                )
            if problem is not None:  # overwrite: start over in an empty folder
                manager.close()
                shutil.rmtree(folder)
                manager = ocp.CheckpointManager(folder, options=ocp.CheckpointManagerOptions(max_to_keep=2))
                latest = None
        if latest is not None:
            stored_total = int(stored["num_updates"])
            saved = jax.tree.map(lambda m: np.zeros((stored_total,) + m.shape, m.dtype), metric_shapes)
            target = {"state": _abstract_storable(abstract), "metrics": saved}
            restored = manager.restore(latest, args=ocp.args.StandardRestore(target))
            state = _from_storable(restored["state"], abstract)
            done = int(latest)
            for dst, src in zip(jax.tree.leaves(metrics), jax.tree.leaves(restored["metrics"]), strict=True):
                dst[:done] = np.asarray(src)[:done]
        folder.mkdir(parents=True, exist_ok=True)
        record = json.dumps({"identity": current, "num_updates": total}, sort_keys=True, indent=1)
        atomic_write_bytes(id_path, record.encode())
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
