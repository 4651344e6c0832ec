"""The jaxretail benchmark suite behind ``python scripts/bench.py``.

Cases (each timed as compile + median of steady-state repetitions after a warm-up, against a NumPy
reference measured in the same run):

| case | unit | JAX | NumPy reference |
|---|---|---|---|
| assortment_env | env-step | random-policy rollout (scan over T, vmap over B) | the same, vectorised |
| assortment_expert | decision | exact parametric (Dinkelbach) expert rollout | chunked enumeration expert |
| coupon_env | customer-week | population env, random coupons, scan over weeks | the same weekly model |
| bandit_update | context | LinUCB batch update + UCB decisions | normal equations + solves |
| ppo_coupon, dqn_coupon | customer-week | training (rollout + learning) | the simulation alone |
| ppo_assortment, dqn_assortment | env-step | training (rollout + learning) | the simulation alone |
| pricing_env | SKU-day | pricing market, random price areas, scan over days, vmap over SKUs | the same step |
| dqfd_pricing, ddpg_pricing | update | DQfD / DDPG training (64 SKU-days, 1 batch per update) | simulation |

For the assortment and coupon steps the suite also reports XLA's count of bytes accessed and flops per
item and the fraction of the device's measured streaming bandwidth that the step reaches.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_pricing import jax_rollout, numpy_rollout, pricing_trainer  # noqa: E402
from common import Timing, time_jit, time_python, xla_cost  # noqa: E402
from numpy_assortment import NumpyAssortment, run_episode  # noqa: E402
from numpy_coupon import NumpyCouponWeek  # noqa: E402

from jaxretail.agents import dqn, ppo  # noqa: E402
from jaxretail.agents.bandits import linear  # noqa: E402
from jaxretail.agents.training import make_train  # noqa: E402
from jaxretail.core.rollout import rollout, scan_steps  # noqa: E402
from jaxretail.core.sharding import customer_mesh  # noqa: E402
from jaxretail.core.vector import population  # noqa: E402
from jaxretail.envs.assortment import DynamicAssortment, expert_parametric_policy, random_policy  # noqa: E402
from jaxretail.envs.assortment.learned import score_vector_env, subset_vector_env  # noqa: E402
from jaxretail.envs.coupon import get_config, sample_scenario  # noqa: E402
from jaxretail.envs.coupon.env import CouponEnv, make_params, simulate_week  # noqa: E402
from jaxretail.envs.coupon.policies import random_coupon_policy  # noqa: E402
from jaxretail.envs.coupon.sharded import sharded_rollout  # noqa: E402
from jaxretail.envs.pricing import DynamicPricing, group_params  # noqa: E402
from jaxretail.evaluation.episodes import episode_keys  # noqa: E402
from jaxretail.jobs.assortment_learning import ppo_config  # noqa: E402

SCALES = {
    # env-steps are B x T; coupon work is U x weeks; RL cases train ``rl_updates`` updates (PPO on
    # assortment learns from every one of rl_episodes x 80 steps per update with a per-item network, so
    # its episode count stays a tenth of the population's). "tiny" only checks that every case runs
    # (the test suite); its figures measure nothing but overheads, so its coupon cases use a 27-product
    # catalogue (coupon_catalogue: products per category; None is the published 2,514-product one).
    "tiny": dict(
        assort_envs=64, assort_steps=4, expert_envs=64, expert_steps=2, numpy_expert_envs=16,
        coupon_customers=128, coupon_weeks=1, numpy_weeks=1, bandit_contexts=512,
        rl_customers=256, rl_episodes=16, rl_updates=1, repeats=1, coupon_catalogue=(7, 3, 12, 5),
        skus=64, sku_days=2, pricing_updates=2, pricing_batch=32, pricing_hidden=(16,),
    ),
    "small": dict(
        assort_envs=1_000, assort_steps=20, expert_envs=1_000, expert_steps=5, numpy_expert_envs=1_000,
        coupon_customers=1_000, coupon_weeks=3, numpy_weeks=1, bandit_contexts=10_000,
        rl_customers=1_000, rl_episodes=256, rl_updates=1, repeats=2, coupon_catalogue=None,
        skus=10_000, sku_days=30, pricing_updates=50, pricing_batch=256, pricing_hidden=(256, 256),
    ),
    "paper": dict(
        assort_envs=100_000, assort_steps=80, expert_envs=100_000, expert_steps=10, numpy_expert_envs=10_000,
        coupon_customers=100_000, coupon_weeks=70, numpy_weeks=2, bandit_contexts=100_000,
        rl_customers=100_000, rl_episodes=10_000, rl_updates=2, repeats=2, coupon_catalogue=None,
        skus=100_000, sku_days=30, pricing_updates=200, pricing_batch=256, pricing_hidden=(256, 256),
    ),
    "large": dict(
        assort_envs=1_000_000, assort_steps=80, expert_envs=1_000_000, expert_steps=5,
        numpy_expert_envs=10_000,
        coupon_customers=1_000_000, coupon_weeks=5, numpy_weeks=1, bandit_contexts=1_000_000,
        rl_customers=1_000_000, rl_episodes=100_000, rl_updates=1, repeats=2, coupon_catalogue=None,
        skus=1_000_000, sku_days=10, pricing_updates=200, pricing_batch=256, pricing_hidden=(256, 256),
    ),
}  # fmt: skip
CASES = (
    "assortment_env", "assortment_expert", "coupon_env", "bandit_update",
    "ppo_coupon", "dqn_coupon", "ppo_assortment", "dqn_assortment",
    "pricing_env", "dqfd_pricing", "ddpg_pricing",
)  # fmt: skip


def _row(case, unit, items, timing: Timing, numpy_seconds, numpy_items, sizes, reference) -> dict:
    per_s = items / timing.seconds
    numpy_per_s = numpy_items / numpy_seconds if numpy_seconds else float("nan")
    return {
        "case": case,
        "unit": unit,
        "sizes": sizes,
        "items": items,
        "compile_s": timing.compile_s,
        "seconds": timing.seconds,
        "repeat_seconds": timing.repeats,
        "items_per_s": per_s,
        "us_per_item": 1e6 / per_s,
        "numpy_items_per_s": numpy_per_s,
        "ratio_vs_numpy": per_s / numpy_per_s,
        "reference": reference,
        "buffer_bytes": timing.buffer_bytes,
    }


def assortment_env(s: dict, repeats: int) -> dict:
    env = DynamicAssortment()
    params = env.default_params
    b, t = s["assort_envs"], s["assort_steps"]
    keys = episode_keys(range(b))
    timing = time_jit(
        lambda k: rollout(env, random_policy, k, params, keys, t)[2].sum(0), (jax.random.key(0),), repeats
    )
    ref = NumpyAssortment(b, horizon=params.horizon)
    numpy_s = time_python(lambda: run_episode(ref, "random", t), repeats)
    row = _row(
        "assortment_env", "env-step", b * t, timing, numpy_s, b * t, {"envs": b, "steps": t}, "NumPy rollout"
    )
    # XLA's count for one step of the batch (policy + step), per env-step
    obs, state = jax.eval_shape(jax.vmap(env.reset, in_axes=(0, None)), keys, params)

    def one_step(obs, state, keys):
        action = jax.vmap(random_policy, in_axes=(0, 0, 0, None))(keys, obs, state, params)
        return jax.vmap(env.step_env, in_axes=(0, 0, 0, None))(keys, state, action, params)[1:3]

    flops, nbytes = xla_cost(one_step, (obs, state, keys))
    row["bytes_per_item"] = nbytes / b
    row["flops_per_item"] = flops / b
    return row


def assortment_expert(s: dict, repeats: int) -> dict:
    env = DynamicAssortment()
    params = env.default_params
    b, t = s["expert_envs"], s["expert_steps"]
    keys = episode_keys(range(b))
    policy = expert_parametric_policy()
    timing = time_jit(
        lambda k: rollout(env, policy, k, params, keys, t)[2].sum(0), (jax.random.key(0),), repeats
    )
    nb = min(b, s["numpy_expert_envs"])
    ref = NumpyAssortment(nb, horizon=params.horizon)
    numpy_s = time_python(lambda: run_episode(ref, "expert", t), max(1, repeats - 1))
    sizes = {"envs": b, "steps": t, "numpy_envs": nb}
    return _row(
        "assortment_expert", "decision", b * t, timing, numpy_s, nb * t, sizes, "NumPy enumeration expert"
    )


# visitors per streamed block of the coupon week and per utility sub-block: cache-sized on CPU, one large
# chunk on accelerators (a loop of small blocks would starve a GPU); chosen by make_params for the
# benchmarked device's platform (set by run_case)
_platform = "cpu"


# one compiled scenario draw (the eager draw dispatches hundreds of small ops)
_sample = jax.jit(sample_scenario, static_argnums=(1, 2), static_argnames=("base_prices",))


@functools.lru_cache(maxsize=8)
def _coupon_params(customers: int, catalogue: tuple[int, ...] | None = None):
    """The benchmark scenario with the paper's base prices, or on a ``catalogue`` of that many products
    per category with drawn base prices (the tiny scale)."""
    if catalogue is None:
        cfg = get_config("benchmark")
        scenario = _sample(jax.random.key(0), cfg, customers, base_prices="paper")
    else:
        cfg = get_config("benchmark", category_sizes=catalogue)
        scenario = _sample(jax.random.key(0), cfg, customers, base_prices="draw")
    return cfg, scenario, make_params(scenario, cfg, platform=_platform)


def coupon_env(s: dict, repeats: int) -> dict:
    u, weeks = s["coupon_customers"], s["coupon_weeks"]
    cfg, scenario, params = _coupon_params(u, s["coupon_catalogue"])
    env = CouponEnv(params)
    cores = jax.devices("cpu") if _platform == "cpu" else []
    if len(cores) > 1 and u % len(cores) == 0:  # host devices (scripts/bench.py): one shard per core
        rollout = sharded_rollout(params, customer_mesh(cores), random_coupon_policy, weeks)

        def run(key):
            return jnp.stack(rollout(key), axis=1)  # [T, 2]: reward total, visit rate
    else:
        cores = cores[:1]

        def run(key):
            obs, state = env.reset(key, params)

            def record(tr):
                return jnp.stack([tr.reward.sum(), tr.info["visited"].mean()])

            _, _, rec = scan_steps(env, random_coupon_policy, key, params, obs, state, weeks, record=record)
            return rec

    timing = time_jit(run, (jax.random.key(0),), repeats)
    visit_rate = float(np.mean(np.asarray(timing.output)[:, 1]))
    ref = NumpyCouponWeek(scenario, cfg)
    rng = np.random.default_rng(1)
    price = np.asarray(scenario.base_price, np.float64)
    nw = s["numpy_weeks"]
    numpy_s = time_python(
        lambda: [ref.week(0.05 * rng.integers(0, 11, u), price) for _ in range(nw)], max(1, repeats - 1)
    )
    sizes = {"customers": u, "products": cfg.num_products, "weeks": weeks, "numpy_weeks": nw}
    row = _row("coupon_env", "customer-week", u * weeks, timing, numpy_s, u * nw, sizes, "NumPy weekly model")
    row["sizes"]["devices"] = max(len(cores), 1)
    # XLA's count for one week of one block of 512 customers (the per-visitor work dominates; the tiny
    # scale's population of fewer customers is its own block)
    blk = min(512, u)
    _, _, pb = _coupon_params(blk, s["coupon_catalogue"])
    stb = jax.eval_shape(lambda: CouponEnv(pb).reset(jax.random.key(0), pb)[1])
    flops, nbytes = xla_cost(
        lambda st, a: simulate_week(st, a, pb)["reward"], (stb, jax.ShapeDtypeStruct((blk,), jnp.int32))
    )
    row["visit_rate"] = visit_rate
    row["bytes_per_item"] = visit_rate * nbytes / blk
    row["flops_per_item"] = visit_rate * flops / blk
    return row


def _numpy_bandit(x, a, r, num_arms, alpha=1.0):
    d = x.shape[1]
    onehot = np.eye(num_arms)[a]
    prec = np.einsum("na,nd,ne->ade", onehot, x, x) + np.eye(d)
    bsum = np.einsum("na,nd,n->ad", onehot, x, r)
    chol = np.linalg.cholesky(prec)
    theta = np.stack([np.linalg.solve(prec[k], bsum[k]) for k in range(num_arms)])
    inv = np.stack([np.linalg.inv(prec[k]) for k in range(num_arms)])
    width = np.sqrt(np.einsum("nd,ade,ne->na", x, inv, x))
    del chol
    return np.argmax(x @ theta.T + alpha * width, axis=1)


def bandit_update(s: dict, repeats: int) -> dict:
    n, d, arms = s["bandit_contexts"], 10, 11
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, d)).astype(np.float32)
    a = rng.integers(0, arms, n).astype(np.int32)
    r = rng.standard_normal(n).astype(np.float32)

    def step(x, a, r):
        state = linear.update(linear.init(arms, d), x, a, r)
        return linear.act_ucb(state, x, 1.0)

    timing = time_jit(step, (jnp.asarray(x), jnp.asarray(a), jnp.asarray(r)), repeats)
    numpy_s = time_python(lambda: _numpy_bandit(x, a, r, arms), repeats)
    sizes = {"contexts": n, "dim": d, "arms": arms}
    return _row("bandit_update", "context", n, timing, numpy_s, n, sizes, "NumPy normal equations + UCB")


def _rl_case(name, unit, venv, trainer, steps_per_update, numpy_rate, sizes, repeats) -> dict:
    timing = time_jit(lambda k: make_train(trainer)(k)["metrics"], (jax.random.key(1),), repeats)
    items = venv.num_envs * steps_per_update * trainer.num_updates
    row = _row(
        name, unit, items, timing, items / numpy_rate, items, sizes, "NumPy simulation of the same steps"
    )
    row["updates_per_s"] = trainer.num_updates / timing.seconds
    return row


@functools.lru_cache(maxsize=8)
def _numpy_coupon_rate(u: int, catalogue: tuple[int, ...] | None = None, weeks: int = 1) -> float:
    cfg, scenario, _ = _coupon_params(u, catalogue)
    ref = NumpyCouponWeek(scenario, cfg)
    rng = np.random.default_rng(1)
    price = np.asarray(scenario.base_price, np.float64)
    seconds = time_python(lambda: [ref.week(0.05 * rng.integers(0, 11, u), price) for _ in range(weeks)], 1)
    return u * weeks / seconds


@functools.lru_cache(maxsize=8)
def _numpy_assortment_rate(b: int, t: int = 10) -> float:
    ref = NumpyAssortment(b)
    return b * t / time_python(lambda: run_episode(ref, "random", t), 1)


def ppo_coupon(s: dict, repeats: int) -> dict:
    u, updates = s["rl_customers"], s["rl_updates"]
    _, _, params = _coupon_params(u, s["coupon_catalogue"])
    venv = population(CouponEnv(params), params, 70)
    cfg = ppo.PPOConfig(num_updates=updates, num_steps=10, update_epochs=4, num_minibatches=4)
    sizes = {"customers": u, "updates": updates, "weeks_per_update": 10}
    return _rl_case(
        "ppo_coupon",
        "customer-week",
        venv,
        ppo.make_trainer(cfg, venv),
        10,
        _numpy_coupon_rate(min(u, 10_000), s["coupon_catalogue"]),
        sizes,
        repeats,
    )


def dqn_coupon(s: dict, repeats: int) -> dict:
    u, updates = s["rl_customers"], 5 * s["rl_updates"]
    _, _, params = _coupon_params(u, s["coupon_catalogue"])
    venv = population(CouponEnv(params), params, 70)
    cfg = dqn.DQNConfig(
        num_updates=updates, gradient_steps=10, batch_size=4096, buffer_size=max(100_000, u),
        learning_starts=0, hidden=(16,), recurrent_units=4,
    )  # fmt: skip
    sizes = {"customers": u, "updates": updates, "weeks_per_update": 1, "gradient_steps_per_update": 10}
    return _rl_case(
        "dqn_coupon",
        "customer-week",
        venv,
        dqn.make_trainer(cfg, venv),
        1,
        _numpy_coupon_rate(min(u, 10_000), s["coupon_catalogue"]),
        sizes,
        repeats,
    )


def ppo_assortment(s: dict, repeats: int) -> dict:
    b, updates = s["rl_episodes"], s["rl_updates"]
    env = DynamicAssortment()
    venv = score_vector_env(env, env.default_params, b)
    cfg = ppo_config(num_updates=updates)
    sizes = {"episodes": b, "updates": updates, "steps_per_update": cfg.num_steps}
    return _rl_case(
        "ppo_assortment",
        "env-step",
        venv,
        ppo.make_trainer(cfg, venv),
        cfg.num_steps,
        _numpy_assortment_rate(min(b, 100_000)),
        sizes,
        repeats,
    )


def dqn_assortment(s: dict, repeats: int) -> dict:
    b, updates = s["rl_episodes"], 10 * s["rl_updates"]
    env = DynamicAssortment()
    venv = subset_vector_env(env, env.default_params, b)
    cfg = dqn.DQNConfig(
        num_updates=updates, gradient_steps=1, batch_size=256, buffer_size=max(100_000, b),
        learning_starts=0, hidden=(64, 64),
    )  # fmt: skip
    sizes = {
        "episodes": b, "updates": updates, "steps_per_update": 1, "gradient_steps_per_update": 1,
        "batch_size": 256, "actions": venv.action_space.n,
    }  # fmt: skip
    return _rl_case(
        "dqn_assortment",
        "env-step",
        venv,
        dqn.make_trainer(cfg, venv),
        1,
        _numpy_assortment_rate(min(b, 100_000)),
        sizes,
        repeats,
    )


def pricing_env(s: dict, repeats: int) -> dict:
    env, n, days = DynamicPricing(), s["skus"], s["sku_days"]
    params = group_params("fmcg", num_prices=10, reward="drcr")
    _, state = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(jax.random.split(jax.random.key(0), n), params)
    # repeats + 2 timed runs: the median of a few short rollouts is exposed to transient slow runs
    timing = time_jit(jax_rollout(params, n, days), (state, jax.random.key(1)), repeats + 2)
    # NumPy warmed up too (its first rollout pays the copy of the state off the device), same median
    numpy_s = time_python(lambda: numpy_rollout(state, params, days), max(1, repeats), warmup=1)
    sizes = {"skus": n, "days": days, "price_areas": params.num_prices}
    # no XLA byte count here: a lone day's program copies the state that the scan updates in place
    return _row("pricing_env", "SKU-day", n * days, timing, numpy_s, n * days, sizes, "NumPy daily step")


@functools.lru_cache(maxsize=4)
def _numpy_pricing_rate(n: int, days: int = 30) -> float:
    """SKU-days/s of the NumPy daily step on ``n`` SKUs (warmed up, median of 3)."""
    params = group_params("fmcg", num_prices=10, reward="drcr")
    env = DynamicPricing()
    _, state = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(jax.random.split(jax.random.key(0), n), params)
    return n * days / time_python(lambda: numpy_rollout(state, params, days), 3, warmup=1)


def _pricing_agent(name: str, s: dict, repeats: int) -> dict:
    envs = 64
    trainer = pricing_trainer(name, s["pricing_updates"], envs, s["pricing_batch"], s["pricing_hidden"])
    timing = time_jit(lambda k: make_train(trainer)(k)["metrics"], (jax.random.key(1),), repeats)
    updates = trainer.num_updates
    sizes = {"updates": updates, "skus_per_update": envs, "batch_size": s["pricing_batch"]}
    sizes["hidden"] = list(s["pricing_hidden"])
    # per update the agent steps `envs` SKUs one day; the reference simulates those SKU-days, `envs`
    # SKUs at a time, so the ratio says how much of the update time simulation alone would take
    numpy_s = updates * envs / _numpy_pricing_rate(envs)
    row = _row(
        f"{name}_pricing",
        "update",
        updates,
        timing,
        numpy_s,
        updates,
        sizes,
        "NumPy simulation of the same SKU-days (64 SKUs a day)",
    )
    row["updates_per_s"] = updates / timing.seconds
    return row


def dqfd_pricing(s: dict, repeats: int) -> dict:
    return _pricing_agent("dqfd", s, repeats)


def ddpg_pricing(s: dict, repeats: int) -> dict:
    return _pricing_agent("ddpg", s, repeats)


def run_case(name: str, scale: str, repeats: int | None = None, platform: str = "cpu") -> dict:
    """Measure one case at ``scale`` (call inside ``jax.default_device`` of the benchmarked device)."""
    global _platform
    if platform != _platform:
        _coupon_params.cache_clear()
    _platform = platform
    s = SCALES[scale]
    row = globals()[name](s, repeats or s["repeats"])
    if name.endswith("coupon") or name == "coupon_env":
        u = s["coupon_customers"] if name == "coupon_env" else s["rl_customers"]
        params = _coupon_params(u, s["coupon_catalogue"])[2]
        row["sizes"]["products"] = params.config.num_products
        row["sizes"]["block_size"], row["sizes"]["sub_block_size"] = params.block_size, params.sub_block_size
    return row
