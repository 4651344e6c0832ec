"""Progress for long blocking calls (a first XLA compile can take minutes on a loaded machine)."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator

from tqdm import tqdm


@contextlib.contextmanager
def heartbeat(desc: str, *, interval: float = 1.0, enabled: bool = True) -> Iterator[None]:
    """Show ``desc`` with a live elapsed-time counter (tqdm, on stderr) while the block runs.

    For calls that give no progress of their own, such as compiling and running one jitted rollout.
    A background thread refreshes the bar every ``interval`` seconds; the bar closes with the block.
    """
    if not enabled:
        yield
        return
    bar = tqdm(total=None, desc=desc, bar_format="{desc}: {elapsed} elapsed", file=sys.stderr, leave=False)
    stop = threading.Event()

    def tick():
        while not stop.wait(interval):
            bar.refresh()

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        bar.close()
