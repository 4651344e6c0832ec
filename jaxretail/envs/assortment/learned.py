"""Learned top-K assortment policies: a PPO actor scores every item, the top ``K`` scores are shown.

The learner acts in item-score space (a diagonal Gaussian over ``N`` reals from
:class:`~jaxretail.agents.networks.ItemScoreActor`, one shared MLP per item column of the observation);
:func:`score_vector_env` maps scores to the environment's ``K``-subset mask, and :func:`ppo_policy`
turns a trained agent into a :class:`~jaxretail.core.rollout.Policy` for evaluation (greedy: the mean
scores). :func:`subset_vector_env` offers the discrete alternative (one action per subset) for DQN.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxretail.agents import ppo
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


def ppo_config(num_updates: int = 200, **overrides) -> ppo.PPOConfig:
    """Defaults for the assortment learner: item-score actor, 80-step rollouts (one episode)."""
    kw = dict(
        num_updates=num_updates, num_steps=80, update_epochs=4, num_minibatches=4, actor="item_scores",
        actor_hidden=(32, 32), critic_hidden=(64, 64),
        hyper=ppo.PPOHyper(learning_rate=1e-3, gamma=0.99, gae_lambda=0.95, ent_coef=0.0, clip_eps=0.2),
    )  # fmt: skip
    kw.update(overrides)
    return ppo.PPOConfig(**kw)


def ppo_policy(config: ppo.PPOConfig, agent: dict, greedy: bool = True):
    """Per-episode policy ``(key, obs [F, N], state, params) -> mask [N]`` of a trained PPO agent."""
    act = ppo.make_policy(config, spaces.Box(-jnp.inf, jnp.inf, (1,)), greedy=greedy)

    def policy(key, obs, state, params: AssortmentParams):
        del state
        return top_k_mask(act(agent, key, obs[None])[0], params.assortment_size)

    return policy


def subset_vector_env(env: DynamicAssortment, params: AssortmentParams, num_envs: int) -> VectorEnv:
    """``num_envs`` episodes with one discrete action per ``K``-subset (``C(N, K)`` actions, in the
    lexicographic order of :func:`~jaxretail.envs.assortment.policies.subset_masks`), for value-based
    learners such as DQN."""
    masks = jnp.asarray(subset_masks(params.num_items, params.assortment_size))
    venv = batched(env, params, num_envs)
    return map_action(venv, lambda a: masks[a], spaces.Discrete(masks.shape[0]))
