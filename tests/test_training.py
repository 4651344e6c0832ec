"""The resumable training driver: chunked runs equal the single scan, a stopped run resumes from its
checkpoint without losing finished updates, and the update compiles once."""

import chex
import jax
import numpy as np
from toy_envs import ContextualBandit

from jaxretail.agents import ppo
from jaxretail.agents.training import make_train, run
from jaxretail.core.vector import batched

REWARDS = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.2]])


def trainer(num_updates=6):
    env = ContextualBandit(REWARDS)
    cfg = ppo.PPOConfig(num_updates=num_updates, num_steps=2, update_epochs=2, num_minibatches=2)
    return ppo.make_trainer(cfg, batched(env, env.default_params, 8))


def test_stopped_run_resumes_to_the_uninterrupted_result(tmp_path):
    key = jax.random.key(0)
    full = run(trainer(), key, chunk_updates=2, progress=False)
    first = run(
        trainer(), key, checkpoint_dir=tmp_path / "ckpt", chunk_updates=2, stop_after=2, progress=False
    )
    assert first["updates_done"] == 4
    resumed = run(trainer(), key, checkpoint_dir=tmp_path / "ckpt", chunk_updates=2, progress=False)
    assert resumed["updates_done"] == 6
    chex.assert_trees_all_equal(resumed["metrics"], full["metrics"])  # finished work kept
    chex.assert_trees_all_close(resumed["state"].params, full["state"].params, rtol=1e-6)
    # the chunked driver follows the single-scan train function
    whole = jax.jit(make_train(trainer()))(key)
    chex.assert_trees_all_close(whole["state"].params, full["state"].params, rtol=1e-4, atol=1e-6)


def test_update_compiles_once():
    t = trainer()
    update = jax.jit(chex.assert_max_traces(t.update, n=1))
    state = t.init(jax.random.key(0), None)
    for _ in range(3):
        state, _ = update(state, None)
