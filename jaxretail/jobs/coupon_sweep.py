"""Coupon sweep: every static coupon level and the random policy on the 50 + 20 week protocol.

For each simulation (a fresh scenario of ``--customers`` customers; base prices shared), the population
is simulated for ``--train-weeks`` weeks under uniformly random coupons (the logging period of the
published benchmark), then the saved state is resumed for ``--eval-weeks`` weeks under each policy.
All policies see the same customers (common random numbers). ``--mode paper`` runs what the published
sweep ran (legacy coupling, the original's base prices, price-timing quirk, weekly utility clip and the
original's evaluation quirks; :mod:`jaxretail.envs.coupon.modes`), ``--mode clean`` the intended model.
Writes ``sweep.csv``, ``sweep.json`` (both record the mode and its settings), ``sweep.md`` and ``sweep.png``:
accumulated revenue over the evaluation weeks per 100-customer simulation (the published figure's unit)
and retention against coupon level, with 95% intervals over simulations, overall and per
price-sensitivity segment; tables give absolute values next to the ratios to random.
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
from jaxretail.core.sharding import DeviceMap
from jaxretail.core.validation import (
    ConfigError,
    check_int,
    cli_parser,
    int_at_least,
    run_cli,
    seed_flag,
)
from jaxretail.envs.coupon import get_config, sample_scenario
from jaxretail.envs.coupon.env import _SUB_BLOCK as SUB_BLOCK
from jaxretail.envs.coupon.env import CouponEnv, context, make_params
from jaxretail.envs.coupon.metrics import METRICS, aggregate, mean_price_coefficient, summarize
from jaxretail.envs.coupon.modes import MODES, mode_settings
from jaxretail.envs.coupon.policies import level_policy, random_coupon_policy
from jaxretail.envs.coupon.protocol import PER_SIMULATION, auto_block_size, evaluator, fresh_wrapper_state
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
    ap.add_argument(
        "--mode",
        default="clean",
        choices=MODES,
        help="paper: legacy coupling, paper base prices, price-timing quirk, utility clip, evaluation quirks",
    )
    ap.add_argument(
        "--base-prices", default=None, choices=("paper", "draw"), help="clean mode only (default paper)"
    )
    ap.add_argument("--seed", type=seed_flag, default=0)
    ap.add_argument(
        "--block-size", type=int_at_least(1), default=None, help="visitor block (default: from --customers)"
    )
    ap.add_argument("--out", default="results/coupon_sweep")
    ap.add_argument(
        "--save-every", type=int_at_least(1), default=5, help="write the results so far every N simulations"
    )
    ap.add_argument(
        "--overwrite", action="store_true", help="replace an output folder that holds a different run"
    )
    return ap


def check_args(args: argparse.Namespace):
    """Validate every flag before anything is computed; returns the scenario configuration."""
    for name, low in (
        ("customers", 1),
        ("simulations", 2),
        ("train_weeks", 1),
        ("eval_weeks", 1),
        ("save_every", 1),
    ):
        check_int(f"--{name.replace('_', '-')}", getattr(args, name), low)
    if args.block_size is not None and (args.block_size < 1 or args.block_size % SUB_BLOCK):
        raise ConfigError(
            f"--block-size must be a positive multiple of {SUB_BLOCK}, got --block-size={args.block_size}"
        )
    mode_settings(args.mode, args.base_prices)
    return get_config(args.config)


def run(args: argparse.Namespace, cfg=None) -> list[dict]:
    """Run the sweep and write its outputs.

    Raises:
      OutputFolderError: ``--out`` holds a different run (without ``--overwrite``) or another live run
        is writing it.
    """
    cfg = check_args(args) if cfg is None else cfg
    identity = {k: v for k, v in sorted(vars(args).items()) if k not in ("out", "overwrite", "save_every")}
    with claim_output(args.out, identity, overwrite=getattr(args, "overwrite", False)):
        return _run(args, cfg)


def _run(args: argparse.Namespace, cfg) -> list[dict]:
    mode = mode_settings(args.mode, args.base_prices)
    block = args.block_size if args.block_size is not None else auto_block_size(args.customers)
    levels = list(range(len(cfg.coupon_levels)))
    codes = [RANDOM, *levels]
    env = CouponEnv()

    @jax.jit
    def collect(params, key):
        """``(state, obs)`` to resume from after the logging weeks under random coupons."""
        obs, state = env.reset(key, params)
        policy = lambda k, o, s, p: random_coupon_policy(k, o, s, p)
        obs, state, _ = scan_steps(env, policy, key, params, obs, state, args.train_weeks - 1)
        last_context = obs  # pre-action context of the last logging week
        obs, state, _ = scan_steps(env, policy, jax.random.fold_in(key, 1), params, obs, state, 1)
        if mode.legacy_evaluation:  # the original's fresh evaluation wrapper (coupon.md 3.5)
            return fresh_wrapper_state(state, params), last_context
        return state, context(state, params)

    run_level = evaluator(level_policy, args.eval_weeks)
    # the policies of one simulation are evaluated one per device (every core with the script's host devices)
    evaluate = DeviceMap(lambda start, code, _: run_level(*start, code))

    per_customer = {c: [] for c in codes}  # code -> list over simulations of per-customer dicts
    coefficients = []
    root = jax.random.key(args.seed)
    nonfinite = 0
    meta = {"mode": args.mode, "mode_settings": mode.as_dict(), "block_size": block}
    start = time.perf_counter()
    bar = tqdm(range(args.simulations), desc="simulations", unit="sim")
    for sim in bar:
        scenario = sample_scenario(
            jax.random.fold_in(root, sim),
            cfg,
            args.customers,
            legacy_coupling=mode.legacy_coupling,
            base_prices=mode.base_prices,
        )
        params = make_params(
            scenario,
            cfg,
            block_size=block,
            legacy_coupling=mode.legacy_coupling,
            next_week_price_quirk=mode.next_week_price_quirk,
            utility_clip=mode.utility_clip,
        )
        state, obs = collect(params, jax.random.fold_in(root, 10_000 + sim))
        eval_key = jax.random.fold_in(root, 20_000 + sim)
        outputs = evaluate((params, state, obs, eval_key), [jnp.asarray(c, jnp.int32) for c in codes])
        for code, metrics in zip(codes, outputs, strict=True):
            nonfinite += int(metrics.pop("nonfinite_weeks").sum())
            per_customer[code].append(metrics)
        coefficients.append(mean_price_coefficient(scenario, cfg.price_scale))
        bar.set_postfix(elapsed=f"{time.perf_counter() - start:.0f}s")
        if (sim + 1) % args.save_every == 0 and sim + 1 < args.simulations:  # partial results so far
            extra = {**meta, "simulations_done": sim + 1, "nonfinite_customer_weeks": nonfinite}
            rows = sweep_rows(per_customer, coefficients, codes, cfg, args)
            write_outputs(Path(args.out), rows, args, cfg, time.perf_counter() - start, extra, quiet=True)
    rows = sweep_rows(per_customer, coefficients, codes, cfg, args)
    seconds = time.perf_counter() - start
    print(
        f"{args.mode} mode: {args.simulations} simulations x {args.customers} customers x "
        f"({args.train_weeks} + {len(codes)} x {args.eval_weeks}) weeks in {seconds:.1f} s "
        f"(block {block}; guarded non-finite customer-weeks: {nonfinite})"
    )
    print_table([r for r in rows if r["segment"] == "all"], args.eval_weeks)
    extra = {**meta, "simulations_done": args.simulations, "nonfinite_customer_weeks": nonfinite}
    write_outputs(Path(args.out), rows, args, cfg, seconds, extra)
    return rows


def sweep_rows(per_customer: dict, coefficients: list, codes: list[int], cfg, args) -> list[dict]:
    """Rows per segment and policy over the simulations done so far."""
    n_sims = len(coefficients)
    median = float(np.median(np.concatenate(coefficients)))
    segments = {
        "all": [None] * n_sims,
        "price_sensitive": [c <= median for c in coefficients],  # more negative coefficient
        "price_insensitive": [c > median for c in coefficients],
    }
    rows = []
    unit = PER_SIMULATION / args.customers  # revenue and demand per 100-customer simulation
    for seg, selects in segments.items():
        random_sims = [aggregate(per_customer[RANDOM][s], selects[s]) for s in range(n_sims)]
        for code in codes:
            sims = [aggregate(per_customer[code][s], selects[s]) for s in range(n_sims)]
            name = "random" if code == RANDOM else f"coupon_{round(100 * cfg.coupon_levels[code])}%"
            rows.append(
                {
                    "mode": args.mode,
                    "segment": seg,
                    "policy": name,
                    "level": code,
                    "coupon": None if code == RANDOM else cfg.coupon_levels[code],
                    **{k: float(v) for k, v in summarize(sims, random_sims).items()},
                }
            )
            for m in ("revenue", "demand"):
                rows[-1][f"{m}_per_100"] = rows[-1][m] * unit
                rows[-1][f"{m}_per_100_se"] = rows[-1][f"{m}_se"] * unit
    return rows


def print_table(rows: list[dict], eval_weeks: int = 20) -> None:
    print(
        f"{'policy':12s} {f'revenue/100 cust/{eval_weeks} wk':>22s} "
        f"{'revenue/random':>16s} {'retention':>16s} "
        f"{'penetration/rnd':>16s} {'offered':>8s}"
    )
    for r in rows:
        print(
            f"{r['policy']:12s} {r['revenue_per_100']:12.1f} +- {r['revenue_per_100_se']:6.1f} "
            f"{r['revenue_vs_random']:8.3f} +- {r['revenue_vs_random_se']:.3f} "
            f"{r['retention']:8.3f} +- {r['retention_se']:.3f} "
            f"{r['category_penetration_vs_random']:8.3f} +- {r['category_penetration_vs_random_se']:.3f} "
            f"{r['offered_discount']:8.3f}"
        )


def write_outputs(
    out: Path, rows: list[dict], args, cfg, seconds: float, extra: dict | None = None, quiet: bool = False
) -> None:
    extra = extra or {}
    write_rows(
        out, "sweep", rows, run_metadata(config=vars(args), scenario=cfg.name, seconds=seconds, **extra)
    )
    head = (
        f"| segment | policy | revenue per {PER_SIMULATION} customers over {args.eval_weeks} weeks "
        "| retention | " + " | ".join(f"{m} / random" for m in METRICS) + " |"
    )
    done = extra.get("simulations_done", args.simulations)
    lines = [
        f"Mode: {extra.get('mode', 'clean')}; {done} simulations of {args.customers} customers",
        "",
        head,
        "|" + "---|" * (4 + len(METRICS)),
    ]
    for r in rows:
        cells = " | ".join(f"{r[f'{m}_vs_random']:.3f} +- {r[f'{m}_vs_random_se']:.3f}" for m in METRICS)
        lines.append(
            f"| {r['segment']} | {r['policy']} | "
            f"{r['revenue_per_100']:.1f} +- {r['revenue_per_100_se']:.1f} | "
            f"{r['retention']:.3f} +- {r['retention_se']:.3f} | {cells} |"
        )
    atomic_write_text(out / "sweep.md", "\n".join(lines) + "\n")
    plot_sweep(rows, args.customers, out / "sweep.png", extra.get("mode", "clean"), args.eval_weeks)
    if not quiet:
        print(f"wrote {out}/sweep.csv, sweep.json, sweep.md, sweep.png")


def plot_sweep(
    rows: list[dict], customers: int, path: Path, mode: str = "clean", eval_weeks: int = 20
) -> None:
    """Revenue per 100-customer simulation (a segment: its share of one) and retention per coupon level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    panels = (
        ("revenue_per_100", f"revenue over {eval_weeks} weeks per {PER_SIMULATION}-customer simulation"),
        ("retention", "retention"),
    )
    for ax, (metric, label) in zip(axes, panels, strict=True):
        se = "revenue_per_100_se" if metric == "revenue_per_100" else "retention_se"
        for seg, color in (("all", "C0"), ("price_sensitive", "C3"), ("price_insensitive", "C2")):
            static = [r for r in rows if r["segment"] == seg and r["level"] >= 0]
            x = [100 * r["coupon"] for r in static]
            y = np.array([r[metric] for r in static])
            e = 1.96 * np.array([r[se] for r in static])
            ax.errorbar(x, y, yerr=e, marker="o", capsize=3, color=color, label=seg.replace("_", " "))
            rnd = next(r for r in rows if r["segment"] == seg and r["level"] < 0)
            ax.axhline(rnd[metric], color=color, ls="--", lw=1)
        ax.set(xlabel="coupon level (%)", ylabel=label)
        ax.grid(alpha=0.3)
    axes[0].legend(title="segment (dashed: random policy)", fontsize=8)
    fig.suptitle(f"{mode} mode, {customers} customers per simulation", fontsize=10)
    save_figure(fig, path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point; a bad flag or a busy/foreign output folder exits 2 with one line."""
    run_cli(build_parser(), argv, check_args, run, errors=(OutputFolderError,))


if __name__ == "__main__":
    main()
