"""Logged coupon data as a Parquet dataset: one part file per simulation plus a manifest.

Layout of a dataset folder::

    part-00000.parquet ...     one per simulation, written atomically (temporary file + rename)
    state-00000/ ...           orbax checkpoint of the simulation's environment state after collection
    _manifest.json             written last, atomically: metadata, schema, parts and row counts

A folder without ``_manifest.json`` is an incomplete dataset and :func:`load_dataset` refuses it, so an
interrupted collection is never mistaken for a complete one; :func:`jaxretail.data.collection.collect`
resumes it by skipping the simulations whose part and state are both present.

Schema (one row per customer-week; readable by pyarrow, pandas, polars and duckdb):

=================  =======  ==========================================================
column             type     meaning
=================  =======  ==========================================================
simulation         int32    simulation index (its scenario is drawn from the seed)
customer           int32    customer index within the simulation
week               int32    0-based week of the decision
action             int32    coupon level index chosen by the behaviour policy
action_prob        float32  probability of that action under the behaviour policy
reward             float32  the customer's revenue that week, after coupons
ctx_<feature>      float32  the 9 context features seen before the decision
next_ctx_<feature> float32  the 9 context features after the week
=================  =======  ==========================================================
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from jaxretail.envs.coupon.env import CONTEXT_FEATURES
from jaxretail.utils.atomic import atomic_path, atomic_write_text

MANIFEST = "_manifest.json"
SCHEMA = pa.schema(
    [("simulation", pa.int32()), ("customer", pa.int32()), ("week", pa.int32()), ("action", pa.int32()),
     ("action_prob", pa.float32()), ("reward", pa.float32())]
    + [(f"ctx_{f}", pa.float32()) for f in CONTEXT_FEATURES]
    + [(f"next_ctx_{f}", pa.float32()) for f in CONTEXT_FEATURES]
)  # fmt: skip


class IncompleteDatasetError(RuntimeError):
    """The folder holds no complete dataset (no manifest, or a listed part is missing or short)."""


def part_path(root: Path, simulation: int) -> Path:
    return Path(root) / f"part-{simulation:05d}.parquet"


def state_path(root: Path, simulation: int) -> Path:
    return Path(root) / f"state-{simulation:05d}"


def columns_to_table(columns: dict[str, np.ndarray]) -> pa.Table:
    """A table in :data:`SCHEMA` from flat NumPy columns (contexts as ``[n, 9]`` arrays)."""
    arrays = {
        "simulation": columns["simulation"], "customer": columns["customer"], "week": columns["week"],
        "action": columns["action"], "action_prob": columns["action_prob"], "reward": columns["reward"],
    }  # fmt: skip
    for j, f in enumerate(CONTEXT_FEATURES):
        arrays[f"ctx_{f}"] = columns["context"][:, j]
        arrays[f"next_ctx_{f}"] = columns["next_context"][:, j]
    return pa.Table.from_arrays(
        [pa.array(np.asarray(arrays[field.name]).astype(field.type.to_pandas_dtype())) for field in SCHEMA],
        schema=SCHEMA,
    )


def write_part(root: Path, simulation: int, table: pa.Table, metadata: dict) -> None:
    """Write one simulation's rows atomically, with the dataset metadata in the Parquet schema."""
    table = table.replace_schema_metadata({b"jaxretail": json.dumps(metadata).encode()})
    with atomic_path(part_path(root, simulation)) as tmp:
        pq.write_table(table, tmp)


def write_manifest(root: Path, metadata: dict, parts: dict[int, int]) -> None:
    """Mark the dataset complete: metadata, schema and ``{simulation: rows}``, written atomically."""
    manifest = {
        "metadata": metadata,
        "schema": {field.name: str(field.type) for field in SCHEMA},
        "parts": {
            str(k): {"file": part_path(root, k).name, "rows": int(v)} for k, v in sorted(parts.items())
        },
        "rows": int(sum(parts.values())),
    }
    atomic_write_text(Path(root) / MANIFEST, json.dumps(manifest, indent=2))


def read_manifest(root: str | os.PathLike) -> dict:
    path = Path(root) / MANIFEST
    if not path.exists():
        raise IncompleteDatasetError(f"{root} has no {MANIFEST}: the collection did not finish (resume it)")
    return json.loads(path.read_text())


def load_dataset(root: str | os.PathLike, columns: list[str] | None = None) -> pa.Table:
    """The complete dataset as one Arrow table (``.to_pandas()``, ``polars.from_arrow`` or duckdb read it).

    Raises:
      IncompleteDatasetError: no manifest, or a listed part is missing or has the wrong row count.
    """
    manifest = read_manifest(root)
    tables = []
    for sim, info in manifest["parts"].items():
        path = Path(root) / info["file"]
        if not path.exists():
            raise IncompleteDatasetError(f"part of simulation {sim} is missing: {path}")
        table = pq.read_table(path, columns=columns)
        if table.num_rows != info["rows"]:
            raise IncompleteDatasetError(
                f"{path} has {table.num_rows} rows, the manifest says {info['rows']}"
            )
        tables.append(table)
    return pa.concat_tables(tables)


def load_training_arrays(root, train_customers: int | None, seed: int) -> dict[str, np.ndarray]:
    """The logged rows as training arrays, customer-major (each customer's ``weeks`` rows contiguous).

    Returns ``uid [n]`` (one id per simulation and customer), ``context [n, 9]`` and ``next_context
    [n, 9]`` (float32), ``action [n]``, ``action_prob [n]`` (behaviour propensity), ``reward [n]`` and
    the ints ``weeks`` and ``num_customers``; with ``train_customers`` only that many customers, drawn
    without replacement by ``numpy.random.default_rng(seed)`` (None: every customer).

    Raises:
      ValueError: ``train_customers`` exceeds the dataset's customers, or customers have unequal weeks.
    """
    names = (
        ["simulation", "customer", "action", "action_prob", "reward"]
        + [f"ctx_{f}" for f in CONTEXT_FEATURES]
        + [f"next_ctx_{f}" for f in CONTEXT_FEATURES]
    )
    t = load_dataset(root, columns=names)
    sim, cust = t.column("simulation").to_numpy(), t.column("customer").to_numpy()
    uid = sim.astype(np.int64) * (int(cust.max()) + 1) + cust
    keep = np.ones(len(uid), bool)
    if train_customers is not None:
        ids = np.unique(uid)
        if train_customers > len(ids):
            raise ValueError(
                f"train_customers={train_customers} exceeds the {len(ids)} customers in the dataset"
            )
        chosen = np.random.default_rng(seed).choice(ids, train_customers, replace=False)
        keep = np.isin(uid, chosen)
    ctx = np.stack([t.column(f"ctx_{f}").to_numpy() for f in CONTEXT_FEATURES], 1)[keep]
    next_ctx = np.stack([t.column(f"next_ctx_{f}").to_numpy() for f in CONTEXT_FEATURES], 1)[keep]
    order = np.argsort(uid[keep], kind="stable")  # each customer's rows become one contiguous block
    data = {
        "uid": uid[keep][order],
        "context": ctx[order].astype(np.float32),
        "action": t.column("action").to_numpy()[keep][order],
        "reward": t.column("reward").to_numpy()[keep][order],
        "action_prob": t.column("action_prob").to_numpy()[keep][order],
        "next_context": next_ctx[order].astype(np.float32),
    }
    customers, counts = np.unique(data["uid"], return_counts=True)
    if not np.all(counts == counts[0]):
        raise ValueError("every logged customer must have the same number of weeks")
    data["weeks"], data["num_customers"] = int(counts[0]), len(customers)
    return data


def last_logged_context(root, simulation: int, week: int, num_customers: int) -> np.ndarray:
    """Quirk (iv): the logged pre-action context of ``week`` for every customer, ``[U, 9]``."""
    t = pq.read_table(part_path(root, simulation))
    rows = np.flatnonzero(t.column("week").to_numpy() == week)
    ctx = np.stack([t.column(f"ctx_{f}").to_numpy()[rows] for f in CONTEXT_FEATURES], 1)
    out = np.zeros((num_customers, len(CONTEXT_FEATURES)), np.float32)
    out[t.column("customer").to_numpy()[rows]] = ctx
    return out
