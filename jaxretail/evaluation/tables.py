"""Result tables: CSV plus JSON with run metadata, both written atomically."""

from __future__ import annotations

import csv
import functools
import io
import json
import platform
import subprocess
from pathlib import Path

import jax

import jaxretail
from jaxretail.utils.atomic import atomic_write_text


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the jaxretail checkout this code runs from (``+dirty`` with local changes), or
    None when it is not a git checkout (an installed wheel) or git is unavailable."""
    root = Path(jaxretail.__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None
    try:
        run = lambda *a: subprocess.run(  # noqa: E731
            ["git", *a], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        commit = run("rev-parse", "HEAD")
        dirty = run("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def run_metadata(**extra) -> dict:
    """jaxretail version and git commit (None outside a checkout), JAX and Python versions and the
    device of this run, plus ``extra`` fields."""
    return {
        "jaxretail": jaxretail.__version__,
        "git_commit": git_commit(),
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
