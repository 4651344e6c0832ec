"""Output folders that belong to one run: a stored run identity and a lock file with the owner's pid.

:func:`claim_output` is entered by every main job before it computes anything:

* ``<out>/.lock`` holds the pid and host of the run writing the folder. A second run on the same folder
  is refused while that process lives; a lock left by a dead process (same host) is taken over.
* ``<out>/_run.json`` holds the run identity (the configuration, seeds and sizes that determine the
  folder's data). A run whose identity differs is refused with the differing fields named, unless
  ``overwrite=True`` (the CLIs' ``--overwrite``), which first empties the folder. A folder holding files
  but no identity (written by something else) is refused too; with ``overwrite`` it is written into
  without deleting anything.
* Temporary files of interrupted writes (``*.orbax-checkpoint-tmp*`` folders, the atomic writer's
  ``.<name>.*.tmp*`` files) are removed while the lock is held, so none stays behind for good.

Errors are :class:`OutputFolderError` with a one-line message.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from jaxretail.utils.atomic import atomic_write_text

RUN_FILE = "_run.json"
LOCK_FILE = ".lock"
__all__ = ["LOCK_FILE", "RUN_FILE", "OutputFolderError", "claim_output", "normalize"]


class OutputFolderError(RuntimeError):
    """The output folder holds another run's data, or another live run is writing it."""


def normalize(identity: Any) -> Any:
    """The identity as it reads back from JSON (tuples become lists, keys strings)."""
    return json.loads(json.dumps(identity, sort_keys=True, default=str))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_lock(lock: Path) -> dict | None:
    try:
        return json.loads(lock.read_text())
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    lock = out / LOCK_FILE
    me = {"pid": os.getpid(), "host": socket.gethostname()}
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _read_lock(lock)
            if owner is not None and owner == me:
                yield  # re-entered by this process: the outer claim releases the lock
                return
            if owner is not None and owner.get("host") != me["host"]:
                raise OutputFolderError(
                    f"{out} is locked by process {owner.get('pid')} on host {owner.get('host')}; "
                    f"if that run is over, delete {lock}"
                ) from None
            if owner is not None and _pid_alive(int(owner.get("pid", -1))):
                raise OutputFolderError(
                    f"{out} is being written by another live run (pid {owner['pid']}); wait for it to finish "
                    "or choose another output folder"
                ) from None
            lock.unlink(missing_ok=True)  # stale: its owner died (or the file is unreadable)
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        try:
            yield
        finally:
            if _read_lock(lock) == me:
                lock.unlink(missing_ok=True)
        return
    raise OutputFolderError(f"could not take the lock {lock}; another run keeps taking it")


def _clean_temporaries(out: Path) -> None:
    for path in list(out.rglob("*.orbax-checkpoint-tmp*")):
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    for path in list(out.rglob(".*.tmp*")):
        if path.is_file():
            path.unlink(missing_ok=True)


def _differences(stored: Any, wanted: Any, prefix: str = "") -> list[str]:
    if isinstance(stored, dict) and isinstance(wanted, dict):
        out = []
        for k in sorted(set(stored) | set(wanted)):
            out += _differences(stored.get(k, "<absent>"), wanted.get(k, "<absent>"), f"{prefix}{k}.")
        return out
    return [] if stored == wanted else [f"{prefix.rstrip('.')}: stored {stored!r}, requested {wanted!r}"]


@contextlib.contextmanager
def claim_output(
    out: str | os.PathLike,
    identity: dict,
    *,
    overwrite: bool = False,
    existing: Callable[[Path], Any] | None = None,
    hint: str = "pass --overwrite to replace it, or choose another output folder",
) -> Iterator[Path]:
    """Hold ``out`` for one run with ``identity`` (a JSON-able dict) while the block runs.

    Args:
      out: the output folder (created if missing).
      identity: what determines the folder's data (config, seeds, sizes); stored in ``_run.json``.
      overwrite: empty a folder that holds a different run instead of refusing it.
      existing: for folders written before identities were stored, ``existing(out)`` returns the
        identity their data records (or None if it cannot tell).
      hint: how to proceed, appended to the refusal.

    Raises:
      OutputFolderError: another live run holds the folder, or it holds a different run's data.
    """
    out = Path(out)
    wanted = normalize(identity)
    out.mkdir(parents=True, exist_ok=True)
    with _locked(out):
        run_file = out / RUN_FILE
        stored = json.loads(run_file.read_text()) if run_file.exists() else None
        if stored is None and existing is not None:
            stored = existing(out)
            stored = None if stored is None else normalize(stored)
        others = [p for p in out.iterdir() if p.name not in (LOCK_FILE, RUN_FILE)]
        if stored is not None and stored != wanted:
            if not overwrite:
                diff = "; ".join(_differences(stored, wanted)[:4])
                raise OutputFolderError(f"{out} holds a different run's data ({diff}); {hint}")
            for path in others:
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        elif stored is None and others and not overwrite:
            raise OutputFolderError(f"{out} is not empty and holds no run identity ({RUN_FILE}); {hint}")
        _clean_temporaries(out)
        atomic_write_text(run_file, json.dumps(wanted, indent=2, sort_keys=True))
        yield out
