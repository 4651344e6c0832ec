"""Exact gymnax 1.0 compatibility: :func:`to_gymnax` (needs the ``gymnax`` extra).

``to_gymnax(env)`` returns an instance of a subclass of ``gymnax.environments.environment.Environment``
whose spaces are gymnax's own ``Discrete`` / ``Box`` classes, so gymnax's wrappers (``LogWrapper``,
``FlattenObservationWrapper``, ``GymnaxToGymWrapper``, ``GymnaxToVectorGymWrapper``), its
``isinstance`` checks and the trainers built on them (rejax, PureJaxRL-style loops) take it unchanged.
The transition is the jaxretail environment's own ``step`` (same auto-reset, same keys), so the
adapted environment gives bit-identical trajectories; gymnax's ``info["terminated"]`` /
``info["truncated"]`` are added. A ``FixedSizeSubset`` action has no gymnax equivalent: wrap the
environment in :class:`~jaxretail.core.action_views.TopKScores` or
:class:`~jaxretail.core.action_views.SubsetIndex` first (``to_gymnax`` says so).

Why an adapter and not gymnax base classes: gymnax pins ``jax<0.12`` and ``gymnasium<1.4``; as a core
dependency it would cap every user's JAX. The adapter keeps gymnax optional (``pip install
'jaxretail[gymnax]'``; the dev extra installs it so CI tests it).

:func:`jaxretail.registry.register_gymnax` adds the jaxretail environments to gymnax's registry,
after which ``gymnax.make("jaxretail/assortment-scores-v0")`` works; ``jaxretail.make`` works
without gymnax.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from jaxretail.core import spaces
from jaxretail.core.environment import Environment

try:
    import gymnax
    from flax import struct
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError("jaxretail.core.gymnax_compat needs gymnax: pip install 'jaxretail[gymnax]'") from err


class Box(gymnax.environments.spaces.Box):
    """gymnax ``Box`` whose ``sample`` stays finite and in bounds for unbounded sides (gymnax's
    draws ``uniform(-inf, inf)`` = NaN); an unbounded side samples within 1 of the other bound / 0."""

    def sample(self, key: jax.Array) -> jax.Array:
        return spaces.Box(self.low, self.high, tuple(self.shape), self.dtype).sample(key)


def to_gymnax_space(space: spaces.Space):
    """The gymnax space with the same values, ``sample`` and ``contains`` (``Discrete`` / ``Box``).

    Raises:
      TypeError: for ``FixedSizeSubset`` (no gymnax equivalent; use an action view).
    """
    gspaces = gymnax.environments.spaces
    if isinstance(space, spaces.Discrete):
        return gspaces.Discrete(int(space.n), dtype=space.dtype)
    if isinstance(space, spaces.Box):
        low, high = np.asarray(space.low), np.asarray(space.high)
        low = float(low) if low.ndim == 0 else low
        high = float(high) if high.ndim == 0 else high
        return Box(low, high, tuple(space.shape), space.dtype)
    if isinstance(space, spaces.FixedSizeSubset):
        raise TypeError(
            f"gymnax has no space for exactly-{space.k}-of-{space.n} subsets; convert "
            "jaxretail.core.action_views.TopKScores(env) (Box item scores) or SubsetIndex(env) "
            "(Discrete(C(N, K))) instead"
        )
    raise TypeError(f"no gymnax equivalent for space {space!r}")


@struct.dataclass
class GymnaxParams(gymnax.EnvParams):
    """gymnax ``EnvParams`` (with ``max_steps_in_episode``, which rejax's evaluation reads)
    around the jaxretail params ``inner``."""

    inner: Any = None


def _unwrap(params):
    return params.inner if isinstance(params, GymnaxParams) else params


class GymnaxEnvironment(gymnax.environments.environment.Environment):
    """A jaxretail environment as a ``gymnax.environments.environment.Environment``."""

    def __init__(self, env: Environment, max_steps_in_episode: int):
        self._jr_env = env
        self._params = GymnaxParams(max_steps_in_episode=int(max_steps_in_episode), inner=env.default_params)

    def __deepcopy__(self, memo):  # immutable, like the jaxretail environment it adapts
        return self

    def __getattr__(self, name: str) -> Any:  # forward the rest; safe for copy / pickle
        if name.startswith("__") or "_jr_env" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.__dict__["_jr_env"], name)

    @property
    def unwrapped(self) -> Environment:
        """The jaxretail environment."""
        return self._jr_env

    @property
    def default_params(self):
        return self._params

    @property
    def name(self) -> str:
        return self._jr_env.name

    @property
    def num_actions(self) -> int:
        space = self._jr_env.action_space(self._jr_env.default_params)
        if not isinstance(space, spaces.Discrete):
            raise AttributeError(f"num_actions needs a Discrete action space, got {space!r}")
        return int(space.n)

    def reset(self, key, params=None):
        params = self.default_params if params is None else params
        return self._jr_env.reset(key, _unwrap(params))

    def step(self, key, state, action, params=None):
        params = self.default_params if params is None else params
        obs, state, reward, terminated, truncated, info = self._jr_env.step(
            key, state, action, _unwrap(params)
        )
        info = {**info, "terminated": terminated, "truncated": truncated}
        return obs, state, reward, terminated, truncated, info

    def reset_env(self, key, params):
        return self._jr_env.reset_env(key, _unwrap(params))

    def step_env(self, key, state, action, params):
        """gymnax's 5-tuple ``(obs, state, reward, terminated, info)``; truncation is in ``info``."""
        obs, state, reward, terminated, truncated, info = self._jr_env.step_env(
            key, state, action, _unwrap(params)
        )
        return obs, state, reward, terminated, {**info, "truncated": truncated}

    def is_truncated(self, state, params) -> jax.Array:
        raise NotImplementedError("truncation comes from the jaxretail step; use step()")

    def discount(self, state, params) -> jax.Array:
        raise NotImplementedError("use 1 - terminated from step()")

    def action_space(self, params=None):
        params = self.default_params if params is None else params
        return to_gymnax_space(self._jr_env.action_space(_unwrap(params)))

    def observation_space(self, params=None):
        params = self.default_params if params is None else params
        return to_gymnax_space(self._jr_env.observation_space(_unwrap(params)))

    def __repr__(self) -> str:
        return f"to_gymnax({self._jr_env.name})"


def to_gymnax(env: Environment, max_steps_in_episode: int | None = None):
    """``env`` as a gymnax ``Environment`` with gymnax spaces (see the module docstring).

    Its ``default_params`` are a gymnax ``EnvParams`` subclass holding ``max_steps_in_episode``
    (default: ``params.horizon``) and the jaxretail params as ``.inner``; ``reset`` / ``step`` accept
    either form.

    Raises:
      TypeError: if a space has no gymnax equivalent (checked here, not at first use).
      ValueError: without ``max_steps_in_episode`` for params that have no ``horizon``.
    """
    params = env.default_params
    to_gymnax_space(env.action_space(params))
    to_gymnax_space(env.observation_space(params))
    if max_steps_in_episode is None:
        max_steps_in_episode = getattr(params, "horizon", None)
        if max_steps_in_episode is None:
            raise ValueError(f"to_gymnax({env.name}) needs max_steps_in_episode (its params have no horizon)")
    if int(max_steps_in_episode) != max_steps_in_episode or max_steps_in_episode < 1:
        raise ValueError(f"max_steps_in_episode must be a positive integer, got {max_steps_in_episode!r}")
    return GymnaxEnvironment(env, int(max_steps_in_episode))
