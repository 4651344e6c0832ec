"""A checkpoint is resumed only by the same run; runs can be extended; counts never exceed the ask."""

import dataclasses

import jax
import numpy as np
import pytest
from toy_envs import ContextualBandit

from jaxretail.agents import ppo
from jaxretail.agents.training import run
from jaxretail.core.vector import batched

REWARDS = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.2]])


def trainer(num_updates=4, learning_rate=3e-3, rewards=REWARDS):
    env = ContextualBandit(rewards)
    cfg = ppo.PPOConfig(
        num_updates=num_updates, num_steps=2, update_epochs=1, num_minibatches=2,
        hyper=ppo.PPOHyper(learning_rate=learning_rate),
    )  # fmt: skip
    return ppo.make_trainer(cfg, batched(env, env.default_params, 4))


def test_changed_run_is_refused_unless_overwrite(tmp_path):
    ckpt, key = tmp_path / "ckpt", jax.random.key(0)
    run(trainer(), key, checkpoint_dir=ckpt, chunk_updates=2, progress=False)
    with pytest.raises(ValueError, match="config differ"):  # learning rate 0.003 -> 0.5 in the config
        run(trainer(learning_rate=0.5), key, checkpoint_dir=ckpt, progress=False)
    with pytest.raises(ValueError, match="hyper differ"):  # the same change as a vmappable hyper
        run(trainer(), key, ppo.PPOHyper(learning_rate=0.5), checkpoint_dir=ckpt, progress=False)
    with pytest.raises(ValueError, match="key differ"):
        run(trainer(), jax.random.key(1), checkpoint_dir=ckpt, progress=False)
    # the same sizes, another environment (a changed reward table): refused, not resumed
    with pytest.raises(ValueError, match="environment differ"):
        run(trainer(rewards=REWARDS[::-1].copy()), key, checkpoint_dir=ckpt, progress=False)
    with pytest.raises(ValueError, match="extra differ"):
        run(trainer(), key, checkpoint_dir=ckpt, identity={"env": "other"}, progress=False)
    fresh = run(trainer(learning_rate=0.5), key, checkpoint_dir=ckpt, overwrite=True, progress=False)
    assert fresh["updates_done"] == 4
    # the folder now belongs to the new run: it resumes (nothing left to do), the old one is refused
    assert run(trainer(learning_rate=0.5), key, checkpoint_dir=ckpt, progress=False)["updates_done"] == 4
    with pytest.raises(ValueError, match="config differ"):
        run(trainer(), key, checkpoint_dir=ckpt, progress=False)


def test_num_updates_extends_and_never_over_reports(tmp_path):
    ckpt, key = tmp_path / "ckpt", jax.random.key(0)
    run(trainer(4), key, checkpoint_dir=ckpt, chunk_updates=2, progress=False)
    longer = run(trainer(6), key, checkpoint_dir=ckpt, chunk_updates=2, progress=False)
    straight = run(trainer(6), key, chunk_updates=2, progress=False)
    assert longer["updates_done"] == 6 and len(longer["metrics"]["loss"]) == 6
    np.testing.assert_allclose(longer["metrics"]["loss"], straight["metrics"]["loss"], rtol=1e-5)
    with pytest.raises(ValueError, match="6 finished updates, more than num_updates=3"):
        run(trainer(3), key, checkpoint_dir=ckpt, progress=False)
    again = run(trainer(6), key, checkpoint_dir=ckpt, progress=False)  # finished: nothing to do
    assert again["updates_done"] == 6
    assert dataclasses.is_dataclass(trainer().config)
