"""Optuna TPE hyperparameter search, the JAX way: a batch of trials per compiled, vmapped run.

The coupon paper tuned its agents with Optuna's TPE sampler one trial at a time. Here the study asks
for ``batch_size`` trials, their vmappable hyperparameters (``PPOHyper`` / ``DQNHyper`` fields, or
any ``flax.struct`` hyper of a :class:`~jaxretail.agents.training.Trainer`) are stacked on a leading
axis, :func:`~jaxretail.agents.training.make_train` runs them all in ONE ``jit(vmap(train))`` call
(compiled once for every batch), and the scores are told back. With ``storage="sqlite:///x.db"`` and
a fixed ``study_name`` the study resumes where it stopped. Early stopping ends the search when the
best value has not improved by ``min_delta`` for ``patience`` batches.

Every trial of a search uses the same training key (common random numbers: trials differ only in
their hyperparameters).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxretail.agents.training import Trainer, make_train
from jaxretail.core.validation import ConfigError

STORAGE_RULE = (
    "an Optuna RDB URL like sqlite:///tune.db whose folder exists, or a database URL whose driver "
    "is installed (omit it for an in-memory study)"
)


@dataclasses.dataclass(frozen=True)
class FloatRange:
    """A float search range: ``low <= x <= high``, sampled on a log scale if ``log``."""

    low: float
    high: float
    log: bool = False

    def __post_init__(self):
        if not self.low < self.high or (self.log and self.low <= 0):
            raise ValueError(f"FloatRange needs low < high (and low > 0 on a log scale), got {self!r}")


def last_mean(metric: str, fraction: float = 0.25) -> Callable[[dict], jax.Array]:
    """Score = mean of ``metrics[metric]`` over the last ``fraction`` of the updates (per trial)."""

    def score(metrics):
        values = metrics[metric]  # [trials, updates]
        k = max(1, int(round(values.shape[1] * fraction)))
        return jnp.mean(values[:, -k:], axis=1)

    return score


def tune(
    study,
    trainer: Trainer,
    default_hyper: Any,
    search: dict[str, FloatRange],
    *,
    key: jax.Array,
    score: Callable[[dict], jax.Array],
    batch_size: int = 8,
    max_batches: int = 10,
    patience: int | None = 3,
    min_delta: float = 0.0,
    data: Any = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Run batches of ``batch_size`` trials of ``study`` (an ``optuna.Study``, maximised or
    minimised as it was created) until ``max_batches`` or early stopping.

    Args:
      default_hyper: the hyper dataclass whose ``search`` fields the trials replace.
      search: field name -> :class:`FloatRange`.
      score: ``metrics`` (each leaf ``[trials, num_updates, ...]``) -> ``[trials]`` values.

    Returns:
      ``{"best_params", "best_value", "trials" (told here), "batches", "seconds" (search, with the
      one compilation), "trials_per_second"}``.

    Raises:
      ValueError: for unknown field names, a non-positive ``batch_size`` / ``max_batches``.
    """
    names = set(search)
    fields = {f.name for f in dataclasses.fields(default_hyper)}
    if names - fields:
        raise ValueError(
            f"search fields {sorted(names - fields)} are not fields of {type(default_hyper).__name__}"
        )
    for name, value in (("batch_size", batch_size), ("max_batches", max_batches)):
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {name}={value!r}")
    train = make_train(trainer)
    batched = jax.jit(jax.vmap(lambda hyper: score(_add_axis(train(key, hyper, data)["metrics"]))[0]))
    maximize = study.direction.name == "MAXIMIZE"
    best, stale, told, batches = None, 0, 0, 0
    start = time.perf_counter()
    for _ in range(max_batches):
        trials = [study.ask() for _ in range(batch_size)]
        values = {
            name: np.array([t.suggest_float(name, r.low, r.high, log=r.log) for t in trials], np.float32)
            for name, r in search.items()
        }
        hyper = _stack(default_hyper, values, batch_size)
        scores = np.asarray(batched(hyper), np.float64)
        for trial, value in zip(trials, scores, strict=True):
            if np.isfinite(value):
                study.tell(trial, float(value))
            else:  # a NaN never ranks a trial: it is reported as failed
                study.tell(trial, state=_failed())
        told += batch_size
        batches += 1
        current = study.best_value if any(np.isfinite(scores)) or best is not None else None
        improved = current is not None and (
            best is None or (current - best > min_delta if maximize else best - current > min_delta)
        )
        best, stale = (current, 0) if improved else (best, stale + 1)
        if progress is not None:
            progress(f"batch {batches}: best {best}")
        if patience is not None and stale >= patience:
            break
    seconds = time.perf_counter() - start
    return {
        "best_params": study.best_params,
        "best_value": study.best_value,
        "trials": told,
        "batches": batches,
        "seconds": seconds,
        "trials_per_second": told / seconds,
    }


def check_storage(storage: str | None, field: str = "storage") -> str | None:
    """Check an Optuna storage URL before anything is computed; ``None`` (in memory) passes.

    Accepts what ``optuna.create_study(storage=...)`` opens as a string: an SQLAlchemy database URL
    whose dialect and DB-API driver are installed; for SQLite the database file's folder must exist
    (``sqlite://`` and ``sqlite:///:memory:`` are in-memory databases).

    Raises:
      ConfigError: naming ``field``, the value and what is allowed, e.g. for ``foo://bar`` (an unknown
        backend), ``""`` or ``sqlite:///missing/dir/t.db``.
    """
    if storage is None:
        return None
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    def refuse(reason: str):
        raise ConfigError(f"{field} must be {STORAGE_RULE}, got {field}={storage!r} ({reason})")

    try:
        url = make_url(storage)
    except (ArgumentError, ValueError, TypeError):
        refuse("not a database URL")
    try:
        dialect = url.get_dialect()
    except ArgumentError:  # NoSuchModuleError: no such backend / dialect
        refuse(f"unknown database backend {url.drivername!r}")
    try:
        dialect.import_dbapi()
    except ImportError as err:
        refuse(f"its driver is not installed: {err}")
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = Path(url.database).expanduser()
        if path.is_dir():
            refuse(f"{path} is a folder, not a database file")
        if not path.parent.is_dir():
            refuse(f"the folder {path.parent} does not exist")
    return storage


def open_study(storage: str | None, study_name: str, seed: int, field: str = "storage"):
    """``optuna.create_study`` (maximise, TPE seeded with ``seed``, resuming a study of that name).

    Raises:
      ConfigError: the storage cannot be opened (refused by :func:`check_storage`, or a database that
        does not answer, a file that is not a database, a schema of another Optuna version).
    """
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    check_storage(storage, field)
    try:
        return optuna.create_study(
            study_name=study_name, storage=storage, direction="maximize", load_if_exists=True,
            sampler=optuna.samplers.TPESampler(seed=seed),
        )  # fmt: skip
    except (SQLAlchemyError, ImportError, RuntimeError, optuna.exceptions.OptunaError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"{field}={storage!r} could not be opened: {first}") from err


def _add_axis(tree):
    return jax.tree.map(lambda x: x[None], tree)


def _stack(default_hyper, values: dict[str, np.ndarray], n: int):
    """``default_hyper`` with every leaf broadcast to ``[n]`` and the searched fields replaced."""
    base = jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x, jnp.float32), (n,)), default_hyper)
    return base.replace(**{k: jnp.asarray(v) for k, v in values.items()})


def _failed():
    import optuna

    return optuna.trial.TrialState.FAIL
