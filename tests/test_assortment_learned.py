"""Learned top-K assortment: the score-space vector env offers exactly K items, and a short PPO run
over item scores beats the random policy on held-out episodes."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxretail.agents import ppo
from jaxretail.agents.training import make_train
from jaxretail.envs.assortment import DynamicAssortment, random_policy
from jaxretail.envs.assortment.learned import score_vector_env
from jaxretail.evaluation.episodes import evaluate_policy
from jaxretail.jobs.assortment_learning import ppo_config, ppo_policy


def small_env():
    env = DynamicAssortment(num_items=6, assortment_size=2, horizon=10)
    return env, env.default_params


def test_score_env_offers_the_top_k_items():
    env, params = small_env()
    venv = score_vector_env(env, params, 4)
    obs, state = venv.reset(jax.random.key(0))
    assert obs.shape == (4,) + venv.obs_shape and venv.action_space.shape == (6,)
    scores = jnp.tile(jnp.array([0.1, 5.0, -1.0, 3.0, 0.0, 0.2]), (4, 1))
    out, _ = venv.step(jax.random.key(1), state, scores)
    # a sale can only be one of the two offered items (1 and 3)
    prices = np.asarray(state.price)
    for b in range(4):
        r = float(out.reward[b])
        assert r == 0.0 or np.isclose(r, prices[b, 1]) or np.isclose(r, prices[b, 3])


def test_ppo_over_item_scores_beats_random():
    env, params = small_env()
    cfg = ppo_config(num_updates=40, num_steps=params.horizon)
    out = jax.jit(make_train(ppo.make_trainer(cfg, score_vector_env(env, params, 64))))(jax.random.key(0))
    seeds = range(5001, 5201)
    learned = evaluate_policy(env, ppo_policy(cfg, ppo.agent_of(out["state"])), params, seeds).sum(1)
    rand = evaluate_policy(env, random_policy, params, seeds).sum(1)
    diff = learned - rand  # paired: the same episodes
    assert diff.mean() > 3 * diff.std(ddof=1) / np.sqrt(len(diff))
