"""Coupon sweep: every static coupon level and the random policy on the 50 + 20 week protocol.

For each simulation (a fresh scenario of ``--customers`` customers; base prices shared), the population
is simulated for ``--train-weeks`` weeks under uniformly random coupons (the logging period of the
published benchmark), then the saved state is resumed for ``--eval-weeks`` weeks under each policy.
All policies see the same customers (common random numbers). Writes ``sweep.csv``, ``sweep.json``,
``sweep.md`` and ``sweep.png`` (accumulated revenue per customer and retention against coupon level,
95% intervals over simulations, overall and per price-sensitivity segment).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from jaxretail.core.rollout import scan_steps
from jaxretail.core.validation import ConfigError, check_int, cli_parser, int_at_least, int_in_range, run_cli
from jaxretail.envs.coupon import get_config, sample_scenario
from jaxretail.envs.coupon.env import _SUB_BLOCK as SUB_BLOCK
from jaxretail.envs.coupon.env import CouponEnv, make_params
from jaxretail.envs.coupon.policies import random_coupon_policy
from jaxretail.evaluation.coupon_metrics import METRICS, aggregate, mean_price_coefficient, summarize
from jaxretail.evaluation.coupon_protocol import ProtocolConfig, evaluator
from jaxretail.evaluation.plots import save_figure
from jaxretail.evaluation.tables import run_metadata, write_rows
from jaxretail.utils.atomic import atomic_write_text
from jaxretail.utils.rundir import OutputFolderError, claim_output

RANDOM = -1  # policy code of the uniformly random policy; codes >= 0 are static levels


def build_parser() -> argparse.ArgumentParser:
    ap = cli_parser(__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="benchmark", choices=("benchmark", "hfhd", "calibrated"))
    ap.add_argument("--customers", type=int_at_least(1), default=1000, help="customers per simulation")
    ap.add_argument("--simulations", type=int_at_least(2), default=5, help="at least 2 (standard errors)")
    ap.add_argument("--train-weeks", type=int_at_least(1), default=50)
    ap.add_argument("--eval-weeks", type=int_at_least(1), default=20)
    ap.add_argument("--base-prices", default="paper", choices=("paper", "draw"))
    ap.add_argument("--seed", type=int_in_range(0, 2**31 - 1), default=0)
    ap.add_argument("--block-size", type=int_at_least(1), default=512, help="customers per block")
    ap.add_argument("--out", default="results/coupon_sweep")
    ap.add_argument(
        "--overwrite", action="store_true", help="replace an output folder that holds a different run"
    )
    return ap


def check_args(args: argparse.Namespace):
    """Validate every flag before anything is computed; returns the scenario configuration."""
    for name, low in (("customers", 1), ("simulations", 2), ("train_weeks", 1), ("eval_weeks", 1)):
        check_int(f"--{name.replace('_', '-')}", getattr(args, name), low)
    if args.block_size % SUB_BLOCK:
        raise ConfigError(
            f"--block-size must be a positive multiple of {SUB_BLOCK}, got --block-size={args.block_size}"
        )
    return get_config(args.config)


def run(args: argparse.Namespace, cfg=None) -> list[dict]:
    """Run the sweep and write its outputs.

    Raises:
      OutputFolderError: ``--out`` holds a different run (without ``--overwrite``) or another live run
        is writing it.
    """
    cfg = check_args(args) if cfg is None else cfg
    identity = {k: v for k, v in sorted(vars(args).items()) if k not in ("out", "overwrite")}
    with claim_output(args.out, identity, overwrite=getattr(args, "overwrite", False)):
        return _run(args, cfg)


def _run(args: argparse.Namespace, cfg) -> list[dict]:
    levels = list(range(len(cfg.coupon_levels)))
    codes = [RANDOM, *levels]
    env = CouponEnv()

    @jax.jit
    def collect(params, key):
        obs, state = env.reset(key, params)
        policy = lambda k, o, s, p: random_coupon_policy(k, o, s, p)
        return scan_steps(
            env, policy, key, params, obs, state, args.train_weeks, record=lambda tr: tr.reward
        )[:2]

    evaluate = evaluator("baseline", ProtocolConfig(eval_weeks=args.eval_weeks), len(levels))

    per_customer = {c: [] for c in codes}  # code -> list over simulations of per-customer dicts
    coefficients = []
    root = jax.random.key(args.seed)
    start = time.perf_counter()
    bar = tqdm(range(args.simulations), desc="simulations", unit="sim")
    for sim in bar:
        scenario = sample_scenario(
            jax.random.fold_in(root, sim), cfg, args.customers, base_prices=args.base_prices
        )
        params = make_params(scenario, cfg, block_size=args.block_size)
        obs, state = collect(params, jax.random.fold_in(root, 10_000 + sim))
        eval_key = jax.random.fold_in(root, 20_000 + sim)
        for code in codes:
            metrics = evaluate(params, state, obs, eval_key, jnp.asarray(code, jnp.int32))
            per_customer[code].append(jax.tree.map(np.asarray, metrics))
        coefficients.append(mean_price_coefficient(scenario, cfg.price_scale))
        bar.set_postfix(elapsed=f"{time.perf_counter() - start:.0f}s")
    median = float(np.median(np.concatenate(coefficients)))
    segments = {
        "all": [None] * args.simulations,
        "price_sensitive": [c <= median for c in coefficients],  # more negative coefficient
        "price_insensitive": [c > median for c in coefficients],
    }
    rows = []
    for seg, selects in segments.items():
        random_sims = [aggregate(per_customer[RANDOM][s], selects[s]) for s in range(args.simulations)]
        for code in codes:
            sims = [aggregate(per_customer[code][s], selects[s]) for s in range(args.simulations)]
            name = "random" if code == RANDOM else f"coupon_{round(100 * cfg.coupon_levels[code])}%"
            rows.append(
                {
                    "segment": seg,
                    "policy": name,
                    "level": code,
                    "coupon": None if code == RANDOM else cfg.coupon_levels[code],
                    **{k: float(v) for k, v in summarize(sims, random_sims).items()},
                }
            )
    seconds = time.perf_counter() - start
    print(
        f"{args.simulations} simulations x {args.customers} customers x "
        f"({args.train_weeks} + {len(codes)} x {args.eval_weeks}) weeks in {seconds:.1f} s"
    )
    print_table([r for r in rows if r["segment"] == "all"])
    write_outputs(Path(args.out), rows, args, cfg, seconds)
    return rows


def print_table(rows: list[dict]) -> None:
    print(
        f"{'policy':12s} {'revenue/random':>16s} {'retention':>16s} {'penetration/rnd':>16s} {'offered':>8s}"
    )
    for r in rows:
        print(
            f"{r['policy']:12s} {r['revenue_vs_random']:8.3f} +- {r['revenue_vs_random_se']:.3f} "
            f"{r['retention']:8.3f} +- {r['retention_se']:.3f} "
            f"{r['category_penetration_vs_random']:8.3f} +- {r['category_penetration_vs_random_se']:.3f} "
            f"{r['offered_discount']:8.3f}"
        )


def write_outputs(out: Path, rows: list[dict], args, cfg, seconds: float) -> None:
    write_rows(out, "sweep", rows, run_metadata(config=vars(args), scenario=cfg.name, seconds=seconds))
    head = "| segment | policy | " + " | ".join(f"{m} / random" for m in METRICS) + " |"
    lines = [head, "|" + "---|" * (2 + len(METRICS))]
    for r in rows:
        cells = " | ".join(f"{r[f'{m}_vs_random']:.3f} +- {r[f'{m}_vs_random_se']:.3f}" for m in METRICS)
        lines.append(f"| {r['segment']} | {r['policy']} | {cells} |")
    atomic_write_text(out / "sweep.md", "\n".join(lines) + "\n")
    plot_sweep(rows, args.customers, out / "sweep.png")
    print(f"wrote {out}/sweep.csv, sweep.json, sweep.md, sweep.png")


def plot_sweep(rows: list[dict], customers: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    panels = (("revenue", "accumulated revenue per customer", customers / 2), ("retention", "retention", 1.0))
    for ax, (metric, label, scale) in zip(axes, panels, strict=True):
        for seg, color in (("all", "C0"), ("price_sensitive", "C3"), ("price_insensitive", "C2")):
            static = [r for r in rows if r["segment"] == seg and r["level"] >= 0]
            x = [100 * r["coupon"] for r in static]
            div = customers if seg == "all" else scale
            y = np.array([r[metric] for r in static]) / (div if metric == "revenue" else 1)
            e = 1.96 * np.array([r[f"{metric}_se"] for r in static]) / (div if metric == "revenue" else 1)
            ax.errorbar(x, y, yerr=e, marker="o", capsize=3, color=color, label=seg.replace("_", " "))
            rnd = next(r for r in rows if r["segment"] == seg and r["level"] < 0)
            ax.axhline(rnd[metric] / (div if metric == "revenue" else 1), color=color, ls="--", lw=1)
        ax.set(xlabel="coupon level (%)", ylabel=label)
        ax.grid(alpha=0.3)
    axes[0].legend(title="segment (dashed: random policy)", fontsize=8)
    save_figure(fig, path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point; a bad flag or a busy/foreign output folder exits 2 with one line."""
    run_cli(build_parser(), argv, check_args, run, errors=(OutputFolderError,))


if __name__ == "__main__":
    main()
