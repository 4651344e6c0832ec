"""Action spaces for learners of top-K assortments (no agent is imported here).

A learner may act in item-score space (``N`` reals; e.g. a diagonal Gaussian from
:class:`~jaxretail.agents.networks.ItemScoreActor`): :func:`score_vector_env` maps scores to the
environment's ``K``-subset mask. :func:`subset_vector_env` offers the discrete alternative (one action per
subset) for value-based learners such as DQN. The PPO preset and its evaluation policy live in
:mod:`jaxretail.jobs.assortment_learning`.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxretail.core import spaces
from jaxretail.core.vector import VectorEnv, batched, map_action
from jaxretail.envs.assortment.env import DynamicAssortment
from jaxretail.envs.assortment.policies import subset_masks, top_k_mask
from jaxretail.envs.assortment.types import AssortmentParams


def score_space(params: AssortmentParams) -> spaces.Box:
    return spaces.Box(-jnp.inf, jnp.inf, (params.num_items,))


def score_vector_env(env: DynamicAssortment, params: AssortmentParams, num_envs: int) -> VectorEnv:
    """``num_envs`` auto-resetting episodes whose action is a score per item (top-K is offered)."""
    venv = batched(env, params, num_envs)
    return map_action(venv, lambda s: top_k_mask(s, params.assortment_size), score_space(params))


def subset_vector_env(env: DynamicAssortment, params: AssortmentParams, num_envs: int) -> VectorEnv:
    """``num_envs`` episodes with one discrete action per ``K``-subset (``C(N, K)`` actions, in the
    lexicographic order of :func:`~jaxretail.envs.assortment.policies.subset_masks`), for value-based
    learners such as DQN."""
    masks = jnp.asarray(subset_masks(params.num_items, params.assortment_size))
    venv = batched(env, params, num_envs)
    return map_action(venv, lambda a: masks[a], spaces.Discrete(masks.shape[0]))
