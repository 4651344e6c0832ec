"""Train-then-resume protocol of the coupon benchmark (Algorithm 2 of Xia et al., arXiv 2405.10469),
agent-agnostic: agents arrive as :class:`~jaxretail.core.offline.OfflineAgent` callables.

1. Train each agent on the logged training arrays (:func:`jaxretail.data.dataset.load_training_arrays`)
   through its ``fit(data, key, rng)``.
2. Evaluate by resuming the saved simulations for ``eval_weeks`` weeks, the trained policy acting through
   its ``act(agent, key, obs)``.
3. Repeat over ``training_runs`` independent runs; static coupons and random are evaluated once per
   simulation. Every metric is divided by the random policy's on the same simulation, overall and per
   price-sensitivity segment; revenue gets one-sided paired t-tests against random and the best static
   coupon.

The default evaluation is the clean one: the resumed state keeps its visit probability, last visit and
running summaries, and the first decision sees the context after the last collected week.
:func:`fresh_wrapper_state` reproduces the original's fresh-wrapper quirks instead (coupon.md §3.5):
(i) visit probability and last visit reset to 1, recursion skipped in the first evaluation week;
(ii) running summaries restart from zero; (iii) the first evaluation week's shelf prices, marketing
feature and observed feature come from a fresh stream (shelf chain restarted); (iv) the first decision
is made on the logged pre-action context of the last training week (read by the main job).

The main job that wires the agents (:mod:`jaxretail.jobs.coupon_protocol`) builds the agents and reads
the data; this module never imports an agent or the data layer.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from jaxretail.core.offline import OfflineAgent
from jaxretail.core.rollout import scan_steps
from jaxretail.core.sharding import DeviceMap
from jaxretail.core.stats import mean_se
from jaxretail.envs.coupon.env import CouponEnv
from jaxretail.envs.coupon.metrics import (
    METRICS,
    aggregate,
    customer_metrics,
    mean_price_coefficient,
    record_coupon_week,
)
from jaxretail.envs.coupon.params import BLOCK_SIZES
from jaxretail.envs.coupon.policies import level_policy

PER_SIMULATION = 100  # customers per simulation of the published figures (revenue unit)


def auto_block_size(customers: int) -> int:
    """Visitor block for ``customers`` per simulation: the smallest multiple of the CPU sub-block
    holding them all, at most the CPU's default block (a larger block for 100-customer simulations
    would compute rows nobody needs)."""
    block, sub = BLOCK_SIZES["cpu"]
    return int(min(block, sub * -(-customers // sub)))


@functools.lru_cache(maxsize=16)
def agent_policy(act: Callable) -> Callable:
    """``policy(key, obs, state, params, agent)`` of an agent's ``act(agent, key, obs)`` (one per ``act``,
    so every training run reuses one compiled evaluator)."""
    return lambda k, o, s, p, a: act(a, k, o)


@functools.lru_cache(maxsize=16)
def evaluator(policy: Callable, eval_weeks: int):
    """Jitted ``(params, state, obs, key, agent) -> per-customer metrics`` (each ``[U]``, see
    :func:`~jaxretail.envs.coupon.metrics.customer_metrics`) over ``eval_weeks`` weeks resumed from
    ``(state, obs)``, with ``policy(key, obs, state, params, agent)`` choosing every week's coupons
    (``agent``: the trained parameters, or the level of :func:`level_policy`)."""
    env = CouponEnv()

    @jax.jit
    def run(params, state, obs, key, agent):
        _, _, rec = scan_steps(
            env,
            lambda k, o, s, p: policy(k, o, s, p, agent),
            key,
            params,
            obs,
            state,
            eval_weeks,
            record=record_coupon_week,
        )
        return customer_metrics(rec)

    return run


@functools.lru_cache(maxsize=16)
def spread_evaluator(policy: Callable, eval_weeks: int) -> DeviceMap:
    """:func:`evaluator` over a list of simulations ``(params, state, obs)`` split over the devices
    (:class:`~jaxretail.core.sharding.DeviceMap`): ``run((agent, key, offset), starts)`` returns, per
    simulation ``i``, the NumPy per-customer metrics of ``evaluator(...)(params, state, obs,
    fold_in(key, offset + i), agent)``."""
    run = evaluator(policy, eval_weeks)

    def one(shared, start, index):
        agent, key, offset = shared
        return run(*start, jax.random.fold_in(key, offset + index), agent)

    return DeviceMap(one)


def fresh_wrapper_state(state, params):
    """Quirks (i)-(iii) of the original evaluation applied to a resumed state."""
    from jaxretail.envs.coupon.env import Summaries, _draw_next_week
    from jaxretail.envs.coupon.types import ShelfState

    n_u, n_j = params.num_customers, params.config.num_categories
    zeros = jnp.zeros((n_u,), jnp.float32)
    shelf, price, discount, marketing, obs_x = _draw_next_week(
        params,
        ShelfState(jnp.zeros_like(state.shelf.discounted)),
        state.t + 100_000,
        jnp.zeros((n_u, n_j), jnp.float32),
    )
    return state.replace(
        visit_probability=jnp.ones((n_u,), jnp.float32),
        visited=jnp.ones((n_u,), bool),
        first_step=jnp.asarray(True),
        summaries=Summaries(jnp.zeros((), jnp.float32), *([zeros] * 7)),
        shelf=shelf,
        price=price,
        discount=discount,
        marketing=marketing,
        observed_feature=obs_x,
    )


def paired_t_greater(a, b) -> float:
    """One-sided paired t-test p-value of ``mean(a) > mean(b)`` (NaN with fewer than two pairs)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or np.allclose(a, b):
        return float("nan")
    return float(stats.ttest_rel(a, b, alternative="greater").pvalue)


def summarize_policy(
    per_run_sims: list[list[dict]], random_sims: list[dict], best_static_sims: list[dict] | None
):
    """Mean +- s.e. of each metric, raw and divided by random on the same simulation: over training runs
    (simulation-averaged) for trained agents, over simulations for policies evaluated once. Plus
    one-sided paired t-tests of per-simulation revenue against random and the best static coupon."""
    row = {}
    for m in METRICS:
        ratio = lambda sims, m=m: [
            s[m] / r[m] if r[m] else np.nan for s, r in zip(sims, random_sims, strict=True)
        ]
        if len(per_run_sims) > 1:  # trained agents: spread over independent training runs
            raw = [np.mean([s[m] for s in sims]) for sims in per_run_sims]
            rel = [np.mean(ratio(sims)) for sims in per_run_sims]
        else:  # policies evaluated once: spread over simulations
            raw, rel = [s[m] for s in per_run_sims[0]], ratio(per_run_sims[0])
        a, b = mean_se(raw), mean_se(rel)
        row[m], row[f"{m}_se"], row[f"{m}_vs_random"], row[f"{m}_vs_random_se"] = a.mean, a.se, b.mean, b.se
    per_sim = np.mean([[s["revenue"] for s in sims] for sims in per_run_sims], axis=0)  # averaged over runs
    row["p_revenue_gt_random"] = paired_t_greater(per_sim, [r["revenue"] for r in random_sims])
    row["p_revenue_gt_best_static"] = (
        paired_t_greater(per_sim, [r["revenue"] for r in best_static_sims])
        if best_static_sims is not None
        else float("nan")
    )
    return row


def segment_masks(params_list) -> list[np.ndarray]:
    """Price-sensitive customers (mean price coefficient at or below the pooled median) per simulation."""
    coef = [mean_price_coefficient(p.scenario, p.config.price_scale) for p in params_list]
    median = float(np.median(np.concatenate(coef)))
    return [c <= median for c in coef]


def allocation(per_customer: dict, sensitive: np.ndarray) -> tuple[float, float]:
    """Mean offered coupon of the price-sensitive and the price-insensitive half."""
    offered = np.asarray(per_customer["offered_discount"])
    return float(offered[sensitive].mean()), float(offered[~sensitive].mean())


def run_protocol(
    starts: list[tuple],
    data,
    agents: Mapping[str, OfflineAgent],
    *,
    eval_weeks: int,
    training_runs: int,
    seed: int,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Train and evaluate every agent of ``agents`` (in order) and the static and random baselines.

    Args:
      starts: per evaluation simulation, ``(params, state, obs)`` to resume from (``obs [U, 9]``).
      data: the training arrays handed to every ``agent.fit``.
      agents: name -> :class:`OfflineAgent`; an agent's position in the mapping seeds its runs.
      eval_weeks, training_runs, seed: as in the main job's ``ProtocolConfig``.

    Returns:
      ``{"rows": [...], "allocation": {...}}``: one row per segment (``all``, ``price_sensitive``,
      ``price_insensitive``) and policy with :func:`summarize_policy`'s columns, and the mean offered
      coupon to each half per policy.
    """
    progress = progress or (lambda msg: None)
    sensitive = segment_masks([p for p, _, _ in starts])
    levels = starts[0][0].config.coupon_levels
    num_arms = len(levels)
    results = {}  # name -> list over runs of list over sims of per-customer metrics
    base_eval = spread_evaluator(level_policy, eval_weeks)
    placed = base_eval.place(starts)  # the simulations split over the devices once
    key = jax.random.key(seed)
    progress(f"evaluating random and {num_arms} static coupons (the first one compiles the evaluation)")
    for level in [-1, *range(num_arms)]:
        name = "random" if level < 0 else f"coupon_{round(100 * levels[level])}%"
        results[name] = [base_eval((jnp.asarray(level), key, 1000), placed)]
        progress(f"evaluated {name}")
    for index, (kind, agent) in enumerate(agents.items()):
        run_eval = spread_evaluator(agent_policy(agent.act), eval_weeks)
        progress(f"{kind}: training and evaluating {training_runs} runs (the first compiles)")
        rngs = [np.random.default_rng([seed, r, index]) for r in range(training_runs)]
        keys = [jax.random.fold_in(jax.random.fold_in(key, index), r) for r in range(training_runs)]
        if agent.fit_runs is not None:  # every run at once (e.g. one per device), then evaluated
            trained = agent.fit_runs(data, keys, rngs)
            if not isinstance(trained, Sequence) or len(trained) != training_runs:
                got = len(trained) if isinstance(trained, Sequence) else type(trained).__name__
                raise ValueError(
                    f"agent {kind!r}: fit_runs must return one trained agent per training run, got {got} "
                    f"for training_runs={training_runs}"
                )
            progress(f"{kind}: trained {training_runs} runs")
        runs = []
        for r in range(training_runs):
            fitted = trained[r] if agent.fit_runs is not None else agent.fit(data, keys[r], rngs[r])
            runs.append(run_eval((fitted, keys[r], 7), placed))
            progress(f"{kind}: training run {r + 1}/{training_runs}")
        results[kind] = runs
    return {"rows": protocol_rows(results, sensitive), "allocation": allocations(results, sensitive)}


def protocol_rows(results: dict, sensitive: list[np.ndarray]) -> list[dict]:
    """Rows per segment and policy from ``results`` (name -> runs -> simulations -> per-customer)."""
    rows = []
    for seg_name, select in (
        ("all", None),
        ("price_sensitive", sensitive),
        ("price_insensitive", [~m for m in sensitive]),
    ):
        agg = {
            name: [
                [aggregate(c, None if select is None else select[i]) for i, c in enumerate(sims)]
                for sims in runs
            ]
            for name, runs in results.items()
        }
        random_sims = agg["random"][0]
        statics = [n for n in agg if n.startswith("coupon_")]
        best = max(statics, key=lambda n: np.mean([s["revenue"] for s in agg[n][0]]))
        for name, per_run in agg.items():
            row = {"segment": seg_name, "policy": name, "runs": len(per_run)}
            row.update(summarize_policy(per_run, random_sims, agg[best][0] if name not in statics else None))
            row["best_static"] = best
            rows.append(row)
    return rows


def allocations(results: dict, sensitive: list[np.ndarray]) -> dict[str, dict[str, float]]:
    """Mean offered coupon to the price-sensitive and price-insensitive halves per policy."""
    alloc = {}
    for name, runs in results.items():
        pairs = [allocation(c, sensitive[i]) for sims in runs for i, c in enumerate(sims)]
        alloc[name] = {
            "price_sensitive": float(np.mean([p[0] for p in pairs])),
            "price_insensitive": float(np.mean([p[1] for p in pairs])),
        }
    return alloc
