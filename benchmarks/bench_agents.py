"""Training throughput of PPO and DQN on the coupon and assortment environments.

For each case one jitted ``vmap(train)`` over ``--seeds`` seeds runs a fixed number of updates; it
reports environment steps per second (customer-weeks for the coupon env, env-steps for assortment),
updates per second, compile time and the steady-state time (median of ``--repeats`` runs after a
warm-up, ``block_until_ready``). The reference, measured in the same run, is the simulation alone:
the same environment and number of steps under a uniformly random policy, so ``x simulation`` is the
share of raw simulation speed that training keeps.

    python benchmarks/bench_agents.py        # coupon 10,000 customers, assortment 10,000 episodes
    python benchmarks/bench_agents.py --customers 1000 --episodes 1000 --seeds 1,4
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import jax

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from jaxretail.agents import dqn, ppo  # noqa: E402
from jaxretail.agents.training import make_train  # noqa: E402
from jaxretail.core.vector import VectorEnv, population  # noqa: E402
from jaxretail.envs.assortment import DynamicAssortment  # noqa: E402
from jaxretail.envs.assortment.learned import score_vector_env, subset_vector_env  # noqa: E402
from jaxretail.envs.coupon import get_config, sample_scenario  # noqa: E402
from jaxretail.envs.coupon.env import CouponEnv, make_params  # noqa: E402
from jaxretail.jobs.assortment_learning import ppo_config  # noqa: E402


def time_call(fn, args, repeats: int) -> tuple[float, float]:
    """``(compile_s, median steady-state seconds)`` of ``jax.jit(fn)(*args)``."""
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(compiled(*args))  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - start)
    return compile_s, statistics.median(times)


def random_rollout(venv: VectorEnv, steps: int):
    """The simulation alone: ``steps`` steps of ``venv`` under uniformly random actions."""

    def run(key):
        obs, state = venv.reset(key)

        def body(carry, k):
            state, total = carry
            k_act, k_env = jax.random.split(k)
            space = venv.action_space
            if hasattr(space, "n"):
                action = jax.random.randint(k_act, (venv.num_envs,), 0, space.n)
            else:
                action = jax.random.normal(k_act, (venv.num_envs,) + tuple(space.shape))
            out, state = venv.step(k_env, state, action)
            return (state, total + out.reward.sum()), None

        (_, total), _ = jax.lax.scan(body, (state, 0.0), jax.random.split(key, steps))
        return total

    return run


def coupon_venv(customers: int, horizon: int = 70) -> VectorEnv:
    cfg = get_config("benchmark")
    params = make_params(sample_scenario(jax.random.key(0), cfg, customers, base_prices="paper"), cfg)
    return population(CouponEnv(params), params, horizon)


def cases(customers: int, episodes: int):
    """(name, vector env, trainer, updates, env steps per update) of every measured case."""
    cv = coupon_venv(customers)
    env = DynamicAssortment()
    av = score_vector_env(env, env.default_params, episodes)
    av_subsets = subset_vector_env(env, env.default_params, episodes)
    coupon_ppo = ppo.PPOConfig(num_updates=2, num_steps=10, update_epochs=4, num_minibatches=4)
    coupon_dqn = dqn.DQNConfig(
        num_updates=5, num_steps=1, gradient_steps=10, batch_size=4096, buffer_size=max(100_000, customers),
        learning_starts=0, hidden=(16,), recurrent_units=4,
    )  # fmt: skip
    assort_ppo = ppo_config(num_updates=1)
    assort_dqn = dqn.DQNConfig(
        num_updates=20, num_steps=1, gradient_steps=4, batch_size=4096, buffer_size=max(100_000, episodes),
        learning_starts=0, hidden=(64, 64),
    )  # fmt: skip
    return [
        ("PPO coupon", "customer-weeks", cv, ppo.make_trainer(coupon_ppo, cv), coupon_ppo.num_steps),
        ("DQN coupon", "customer-weeks", cv, dqn.make_trainer(coupon_dqn, cv), coupon_dqn.num_steps),
        ("PPO assortment", "env-steps", av, ppo.make_trainer(assort_ppo, av), assort_ppo.num_steps),
        (
            "DQN assortment",
            "env-steps",
            av_subsets,
            dqn.make_trainer(assort_dqn, av_subsets),
            assort_dqn.num_steps,
        ),
    ]


def measure(customers: int, episodes: int, seeds: list[int], repeats: int, only: str = "") -> list[dict]:
    rows = []
    for name, unit, venv, trainer, steps_per_update in cases(customers, episodes):
        if only and only.lower() not in name.lower():
            continue
        ref_steps = trainer.num_updates * steps_per_update
        _, ref_s = time_call(random_rollout(venv, ref_steps), (jax.random.key(0),), repeats)
        sim_rate = venv.num_envs * ref_steps / ref_s
        for n_seeds in seeds:
            train = jax.vmap(make_train(trainer))
            compile_s, seconds = time_call(train, (jax.random.split(jax.random.key(1), n_seeds),), repeats)
            env_steps = n_seeds * venv.num_envs * ref_steps
            row = {
                "case": name,
                "unit": unit,
                "streams": venv.num_envs,
                "seeds": n_seeds,
                "updates": trainer.num_updates,
                "compile_s": compile_s,
                "seconds": seconds,
                "env_steps_per_s": env_steps / seconds,
                "updates_per_s": n_seeds * trainer.num_updates / seconds,
                "simulation_steps_per_s": sim_rate,
                "ratio_vs_simulation": env_steps / seconds / sim_rate,
            }
            rows.append(row)
            print(
                f"{name:15s} {venv.num_envs:7d} {n_seeds:5d} {row['env_steps_per_s']:12.3e} {unit:15s} "
                f"{row['updates_per_s']:9.2f} {row['ratio_vs_simulation']:8.2f} {compile_s:9.1f}",
                flush=True,
            )
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=10_000)
    ap.add_argument("--episodes", type=int, default=10_000)
    ap.add_argument("--seeds", default="1,2", help="numbers of seeds trained in parallel (vmap)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", default="", help="run the cases whose name contains this text")
    ap.add_argument("--out", default="results/benchmarks")
    args = ap.parse_args(argv)
    print(
        f"{'case':15s} {'streams':>7s} {'seeds':>5s} {'env steps/s':>12s} {'unit':15s} {'updates/s':>9s} "
        f"{'x sim':>8s} {'compile s':>9s}",
        flush=True,
    )
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = measure(args.customers, args.episodes, seeds, args.repeats, args.only)
    from jaxretail.utils.atomic import atomic_write_text

    meta = {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "device": str(jax.devices()[0]),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    name = f"agents-{args.only}.json" if args.only else "agents.json"
    atomic_write_text(Path(args.out) / name, json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"wrote {args.out}/{name}")


if __name__ == "__main__":
    main()
