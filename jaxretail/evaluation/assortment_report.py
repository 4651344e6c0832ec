"""Main job: evaluate the expert, greedy and random assortment policies on train and test seeds.

Prints mean +- standard error of the undiscounted episode revenue, and writes ``results.csv``,
``results.json``, ``results.md`` and ``cumulative_revenue.png`` (cumulative revenue over the
``T`` steps, mean with a 95% band) to the output folder. Run ``python scripts/evaluate_assortment.py
--help`` for the options.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import numpy as np

from jaxretail.envs.assortment import (
    DynamicAssortment,
    expert_policy,
    greedy_policy,
    random_policy,
)
from jaxretail.evaluation.episodes import evaluate_policy, parse_seed_range
from jaxretail.evaluation.plots import plot_cumulative_reward
from jaxretail.evaluation.stats import mean_se
from jaxretail.evaluation.tables import run_metadata, write_rows
from jaxretail.utils.atomic import atomic_write_text

POLICIES = ("expert", "greedy", "random")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="results/assortment", help="output folder")
    ap.add_argument("--train-seeds", default="1-100", help="episode seeds, e.g. '1-100'")
    ap.add_argument("--test-seeds", default="2001-2100", help="episode seeds, e.g. '2001-2100'")
    ap.add_argument("--obs-mode", default="paper", choices=("paper", "package"))
    ap.add_argument("--num-items", type=int, default=20)
    ap.add_argument("--num-features", type=int, default=2)
    ap.add_argument("--assortment-size", type=int, default=4)
    ap.add_argument("--horizon", type=int, default=80)
    ap.add_argument("--exogenous", action="store_true", help="freeze hype and saturation")
    ap.add_argument("--policy-seed", type=int, default=0, help="seed of the random policy")
    ap.add_argument(
        "--expert-batch",
        type=int,
        default=1000,
        help="episodes per chunk of the brute-force expert (bounds memory)",
    )
    return ap


def run(args: argparse.Namespace) -> list[dict]:
    """Evaluate every policy on every split; write the table and the plot; return the rows."""
    splits = {"train": parse_seed_range(args.train_seeds), "test": parse_seed_range(args.test_seeds)}
    env = DynamicAssortment(
        num_items=args.num_items,
        num_features=args.num_features,
        assortment_size=args.assortment_size,
        horizon=args.horizon,
        obs_mode=args.obs_mode,
        exogenous=args.exogenous,
    )
    params = env.default_params
    policies = {
        "expert": (expert_policy(params), args.expert_batch),
        "greedy": (greedy_policy, None),
        "random": (random_policy, None),
    }
    out = Path(args.out)
    rows, curves = [], {split: {} for split in splits}
    print(
        f"dynamic assortment: N={params.num_items} d={params.num_features} "
        f"K={params.assortment_size} T={params.horizon} obs={params.obs_mode} "
        f"{'exogenous' if params.exogenous else 'endogenous'}; device {jax.devices()[0]}",
        flush=True,
    )
    all_seeds = [s for seeds in splits.values() for s in seeds]
    for name, (policy, batch) in policies.items():
        start = time.perf_counter()  # one compiled rollout per policy covers every split
        rewards_all = evaluate_policy(
            env,
            policy,
            params,
            all_seeds,
            policy_batch_size=batch,
            policy_key=jax.random.key(args.policy_seed),
        )
        seconds = time.perf_counter() - start
        offset = 0
        for split, seeds in splits.items():
            rewards = rewards_all[offset : offset + len(seeds)]
            offset += len(seeds)
            stat = mean_se(rewards.sum(axis=1))
            curves[split][name] = rewards
            rows.append(
                {
                    "split": split,
                    "seeds": f"{seeds[0]}-{seeds[-1]}",
                    "episodes": stat.n,
                    "policy": name,
                    "mean_revenue": round(stat.mean, 4),
                    "se_revenue": round(stat.se, 4),
                }
            )
            print(f"  [{split:5s}] {name:7s} revenue {stat}  ({stat.n} episodes)", flush=True)
        print(
            f"  {name}: {len(all_seeds)} episodes x {params.horizon} steps in {seconds:.2f} s "
            "(compile included)",
            flush=True,
        )
    write_outputs(out, rows, curves, args)
    return rows


def write_outputs(out: Path, rows: list[dict], curves: dict, args: argparse.Namespace) -> None:
    """Atomically write CSV, JSON (with run metadata), Markdown and the cumulative-revenue plot."""
    write_rows(out, "results", rows, run_metadata(config=vars(args)))
    lines = ["| split | policy | mean revenue | s.e. | episodes |", "|---|---|---|---|---|"]
    lines += [
        f"| {r['split']} ({r['seeds']}) | {r['policy']} | {r['mean_revenue']:.2f} | "
        f"{r['se_revenue']:.2f} | {r['episodes']} |"
        for r in rows
    ]
    atomic_write_text(out / "results.md", "\n".join(lines) + "\n")
    panels = {f"{split} seeds": {k: np.asarray(v) for k, v in c.items()} for split, c in curves.items()}
    plot_cumulative_reward(panels, out / "cumulative_revenue.png")
    print(f"wrote {out}/results.csv, results.json, results.md, cumulative_revenue.png", flush=True)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    run(args)


if __name__ == "__main__":
    main()
