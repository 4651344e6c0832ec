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
The same holds for a state of another dataset of any size: states carry the dataset's fingerprint
(``params.dataset_id``, copied at reset), which the step compares with the params'.
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
    features = np.asarray(features)
    labels = np.asarray(labels)
    if features.dtype.kind in "iuf":
        features = features.astype(np.float32)
    if labels.dtype.kind == "f" and np.all(np.isfinite(labels)) and np.all(labels == np.round(labels)):
        labels = labels.astype(np.int32)  # whole-number floats are classes; 1.5 is not
    elif labels.dtype.kind in "iu" and labels.size and labels.min() >= 0 and labels.max() < NUM_ACTIONS:
        labels = labels.astype(np.int32)
    if isinstance(episode_length, float) and episode_length.is_integer():
        episode_length = int(episode_length)
    table = np.asarray(reward_table)
    table = table.astype(np.float32) if table.dtype.kind in "iuf" else table
    device = lambda a: jnp.asarray(a) if a.dtype.kind in "biuf" else a  # noqa: E731 (others refused)
    # the constructor checks every field (types.check_offer_params)
    return OfferParams(device(features), device(labels), device(table), episode_length)


def reward(label: jax.Array, action: jax.Array, table: jax.Array) -> jax.Array:
    """Table-3 reward of one decision; NaN for an action outside ``0..4``."""
    valid = (action >= 0) & (action < NUM_ACTIONS)
    return jnp.where(valid, table[label, jnp.clip(action, 0, NUM_ACTIONS - 1)], jnp.nan)


def _check_state(state: OfferState, params: OfferParams) -> jax.Array:
    """True when ``state`` belongs to ``params``: its sample index lies in ``0..N-1`` and it was reset
    with the same dataset (``state.dataset == params.dataset_id``). A ``ValueError`` when concrete and
    false (outside ``jit``); inside ``jit`` the caller flags it."""
    num_samples = params.labels.shape[0]
    in_range = (state.index >= 0) & (state.index < num_samples)
    same = jnp.asarray(state.dataset, jnp.uint32) == jnp.asarray(params.dataset_id, jnp.uint32)
    if not is_traced(in_range) and not bool(np.all(np.asarray(in_range))):
        raise ValueError(
            f"OfferEnv: state.index={np.asarray(state.index).tolist()} is outside these params' samples "
            f"0..{num_samples - 1}; the state was built with other params (reset with these params)"
        )
    if not is_traced(same) and not bool(np.all(np.asarray(same))):
        raise ValueError(
            f"OfferEnv: state.dataset={np.asarray(state.dataset).tolist()} is not these params' "
            f"dataset_id={np.asarray(params.dataset_id).tolist()}; the state belongs to another dataset "
            "(reset with these params)"
        )
    return in_range & same


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
        dataset = jnp.asarray(params.dataset_id, jnp.uint32)
        return params.features[index], OfferState(t=jnp.asarray(1, jnp.int32), index=index, dataset=dataset)

    def step_env(self, key, state, action, params):
        # the library's invalid-action rule (jaxretail.core.actions): ValueError outside jit, clipped
        # into [0, 5) and flagged inside it (never a NaN reward, never another action silently)
        action, invalid = check_action(self.action_space(params), action)
        valid_state = _check_state(state, params)
        r = jnp.where(valid_state, reward(params.labels[state.index], action, params.reward_table), 0.0)
        index = self._draw(key, params)
        terminated = state.t >= params.episode_length
        info = {
            "label": jnp.where(valid_state, params.labels[state.index], -1),  # -1: no sample
            "invalid_action": invalid,
            "invalid_state": ~valid_state,
        }
        new = OfferState(t=state.t + 1, index=index, dataset=state.dataset)
        return params.features[index], new, r, terminated, jnp.asarray(False), info

    def observation_space(self, params):
        return spaces.Box(-jnp.inf, jnp.inf, (params.features.shape[1],), jnp.float32)

    def action_space(self, params):
        return spaces.Discrete(NUM_ACTIONS)
