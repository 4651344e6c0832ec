"""Optuna TPE tuning of the coupon agents, batches of trials in one vmapped compiled run.

Tunes PPO or DQN on the single-customer view of the coupon env (each customer's weeks are an
episode; ``jaxretail.envs.coupon.single``), scoring a trial by its mean reward over the last quarter
of the updates. The study lives in SQLite (``--storage``) and resumes under the same
``--study-name``; the search stops early after ``--patience`` batches without improvement. With
``--compare N`` it also trains N trials one at a time (the same compiled function, called per trial)
and prints trials per second for both.

Example::

    python scripts/tune_coupon.py --agent ppo --batch-size 8 --max-batches 6 --storage sqlite:///tune.db
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from jaxretail.agents import dqn, ppo  # noqa: E402
from jaxretail.agents.training import make_train  # noqa: E402
from jaxretail.agents.tuning import FloatRange, last_mean, open_study, tune  # noqa: E402
from jaxretail.core.validation import (  # noqa: E402
    ConfigError,
    catalogue_sizes,
    check_flags,
    cli_parser,
    int_at_least,
    run_cli,
    seed_flag,
)
from jaxretail.core.vector import batched  # noqa: E402
from jaxretail.envs.coupon.configs import CONFIGS, get_config  # noqa: E402
from jaxretail.envs.coupon.single import make_single_customer_env  # noqa: E402

SEARCH = {
    "ppo": {"learning_rate": FloatRange(1e-4, 3e-2, log=True), "ent_coef": FloatRange(0.0, 0.05),
            "clip_eps": FloatRange(0.05, 0.4), "gae_lambda": FloatRange(0.8, 1.0)},
    "dqn": {"learning_rate": FloatRange(1e-4, 3e-2, log=True), "exploration_fraction": FloatRange(0.1, 0.9),
            "epsilon_end": FloatRange(0.01, 0.2), "tau": FloatRange(0.05, 1.0)},
}  # fmt: skip
PPO_MINIBATCHES = 4
DQN_BUFFER = 4096


def build_parser() -> argparse.ArgumentParser:
    ap = cli_parser(__doc__.split("\n\n")[0])
    ap.add_argument("--agent", choices=("ppo", "dqn"), default="ppo")
    ap.add_argument("--config", default="benchmark", choices=sorted(CONFIGS), help="scenario configuration")
    ap.add_argument(
        "--category-sizes", type=catalogue_sizes, default=None, help="override the catalogue, e.g. 3,3,2"
    )
    ap.add_argument("--customers", type=int_at_least(1), default=256)
    ap.add_argument("--horizon", type=int_at_least(1), default=10, help="weeks per episode")
    envs = f"customers per trial (ppo: a multiple of {PPO_MINIBATCHES}; dqn: at most {DQN_BUFFER})"
    ap.add_argument("--envs", type=int_at_least(1), default=32, help=envs)
    ap.add_argument("--updates", type=int_at_least(1), default=50)
    ap.add_argument("--batch-size", type=int_at_least(1), default=8, help="trials per compiled run")
    ap.add_argument("--max-batches", type=int_at_least(1), default=10)
    ap.add_argument(
        "--patience", type=int_at_least(1), default=3, help="batches without improvement before stopping"
    )
    ap.add_argument(
        "--storage", default=None, help="Optuna storage URL, e.g. sqlite:///tune.db (None: in memory)"
    )
    ap.add_argument("--study-name", default="tune_coupon")
    ap.add_argument("--seed", type=seed_flag, default=0)
    ap.add_argument("--compare", type=int_at_least(0), default=0, help="also time N trials one at a time")
    return ap


def check_args(args: argparse.Namespace):
    """Validate every flag and open the study before anything is computed; returns
    ``(study, trainer, default_hyper)``. Raises ConfigError / ValueError naming the flag."""
    check_flags(args, [
        ("--envs", lambda a: a.agent != "ppo" or a.envs % PPO_MINIBATCHES == 0,
         f"a multiple of {PPO_MINIBATCHES} with --agent ppo (its minibatches)"),
        ("--envs", lambda a: a.agent != "dqn" or a.envs <= DQN_BUFFER,
         f"at most {DQN_BUFFER} with --agent dqn (its replay buffer)"),
    ])  # fmt: skip
    if args.category_sizes is not None:
        try:
            get_config(args.config, category_sizes=args.category_sizes)
        except ValueError as err:
            raise ConfigError(f"--category-sizes {err}") from err
    study = open_study(args.storage, args.study_name, args.seed, "--storage")
    return (study, *build(args))


def build(args):
    overrides = {} if args.category_sizes is None else {"category_sizes": args.category_sizes}
    env = make_single_customer_env(
        get_config(args.config, **overrides),
        num_customers=args.customers,
        horizon=args.horizon,
        seed=args.seed,
    )
    venv = batched(env, env.default_params, args.envs)
    if args.agent == "ppo":
        cfg = ppo.PPOConfig(num_updates=args.updates, num_steps=args.horizon, num_minibatches=PPO_MINIBATCHES)
        return ppo.make_trainer(cfg, venv), ppo.PPOHyper()
    cfg = dqn.DQNConfig(num_updates=args.updates, batch_size=64, buffer_size=DQN_BUFFER, learning_starts=256)
    return dqn.make_trainer(cfg, venv), dqn.DQNHyper()


def main(argv=None) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    run_cli(build_parser(), argv, check_args, run)


def run(args: argparse.Namespace, built) -> None:
    study, trainer, default = built
    key = jax.random.key(args.seed)
    score = last_mean("mean_reward")
    out = tune(
        study, trainer, default, SEARCH[args.agent], key=key, score=score, batch_size=args.batch_size,
        max_batches=args.max_batches, patience=args.patience, progress=lambda m: print(m, flush=True),
    )  # fmt: skip
    print(f"best {out['best_value']:.4f} with {out['best_params']}")
    print(
        f"batched: {out['trials']} trials in {out['seconds']:.1f} s = {out['trials_per_second']:.2f} trials/s"
    )
    if args.compare:
        train = jax.jit(make_train(trainer))
        params = [t.params for t in study.trials[: args.compare]]
        start = time.perf_counter()
        for p in params:
            hyper = default.replace(**{k: np.float32(v) for k, v in p.items() if k in SEARCH[args.agent]})
            jax.block_until_ready(train(key, hyper)["metrics"])
        seconds = time.perf_counter() - start
        print(
            f"one at a time: {len(params)} trials in {seconds:.1f} s = {len(params) / seconds:.2f} trials/s"
        )


if __name__ == "__main__":
    main()
