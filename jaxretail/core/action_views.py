"""Action views: the same environment with an action space generic trainers can produce.

A ``FixedSizeSubset(N, K)`` action (offer exactly ``K`` of ``N`` items) has no counterpart in gymnax,
gymnasium or the trainers built on them (rejax, PureJaxRL). Two views turn it into one they have:

* :class:`TopKScores` -- ``Box(-1, 1, (N,))`` item scores; the ``K`` highest scores are offered
  (ties: lowest index first, :func:`top_k_mask`). For continuous-action learners (PPO with a
  Gaussian policy, rejax clips to the box).
* :class:`SubsetIndex` -- ``Discrete(C(N, K))``: action ``a`` offers the ``a``-th ``K``-subset in
  lexicographic order (:func:`subset_table`). For categorical / value-based learners (DQN).

Both are :class:`~jaxretail.core.environment.Environment` subclasses (so they vmap, jit, convert with
:func:`~jaxretail.core.gymnax_compat.to_gymnax` and roll out like the env itself) and follow the
invalid-action rule of :mod:`jaxretail.core.actions` for their own space; the wrapped environment's
``info`` is kept and ``info["invalid_action"]`` covers both levels.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxretail.core import spaces
from jaxretail.core.actions import check_action
from jaxretail.core.environment import Environment


def top_k_mask(scores: jax.Array, k: int) -> jax.Array:
    """0/1 mask ``[N]`` (bool) of the ``k`` largest ``scores [N]``; ties go to the lowest index."""
    _, idx = jax.lax.top_k(scores, k)
    return jnp.zeros(scores.shape, bool).at[idx].set(True)


def subset_table(n: int, k: int, max_subsets: int = 200_000) -> np.ndarray:
    """All ``C(n, k)`` masks ``[C, n]`` (bool) in lexicographic order of their item indices.

    Raises:
      ValueError: if ``C(n, k) > max_subsets`` (the table is held in memory).
    """
    count = math.comb(n, k)
    if count > max_subsets:
        raise ValueError(
            f"Discrete subset actions need C(N, K) <= {max_subsets} rows, got C({n}, {k}) = {count}; "
            "use TopKScores instead"
        )
    table = np.zeros((count, n), bool)
    for row, items in enumerate(itertools.combinations(range(n), k)):
        table[row, list(items)] = True
    return table


class _ActionView(Environment):
    """Delegates everything but the action space and the action mapping to ``env``."""

    def __init__(self, env: Environment):
        inner = env.action_space(env.default_params)
        if not isinstance(inner, spaces.FixedSizeSubset):
            raise TypeError(f"{type(self).__name__} needs a FixedSizeSubset action space, got {inner!r}")
        self.__dict__["env"] = env

    def __getattr__(self, name: str) -> Any:  # forward extra attributes; safe for copy / pickle
        if name.startswith("__") or "env" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.__dict__["env"], name)

    @property
    def default_params(self):
        return self.env.default_params

    @property
    def name(self) -> str:
        return f"{type(self).__name__}({self.env.name})"

    def observation_space(self, params):
        return self.env.observation_space(params)

    def reset_env(self, key, params):
        return self.env.reset_env(key, params)

    def _mask(self, action, params) -> jax.Array:
        raise NotImplementedError

    def step_env(self, key, state, action, params):
        action, invalid = check_action(self.action_space(params), action)
        obs, state, reward, terminated, truncated, info = self.env.step_env(
            key, state, self._mask(action, params), params
        )
        info = dict(info)
        info["invalid_action"] = invalid | info.get("invalid_action", False)
        return obs, state, reward, terminated, truncated, info


class TopKScores(_ActionView):
    """``Box(-1, 1, (N,))`` item scores -> the top-``K`` mask (see the module docstring)."""

    def action_space(self, params) -> spaces.Box:
        n = self.env.action_space(params).n
        return spaces.Box(-1.0, 1.0, (n,), jnp.float32)

    def _mask(self, action, params):
        return top_k_mask(action, self.env.action_space(params).k)


class SubsetIndex(_ActionView):
    """``Discrete(C(N, K))`` subset index -> its mask (lexicographic order, :func:`subset_table`)."""

    def __init__(self, env: Environment, max_subsets: int = 200_000):
        super().__init__(env)
        space = env.action_space(env.default_params)
        self.__dict__["table"] = subset_table(space.n, space.k, max_subsets)

    def action_space(self, params) -> spaces.Discrete:
        return spaces.Discrete(self.table.shape[0])

    def _mask(self, action, params):
        return jnp.asarray(self.table)[action]
