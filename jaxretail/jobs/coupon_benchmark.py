"""Main job of the coupon benchmark: collection -> training of LinUCB, LinTS, the Neural Boltzmann bandit,
offline PPO and offline DQN -> evaluation by resuming the saved simulations, with static coupons and random
as baselines. ``--mode paper`` runs the published setting (legacy coupling, paper base prices, price-timing
quirk, weekly utility clip, the original's evaluation quirks), ``--mode clean`` the intended model.

Writes ``results.md``, ``results.csv``, ``results.json`` (every metric of the coupon specification, raw and
relative to random, with standard errors and one-sided paired t-tests of revenue against random and the
best static coupon), ``allocation.csv`` (mean offered coupon to the price-sensitive and price-insensitive
halves) and ``results.png``. The logged dataset and saved states go to ``<out>/dataset`` and are reused
(or resumed) by a later run with the same settings.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from jaxretail.core.validation import (
    ConfigError,
    catalogue_sizes,
    cli_parser,
    int_at_least,
    run_cli,
    seed_flag,
)
from jaxretail.data import collection as col
from jaxretail.envs.coupon.metrics import METRICS
from jaxretail.envs.coupon.modes import MODES, mode_settings
from jaxretail.envs.coupon.protocol import PER_SIMULATION, auto_block_size
from jaxretail.evaluation.plots import save_figure
from jaxretail.evaluation.tables import run_metadata, write_rows
from jaxretail.jobs.coupon_protocol import ProtocolConfig, evaluate_all
from jaxretail.utils.atomic import atomic_write_text
from jaxretail.utils.rundir import OutputFolderError, claim_output

POSITIVE = int_at_least(1)


def build_parser() -> argparse.ArgumentParser:
    ap = cli_parser(__doc__.split("\n\n")[0])
    ap.add_argument(
        "--mode",
        default="clean",
        choices=MODES,
        help="paper: legacy coupling, paper base prices, price-timing quirk, utility clip, evaluation quirks",
    )
    ap.add_argument("--customers", type=POSITIVE, default=100_000, help="customers logged in all")
    ap.add_argument("--customers-per-simulation", type=POSITIVE, default=1000, help="must divide --customers")
    ap.add_argument("--train-weeks", type=POSITIVE, default=50)
    ap.add_argument("--eval-weeks", type=POSITIVE, default=20)
    ap.add_argument("--eval-simulations", type=POSITIVE, default=5, help="<= the number of simulations")
    ap.add_argument("--training-runs", type=POSITIVE, default=10)
    ap.add_argument("--nb-epochs", type=POSITIVE, default=100)
    ap.add_argument("--ppo-updates", type=POSITIVE, default=100, help="offline PPO updates per training run")
    ap.add_argument("--dqn-updates", type=POSITIVE, default=200, help="offline DQN gradient steps per run")
    ap.add_argument(
        "--rl-customers", type=POSITIVE, default=2000, help="customers per PPO / DQN update (<= --customers)"
    )
    ap.add_argument(
        "--rl-discount-as-coded",
        action="store_true",
        help="train PPO and DQN on immediate rewards, as the original effectively does (coupon.md 3.3)",
    )
    ap.add_argument("--config", default="benchmark", choices=("benchmark", "hfhd", "calibrated"))
    ap.add_argument(
        "--category-sizes",
        type=catalogue_sizes,
        default=None,
        help="products per category instead of the configuration's 2,514-product catalogue, e.g. 7,3,12,5 "
        "(small runs; clean mode with drawn base prices)",
    )
    ap.add_argument("--seed", type=seed_flag, default=0)
    ap.add_argument("--out", default="results/coupon_benchmark")
    ap.add_argument(
        "--overwrite",
        "--fresh",
        dest="overwrite",
        action="store_true",
        help="delete an output folder (dataset included) that holds a different run, and start again",
    )
    ap.add_argument(
        "--legacy-evaluation",
        action="store_true",
        help="reproduce the original's fresh-wrapper evaluation quirks (coupon.md 3.5; "
        "implied by --mode paper)",
    )
    return ap


def check_args(args) -> tuple:
    """The collection and protocol configs of a run, validated before anything is computed; no flag
    is clipped: a value the data cannot honour is refused."""
    per_sim = args.customers_per_simulation
    if per_sim > args.customers or args.customers % per_sim:
        raise ConfigError(
            f"--customers-per-simulation must divide --customers={args.customers}, got "
            f"--customers-per-simulation={per_sim}"
        )
    mode = mode_settings(args.mode)
    sizes = args.category_sizes
    if sizes is not None and args.mode == "paper":
        raise ConfigError(
            "--category-sizes needs --mode clean (the paper's prices exist only for its catalogue)"
        )
    simulations = args.customers // per_sim
    if args.eval_simulations > simulations:
        raise ConfigError(
            f"--eval-simulations must be <= the {simulations} simulations collected "
            f"(--customers / --customers-per-simulation), got --eval-simulations={args.eval_simulations}"
        )
    if args.rl_customers > args.customers:
        raise ConfigError(
            f"--rl-customers must be <= the {args.customers} logged customers (--customers), got "
            f"--rl-customers={args.rl_customers}"
        )
    collection = col.CollectionConfig(
        scenario=args.config,
        num_simulations=args.customers // per_sim,
        customers_per_simulation=per_sim,
        num_weeks=args.train_weeks,
        seed=args.seed,
        block_size=auto_block_size(per_sim),
        mode=args.mode,
        **({} if sizes is None else {"base_prices": "draw", "category_sizes": sizes}),
    )
    protocol = ProtocolConfig(
        eval_simulations=args.eval_simulations,
        eval_weeks=args.eval_weeks,
        training_runs=args.training_runs,
        nb_epochs=args.nb_epochs,
        ppo_updates=args.ppo_updates,
        dqn_updates=args.dqn_updates,
        rl_customers=args.rl_customers,
        rl_discount_as_coded=args.rl_discount_as_coded,
        legacy_evaluation=args.legacy_evaluation or mode.legacy_evaluation,
        seed=args.seed,
    )
    return collection, protocol


def run(args, built: tuple | None = None) -> dict:
    """Collect (or reuse) the dataset, train and evaluate every agent, write the results.

    Raises:
      OutputFolderError: ``--out`` holds a different run (without ``--overwrite``) or another live run
        is writing it.
    """
    collection, protocol = check_args(args) if built is None else built
    identity = {k: v for k, v in sorted(vars(args).items()) if k not in ("out", "overwrite")}
    with claim_output(args.out, identity, overwrite=args.overwrite):
        return _run(args, collection, protocol)


def _run(args, collection, protocol) -> dict:
    out = Path(args.out)
    timings = {}
    start = time.perf_counter()
    col.collect(out / "dataset", collection, overwrite=args.overwrite)
    timings["collection_s"] = time.perf_counter() - start
    start = time.perf_counter()
    res = evaluate_all(
        out / "dataset",
        collection,
        protocol,
        progress=lambda msg: print(f"  [{time.perf_counter() - start:6.1f} s] {msg}", flush=True),
    )
    timings["train_and_evaluate_s"] = time.perf_counter() - start
    mode = mode_settings(args.mode)
    per_sim = collection.customers_per_simulation
    meta = run_metadata(
        config=vars(args),
        mode=args.mode,
        mode_settings=mode.as_dict(),
        collection=collection.__dict__,
        protocol=protocol.__dict__,
        **timings,
    )
    unit = PER_SIMULATION / per_sim
    for r in res["rows"]:
        r["mode"] = args.mode
        for m in ("revenue", "demand"):  # per 100-customer simulation over the evaluation weeks
            r[f"{m}_per_100"], r[f"{m}_per_100_se"] = r[m] * unit, r[f"{m}_se"] * unit
    write_rows(out, "results", res["rows"], meta)
    alloc_rows = [{"policy": k, **v} for k, v in res["allocation"].items()]
    write_rows(out, "allocation", alloc_rows, meta)
    all_rows = [r for r in res["rows"] if r["segment"] == "all"]
    lines = [
        f"Mode: {args.mode}",
        "",
        f"| policy | revenue per {PER_SIMULATION} customers over {args.eval_weeks} weeks | retention | "
        + " | ".join(f"{m} / random" for m in METRICS)
        + " | p(rev > random) | p(rev > best static) |",
        "|" + "---|" * (len(METRICS) + 5),
    ]
    for r in all_rows:
        cells = " | ".join(f"{r[f'{m}_vs_random']:.3f} +- {r[f'{m}_vs_random_se']:.3f}" for m in METRICS)
        static = r["policy"].startswith("coupon_")
        is_random = r["policy"] == "random"
        p_random = format_p(r["p_revenue_gt_random"], "is random" if is_random else "no variance")
        p_static = format_p(r["p_revenue_gt_best_static"], "a static coupon" if static else "no variance")
        lines.append(
            f"| {r['policy']} | {r['revenue_per_100']:.1f} +- {r['revenue_per_100_se']:.1f} | "
            f"{r['retention']:.3f} +- {r['retention_se']:.3f} | {cells} | {p_random} | {p_static} |"
        )
    lines += ["", "| policy | coupon to price-sensitive | coupon to price-insensitive |", "|---|---|---|"]
    lines += [
        f"| {a['policy']} | {a['price_sensitive']:.3f} | {a['price_insensitive']:.3f} |" for a in alloc_rows
    ]
    atomic_write_text(out / "results.md", "\n".join(lines) + "\n")
    plot(all_rows, alloc_rows, out / "results.png")
    print("\n".join(lines))
    print(
        f"collection {timings['collection_s']:.1f} s, "
        f"training + evaluation {timings['train_and_evaluate_s']:.1f} s; "
        f"wrote {out}/results.md, results.csv, results.json, allocation.csv, results.png"
    )
    return res


def format_p(p: float, reason: str) -> str:
    """A p-value to 3 significant digits, or ``n/a (reason)`` when the test does not apply (NaN)."""
    return f"n/a ({reason})" if not np.isfinite(p) else f"{p:.3g}"


def plot(rows, alloc_rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    names = [r["policy"] for r in rows]
    x = np.arange(len(rows))
    axes[0].bar(
        x,
        [r["revenue_vs_random"] for r in rows],
        yerr=[1.96 * r["revenue_vs_random_se"] for r in rows],
        color=["C1" if not n.startswith("coupon_") and n != "random" else "C0" for n in names],
        capsize=3,
    )
    axes[0].axhline(1.0, color="k", lw=0.8)
    axes[0].set_xticks(x, names, rotation=60, ha="right", fontsize=8)
    axes[0].set_ylabel("accumulated revenue / random (95% CI)")
    xa = np.arange(len(alloc_rows))
    axes[1].bar(xa - 0.2, [a["price_sensitive"] for a in alloc_rows], 0.4, label="price-sensitive")
    axes[1].bar(xa + 0.2, [a["price_insensitive"] for a in alloc_rows], 0.4, label="price-insensitive")
    axes[1].set_xticks(xa, [a["policy"] for a in alloc_rows], rotation=60, ha="right", fontsize=8)
    axes[1].set_ylabel("mean offered coupon")
    axes[1].legend()
    save_figure(fig, path, dpi=110)


def main(argv=None):
    """Command-line entry point; a bad flag or a busy/foreign output folder exits 2 with one line."""
    run_cli(build_parser(), argv, check_args, run, errors=(OutputFolderError,))


if __name__ == "__main__":
    main()
