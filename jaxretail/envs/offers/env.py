"""Offer environment: contextual-bandit episodes over (customer, product) samples (gymnax 1.0 API).

Each step shows the state features of one sample drawn uniformly from ``params.features``; the agent
answers with one of 5 actions (no purchase / offer at 0, 10, 20, >= 30 %) and gets the paper's Table-3
reward ``reward_table[true class, action]``; the next observation is another uniformly drawn sample.
An episode is ``episode_length`` such steps (Algorithm 2 of Mahdavian et al. 2025 leaves ``s_{t+1}``
unspecified; with ``gamma > 0`` the next sample's value is bootstrapped, with ``gamma = 0`` it is a pure
contextual bandit). Actions follow the library's rule (:mod:`jaxretail.core.actions`): an action
outside ``0..4`` is a ``ValueError`` outside ``jit``; inside it, it is stepped clipped and flagged in
``info["invalid_action"]``. A state whose sample index lies outside these params' samples (a state of
another dataset) is a ``ValueError`` outside ``jit``; inside it, the step pays 0 and sets
``info["invalid_state"]`` (JAX would otherwise clamp the index and read another sample's label).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxretail.core import spaces
from jaxretail.core.actions import check_action
from jaxretail.core.environment import Environment
from jaxretail.core.validation import is_traced
from jaxretail.envs.offers.types import NUM_ACTIONS, REWARD_TABLE, OfferParams, OfferState


def make_params(features, labels, episode_length: int = 10, reward_table=REWARD_TABLE) -> OfferParams:
    """Params from ``features [N, F]`` and ``labels [N]``; errors name the field before any compute."""
    features = np.asarray(features, np.float32)
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu" and not (
        labels.dtype.kind == "f" and np.all(np.isfinite(labels)) and np.all(labels == np.round(labels))
    ):
        raise ValueError(f"labels must be integer classes 0..{NUM_ACTIONS - 1}, got dtype {labels.dtype}")
    if features.ndim != 2 or features.shape[0] < 1:
        raise ValueError(f"features must be a non-empty [N, F] array, got shape {features.shape}")
    if labels.shape != (features.shape[0],):
        raise ValueError(f"labels must have shape ({features.shape[0]},), got {labels.shape}")
    if not np.all(np.isfinite(features)):
        raise ValueError("features must be finite (found NaN or inf)")
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_ACTIONS):
        raise ValueError(
            f"labels must lie in 0..{NUM_ACTIONS - 1}, got range [{labels.min()}, {labels.max()}]"
        )
    if isinstance(episode_length, bool) or int(episode_length) != episode_length or episode_length < 1:
        raise ValueError(f"episode_length must be a positive integer, got episode_length={episode_length!r}")
    table = np.asarray(reward_table, np.float32)
    if table.shape != (NUM_ACTIONS, NUM_ACTIONS) or not np.all(np.isfinite(table)):
        raise ValueError(f"reward_table must be a finite [5, 5] array, got shape {table.shape}")
    return OfferParams(
        jnp.asarray(features), jnp.asarray(labels, jnp.int32), jnp.asarray(table), int(episode_length)
    )


def reward(label: jax.Array, action: jax.Array, table: jax.Array) -> jax.Array:
    """Table-3 reward of one decision; NaN for an action outside ``0..4``."""
    valid = (action >= 0) & (action < NUM_ACTIONS)
    return jnp.where(valid, table[label, jnp.clip(action, 0, NUM_ACTIONS - 1)], jnp.nan)


def _check_index(index: jax.Array, num_samples: int) -> jax.Array:
    """``0 <= index < num_samples`` as a bool array; a ``ValueError`` when it is concrete and false."""
    valid = (index >= 0) & (index < num_samples)
    if not is_traced(valid) and not bool(np.all(np.asarray(valid))):
        raise ValueError(
            f"OfferEnv: state.index={np.asarray(index).tolist()} is outside these params' samples "
            f"0..{num_samples - 1}; the state was built with other params (reset with these params)"
        )
    return valid


class OfferEnv(Environment[OfferState, OfferParams]):
    """5-action offer recommendation over a fixed sample set (see the module docstring)."""

    def __init__(self, features=None, labels=None, episode_length: int = 10):
        self._default = None if features is None else make_params(features, labels, episode_length)

    @property
    def default_params(self) -> OfferParams:
        if self._default is None:
            raise ValueError("OfferEnv has no default samples: pass params=make_params(features, labels)")
        return self._default

    def _draw(self, key, params):
        return jax.random.randint(key, (), 0, params.labels.shape[0])

    def reset_env(self, key, params):
        index = self._draw(key, params)
        return params.features[index], OfferState(t=jnp.asarray(1, jnp.int32), index=index)

    def step_env(self, key, state, action, params):
        # the library's invalid-action rule (jaxretail.core.actions): ValueError outside jit, clipped
        # into [0, 5) and flagged inside it (never a NaN reward, never another action silently)
        action, invalid = check_action(self.action_space(params), action)
        valid_state = _check_index(state.index, params.labels.shape[0])
        r = jnp.where(valid_state, reward(params.labels[state.index], action, params.reward_table), 0.0)
        index = self._draw(key, params)
        terminated = state.t >= params.episode_length
        info = {
            "label": jnp.where(valid_state, params.labels[state.index], -1),  # -1: no sample
            "invalid_action": invalid,
            "invalid_state": ~valid_state,
        }
        new = OfferState(t=state.t + 1, index=index)
        return params.features[index], new, r, terminated, jnp.asarray(False), info

    def observation_space(self, params):
        return spaces.Box(-jnp.inf, jnp.inf, (params.features.shape[1],), jnp.float32)

    def action_space(self, params):
        return spaces.Discrete(NUM_ACTIONS)
