"""The one agent interface of the offline (train-on-logs, then evaluate) protocols.

A system's protocol (``jaxretail.envs.<system>.protocol``) never imports an agent: it receives each
agent as an :class:`OfflineAgent`, a pair of callables built by the main job that wires agents to the
system (``jaxretail.jobs``), usually from a registry of factories keyed by the agent's name. Adding an
agent to a protocol is one registry entry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np


class OfflineAgent(NamedTuple):
    """An agent as an offline protocol sees it.

    Attributes:
      fit: ``fit(data, key, rng) -> agent`` trains on the logged ``data`` (the protocol's training
        arrays) with the JAX ``key`` and the NumPy ``rng`` (host-side minibatch draws) and returns the
        trained parameters, a pytree.
      act: ``act(agent, key, obs) -> action`` the trained policy for a batch of observations
        ``obs [B, F]``: int32 actions ``[B]``. Pure and jittable; the protocol compiles one evaluation
        per ``act`` and reuses it for every training run, so build ``act`` once per configuration.
      fit_runs: optional ``fit_runs(data, keys, rngs) -> [agent, ...]``, every training run at once
        (e.g. split over the devices by :class:`~jaxretail.core.sharding.DeviceMap`); when given, the
        protocol calls it once instead of ``fit`` per run, so it must give what
        ``[fit(data, k, rng) for k, rng in zip(keys, rngs)]`` gives (float rounding aside).
    """

    fit: Callable[[Any, jax.Array, np.random.Generator], Any]
    act: Callable[[Any, jax.Array, jax.Array], jax.Array]
    fit_runs: Callable[[Any, list, list], list] | None = None
