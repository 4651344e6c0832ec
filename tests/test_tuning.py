"""Optuna TPE in batches: one vmapped compiled run per batch equals the trials run one at a time,
and a SQLite study resumes."""

import jax
import numpy as np
import optuna
import pytest
from toy_envs import ContextualBandit

from jaxretail.agents import ppo
from jaxretail.agents.training import make_train
from jaxretail.agents.tuning import FloatRange, last_mean, tune
from jaxretail.core.vector import batched

REWARDS = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.2]])


def trainer():
    env = ContextualBandit(REWARDS)
    cfg = ppo.PPOConfig(num_updates=5, num_steps=2, update_epochs=1, num_minibatches=1)
    return ppo.make_trainer(cfg, batched(env, env.default_params, 8))


def test_batched_trials_match_one_at_a_time_and_the_study_resumes(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = f"sqlite:///{tmp_path / 'tune.db'}"
    study = optuna.create_study(
        study_name="bandit", storage=storage, direction="maximize", sampler=optuna.samplers.TPESampler(seed=0)
    )
    key, t = jax.random.key(0), trainer()
    search = {"learning_rate": FloatRange(1e-4, 1e-1, log=True), "ent_coef": FloatRange(0.0, 0.05)}
    out = tune(study, t, ppo.PPOHyper(), search, key=key, score=last_mean("mean_reward"), batch_size=4,
               max_batches=2, patience=None)  # fmt: skip
    assert out["trials"] == 8 and len(study.trials) == 8 and out["trials_per_second"] > 0
    # a batched trial's value equals training that trial alone
    trial = study.trials[5]
    alone = jax.jit(make_train(t))(key, ppo.PPOHyper(**trial.params))
    expected = float(last_mean("mean_reward")(jax.tree.map(lambda x: x[None], alone["metrics"]))[0])
    assert trial.value == pytest.approx(expected, rel=1e-4, abs=1e-6)
    # resume from storage: the same study continues
    again = optuna.load_study(
        study_name="bandit", storage=storage, sampler=optuna.samplers.TPESampler(seed=1)
    )
    tune(
        again, t, ppo.PPOHyper(), search, key=key, score=last_mean("mean_reward"), batch_size=4, max_batches=1
    )
    assert len(again.trials) == 12
    with pytest.raises(ValueError, match="not fields"):
        tune(again, t, ppo.PPOHyper(), {"nope": FloatRange(0, 1)}, key=key, score=last_mean("mean_reward"))
