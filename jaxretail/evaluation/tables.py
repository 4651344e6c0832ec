"""Result tables: CSV plus JSON with run metadata, both written atomically."""

from __future__ import annotations

import csv
import io
import json
import platform
from pathlib import Path

import jax

from jaxretail.utils.atomic import atomic_write_text


def run_metadata(**extra) -> dict:
    """Versions and device of this run, plus ``extra`` fields."""
    return {
        "jax": jax.__version__,
        "python": platform.python_version(),
        "device": str(jax.devices()[0]),
        **extra,
    }


def write_rows(out: Path, stem: str, rows: list[dict], meta: dict) -> None:
    """Write ``out/stem.csv`` (one row per dict) and ``out/stem.json`` (``{"meta", "rows"}``) atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(Path(out) / f"{stem}.csv", buf.getvalue())
    atomic_write_text(Path(out) / f"{stem}.json", json.dumps({"meta": meta, "rows": rows}, indent=2))
