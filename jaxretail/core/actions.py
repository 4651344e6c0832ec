"""One rule for invalid actions, shared by every environment and adapter.

An action outside the environment's action space is **never silently turned into another one**:

1. **Wrong structure** (shape, or a float where integers are expected: e.g. an integer where a
   ``[N]`` mask is expected) is known at trace time, so it is always a ``ValueError``, jitted or not.
2. **Wrong value** (a mask with the wrong number of items, a level outside ``[0, L)``):

   * outside ``jit`` (concrete arrays): ``ValueError`` naming the space and the action;
   * inside ``jit``: the step goes on with ``space.project(action)`` (the documented deterministic
     mapping of each space: ``Discrete`` clips to ``[0, n - 1]``, ``Box`` clips to its bounds with NaN
     -> the point nearest 0, ``FixedSizeSubset`` keeps the first ``k`` selected items, lowest index
     first, then fills with the lowest-index unselected ones) and sets ``info["invalid_action"]``;
   * in checked mode (``with checked_actions():`` while tracing, then run the function under
     :func:`jax.experimental.checkify.checkify`), a checkify error instead;
   * :func:`validate_action` checks a (batch of) action(s) explicitly before stepping.

Environments call :func:`check_action` at the top of ``step_env``; the flag it returns goes into
``info["invalid_action"]`` (bool, same shape as the reward).
"""

from __future__ import annotations

import contextlib
import threading

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

from jaxretail.core import spaces

_STATE = threading.local()


def checking() -> bool:
    """Whether :func:`check_action` inserts ``checkify.check`` (see :func:`checked_actions`)."""
    return getattr(_STATE, "checked", False)


@contextlib.contextmanager
def checked_actions(enabled: bool = True):
    """Trace steps with ``checkify.check`` on every action: run them under ``checkify.checkify``.

    Example::

        with checked_actions():
            err, out = jax.jit(checkify.checkify(env.step))(key, state, action, params)
        err.throw()  # raises if the action was invalid
    """
    previous = checking()
    _STATE.checked = bool(enabled)
    try:
        yield
    finally:
        _STATE.checked = previous


def _structure_error(space: spaces.Space, action: jax.Array, name: str) -> str | None:
    shape = tuple(getattr(space, "shape", ()))
    if tuple(action.shape) != shape:
        return f"{name} must have shape {shape} for {describe(space)}, got shape {tuple(action.shape)}"
    integral = isinstance(space, spaces.Discrete) or (
        isinstance(space, spaces.Box) and jnp.issubdtype(space.dtype, jnp.integer)
    )
    if integral and not (jnp.issubdtype(action.dtype, jnp.integer) or action.dtype == jnp.bool_):
        return f"{name} must be integers for {describe(space)}, got dtype {action.dtype}"
    return None


def describe(space: spaces.Space) -> str:
    """What ``space`` allows, in words (for error messages)."""
    if isinstance(space, spaces.FixedSizeSubset):
        n, k = space.n, space.k
        return f"a 0/1 mask of {n} items with exactly {k} ones (FixedSizeSubset(n={n}, k={k}))"
    if isinstance(space, spaces.Discrete):
        return f"an integer in [0, {space.n - 1}] (Discrete({space.n}))"
    if isinstance(space, spaces.Box):
        return f"values in [{space.low}, {space.high}] of shape {tuple(space.shape)} (Box)"
    return repr(space)


def check_action(space: spaces.Space, action, *, name: str = "action") -> tuple[jax.Array, jax.Array]:
    """Apply the invalid-action rule (module docstring) to ONE environment's action.

    Returns:
      ``(action_to_use, invalid)``: ``action`` itself when valid, ``space.project(action)`` otherwise
      (cast to ``space.dtype``); ``invalid`` a bool scalar.

    Raises:
      ValueError: for a wrong shape / dtype kind (always), or an invalid concrete action (outside jit).
    """
    action = jnp.asarray(action)
    problem = _structure_error(space, action, name)
    if problem is not None:
        raise ValueError(problem)
    valid = jnp.asarray(space.contains(action), bool)
    if not isinstance(valid, jax.core.Tracer):
        if not bool(valid):
            raise ValueError(f"{name} must be {describe(space)}, got {np.asarray(action).tolist()!r}")
    elif checking():
        checkify.check(valid, f"invalid {name}: it must be {describe(space)}")
    mapped = jnp.where(valid, action.astype(space.dtype), space.project(action))
    return mapped, jnp.logical_not(valid)


def validate_action(space: spaces.Space, action, *, name: str = "action", batched: bool = False) -> None:
    """Explicit check outside jit: ``ValueError`` unless ``action`` (or, with ``batched``, each row of
    it) is in ``space``. Use it on actions coming from outside JAX before stepping."""
    action = jnp.asarray(action)
    rows = action if batched else action[None]
    problem = _structure_error(space, rows[0], name) if rows.shape[0] else None
    if problem is not None:
        raise ValueError(problem)
    ok = np.asarray(jax.vmap(space.contains)(rows))
    if not ok.all():
        i = int(np.argmin(ok))
        where = f" (row {i})" if batched else ""
        raise ValueError(f"{name} must be {describe(space)}, got {np.asarray(rows[i]).tolist()!r}{where}")
