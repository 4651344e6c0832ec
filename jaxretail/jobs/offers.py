"""Evaluate the offer DQN (gamma 0.95 and 0), a gradient-boosting baseline and fixed policies.

    python scripts/evaluate_offers.py                       # simulated shoppers (a few minutes on CPU)
    python scripts/evaluate_offers.py --data completejourney  # 84.51 Complete Journey (extra `data`)

Writes to ``--out`` (atomically): ``metrics.{csv,json,md}`` (the paper's metrics per policy),
``per_class.{csv,json}``, ``confusion.json``, ``confusion.png``, ``per_class.png`` and, on simulated data,
``revenue.{csv,json,md}`` and ``revenue.png`` (revenue, margin, conversion and discount spend per test
sample with standard errors, and paired differences against no offer), plus ``report.md``.

DQN settings of Mahdavian et al. (2025, §2.6 of the spec): 15 features -> four hidden ReLU layers
(256-128-64-32, widths not published) -> 5 Q-values; Adam 1e-3; MSE loss; gamma 0.95 (and the gamma = 0
ablation, trained in the same vmapped call); replay 50,000; minibatch 64; hard target copy every 1,000
gradient steps; epsilon-greedy decaying linearly from 1 to 0.05 over the first half of training. Plain
DQN targets (no double DQN) and no effective gradient clipping (norm cap 1e6), as in the paper. The
agent-agnostic protocol (baselines, metrics, revenue) is :mod:`jaxretail.envs.offers.protocol`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxretail.agents import dqn
from jaxretail.agents.training import Trainer
from jaxretail.agents.training import run as run_trainer
from jaxretail.core import spaces
from jaxretail.core.validation import cli_parser, int_at_least, seed_flag
from jaxretail.core.vector import batched
from jaxretail.data.offers import CJ_NOTE, S15_MODES, SPLITS, build_offer_dataset, model_inputs
from jaxretail.envs.offers import ACTION_NAMES, SCALAR_METRICS, simulate
from jaxretail.envs.offers import protocol as op
from jaxretail.envs.offers.env import OfferEnv, make_params
from jaxretail.envs.offers.types import NUM_ACTIONS
from jaxretail.evaluation.plots import plt, save_figure
from jaxretail.evaluation.tables import run_metadata, write_rows
from jaxretail.utils.atomic import atomic_write_text
from jaxretail.utils.rundir import OutputFolderError, claim_output

PAPER_HIDDEN = (256, 128, 64, 32)


def dqn_preset(num_updates: int = 20_000, gamma: float = 0.95, **overrides) -> dqn.DQNConfig:
    """The paper's DQN settings (module docstring); ``num_updates`` gradient steps, one vector-env
    step each."""
    hyper = dqn.DQNHyper(
        learning_rate=1e-3, gamma=gamma, epsilon_start=1.0, epsilon_end=0.05, exploration_fraction=0.5,
        tau=1.0, max_grad_norm=1e6,
    )  # fmt: skip
    cfg = dict(
        num_updates=num_updates, num_steps=1, gradient_steps=1, batch_size=64, buffer_size=50_000,
        learning_starts=1_000, target_update_interval=1_000, hidden=PAPER_HIDDEN, loss="mse",
        double_dqn=False, hyper=hyper,
    )  # fmt: skip
    cfg.update(overrides)
    return dqn.DQNConfig(**cfg)


def _stack(hypers):
    return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x, jnp.float32) for x in xs]), *hypers)


def train_dqn(
    features: np.ndarray,
    labels: np.ndarray,
    key: jax.Array,
    config: dqn.DQNConfig,
    gammas=(0.95, 0.0),
    num_envs: int = 8,
    episode_length: int = 10,
    progress: bool = True,
    chunk_updates: int = 1_000,
) -> dict:
    """Train one DQN per ``gamma`` (vmapped, same key) on the offer environment over ``features``.

    Returns ``{"params": stacked Q-network params [len(gammas), ...], "metrics", "seconds",
    "transitions": env transitions per agent}``."""
    env = OfferEnv()
    params = make_params(features, labels, episode_length)
    trainer = dqn.make_trainer(config, batched(env, params, num_envs))
    hyper = _stack([dataclasses.replace(config.hyper, gamma=float(g)) for g in gammas])
    vtrainer = Trainer(
        jax.vmap(trainer.init, in_axes=(None, 0)),
        jax.vmap(trainer.update, in_axes=(0, None)),
        trainer.num_updates,
    )
    out = run_trainer(
        vtrainer, key, hyper, None, chunk_updates=min(chunk_updates, config.num_updates), progress=progress
    )
    return {
        "params": out["state"].params,
        "metrics": out["metrics"],
        "seconds": out["seconds"],
        "transitions": config.num_updates * num_envs * config.num_steps,
    }


def q_values(config: dqn.DQNConfig, params, features: np.ndarray, batch: int = 65_536) -> jax.Array:
    """``Q [N, 5]`` of one agent's ``params`` on ``features [N, F]``, scored in jitted batches."""
    net = dqn.network(config, spaces.Discrete(NUM_ACTIONS))
    x = jnp.asarray(features, jnp.float32)
    n = x.shape[0]
    pad = (-n) % batch if n > batch else 0
    size = batch if n > batch else n
    xb = jnp.pad(x, ((0, pad), (0, 0))).reshape(-1, size, x.shape[1])
    q = jax.lax.map(lambda b: net.apply(params, b), xb) if xb.shape[0] > 1 else net.apply(params, xb[0])[None]
    return q.reshape(-1, NUM_ACTIONS)[:n]


# -- the main job --------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = cli_parser(__doc__.splitlines()[0])
    p.add_argument("--data", default="simulated", choices=("simulated", "completejourney"))
    p.add_argument("--out", default="results/offers")
    p.add_argument(
        "--overwrite", action="store_true", help="replace an output folder that holds a different run"
    )
    p.add_argument("--customers", type=int_at_least(1), default=800, help="simulated shoppers")
    p.add_argument("--weeks", type=int_at_least(1), default=26)
    p.add_argument(
        "--occasions", type=int_at_least(1), default=8, help="products considered per customer-week"
    )
    p.add_argument(
        "--updates", type=int_at_least(1), default=20_000, help="DQN gradient steps (one env step of 8 each)"
    )
    p.add_argument(
        "--max-train",
        type=int_at_least(1),
        default=200_000,
        help="cap on the gradient-boosting training rows",
    )
    p.add_argument("--split", default="random", choices=SPLITS)
    p.add_argument("--s15", default="offer", choices=S15_MODES, help="realized: the paper's leaky S15")
    p.add_argument("--seed", type=seed_flag, default=0)
    p.add_argument("--no-progress", action="store_true")
    return p


def parse_args(argv=None):
    """Parsed options; a bad value prints one ``prog: error: ...`` line and exits with status 2."""
    return build_parser().parse_args(argv)


def markdown(rows: list[dict], fmt="{:.4f}") -> str:
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append(
            "| " + " | ".join(fmt.format(v) if isinstance(v, float) else str(v) for v in r.values()) + " |"
        )
    return "\n".join(lines) + "\n"


def plot_confusions(conf: dict[str, np.ndarray], path: Path) -> None:
    n = len(conf)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, (name, cm) in zip(axes.flat, conf.items(), strict=False):
        norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
        ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
        for i in range(5):
            for j in range(5):
                ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=6)
        ax.set_title(name, fontsize=8)
        ax.set_xticks(range(5), ACTION_NAMES, rotation=45, fontsize=6)
        ax.set_yticks(range(5), ACTION_NAMES, fontsize=6)
        ax.set_xlabel("predicted", fontsize=7)
        ax.set_ylabel("actual (row-normalized)", fontsize=7)
    save_figure(fig, path)


def plot_per_class(per_class: list[dict], path: Path) -> None:
    names = list(dict.fromkeys(r["policy"] for r in per_class))
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    width = 0.8 / len(names)
    for ax, metric in zip(axes, ("precision", "recall", "f1"), strict=True):
        for k, name in enumerate(names):
            vals = [r[metric] for r in per_class if r["policy"] == name]
            ax.bar(np.arange(5) + k * width, vals, width, label=name)
        ax.set_xticks(np.arange(5) + 0.4 - width / 2, ACTION_NAMES, fontsize=7)
        ax.set_title(f"per-class {metric}")
        ax.set_ylim(0, 1)
    axes[2].legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5))
    save_figure(fig, path)


def plot_revenue(rev: dict[str, dict], path: Path) -> None:
    names = list(rev)
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.4))
    for ax, metric in zip(axes, ("revenue", "margin", "conversion", "discount_spend"), strict=True):
        m = [rev[n][f"{metric}_mean"] for n in names]
        se = [rev[n][f"{metric}_se"] for n in names]
        ax.bar(range(len(names)), m, yerr=1.96 * np.asarray(se), capsize=3)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
        ax.set_title(f"{metric} per sample (95% CI)", fontsize=9)
    save_figure(fig, path)


def main(argv=None) -> dict:
    """Parse ``argv`` and run the job; a bad flag, bad data or an output folder held by another run is
    one ``prog: error: ...`` line and exit status 2, before anything is computed or written."""
    parser = build_parser()
    args = parser.parse_args(argv)
    identity = {k: v for k, v in sorted(vars(args).items()) if k not in ("out", "overwrite", "no_progress")}
    try:
        with claim_output(args.out, identity, overwrite=args.overwrite):
            return run(args)
    except (OutputFolderError, _DataError) as err:
        parser.error(str(err))


class _DataError(Exception):
    """The data could not be built from the given options (bad option or missing optional package)."""


def run(args) -> dict:
    out = Path(args.out)
    t0 = time.perf_counter()
    key = jax.random.key(args.seed)
    progress = not args.no_progress
    try:
        if args.data == "simulated":
            sim = simulate(jax.random.fold_in(key, 1), args.customers, args.weeks, args.occasions)
            df = build_offer_dataset("simulated", simulation=sim, split=args.split, s15=args.s15,
                                     seed=args.seed,
                                     progress=progress)  # fmt: skip
        else:
            df = build_offer_dataset("completejourney", split=args.split, s15=args.s15, seed=args.seed,
                                     progress=progress)  # fmt: skip
    except (ValueError, ImportError) as err:
        raise _DataError(str(err)) from err
    t_data = time.perf_counter() - t0
    train, test = df[df["split"] == "train"], df[df["split"] == "test"]
    if len(train) < 10 or len(test) < 10 or train["label"].nunique() < 2:
        raise _DataError(
            f"the data hold {len(train)} train and {len(test)} test samples of "
            f"{df['label'].nunique()} classes, too few to train and evaluate; raise --customers, "
            "--weeks or --occasions"
        )
    x_tr, y_tr, stats = model_inputs(train)
    x_te, y_te, _ = model_inputs(test, stats)
    levels = df.attrs["jaxretail"]["levels"]

    cfg = dqn_preset(args.updates)
    gammas = (0.95, 0.0)
    trained = train_dqn(x_tr, y_tr, jax.random.fold_in(key, 2), cfg, gammas, progress=progress)
    scores = {}
    for g, gamma in enumerate(gammas):
        params = jax.tree.map(lambda x, g=g: x[g], trained["params"])
        scores[f"DQN gamma={gamma:g}"] = q_values(cfg, params, x_te)
    rng = np.random.default_rng(args.seed)
    sub = rng.choice(len(x_tr), min(args.max_train, len(x_tr)), replace=False)
    t_hgb = time.perf_counter()
    scores["gradient boosting"] = jnp.asarray(op.supervised_baseline(x_tr[sub], y_tr[sub], x_te, args.seed))
    t_hgb = time.perf_counter() - t_hgb
    scores.update(op.baseline_scores(x_te, y_te, with_oracle=args.data == "simulated"))

    rows, per_class, conf = [], [], {}
    y = jnp.asarray(y_te)
    for name, q in scores.items():
        r = jax.tree.map(np.asarray, op.evaluate_scores(y, q))
        rows.append({"policy": name, **{k: float(r[k]) for k in SCALAR_METRICS}})
        conf[name] = r["confusion"]
        for c in range(5):
            per_class.append({"policy": name, "class": ACTION_NAMES[c], **{
                k: float(r[k][c])
                for k in ("precision", "recall", "f1", "support", "auc_ovr_per_class")}})  # fmt: skip
    note = CJ_NOTE if args.data == "completejourney" else "simulated shoppers from the coupon population"
    meta = run_metadata(
        data=args.data, note=note, rows=len(df), train=len(train), test=len(test), dqn_updates=args.updates,
        dqn_transitions=trained["transitions"], dqn_seconds=trained["seconds"], hgb_seconds=t_hgb,
        hgb_train_rows=len(sub), data_seconds=t_data, split=args.split, s15=args.s15, seed=args.seed,
    )  # fmt: skip
    write_rows(out, "metrics", rows, meta)
    write_rows(out, "per_class", per_class, meta)
    atomic_write_text(out / "confusion.json", json.dumps({k: v.tolist() for k, v in conf.items()}))
    atomic_write_text(out / "metrics.md", markdown(rows))
    plot_confusions(conf, out / "confusion.png")
    plot_per_class(per_class, out / "per_class.png")
    report = [f"# Offer evaluation ({args.data})", "", f"**Data.** {note.rstrip('.')}.", "",
              f"{len(df):,} samples ({len(train):,} train / {len(test):,} test, {args.split} split, "
              f"S15={args.s15}).",
              "", "## Metrics (test split)", "", markdown(rows, "{:.3f}")]  # fmt: skip
    rev = None
    if args.data == "simulated":
        actions = {n: np.asarray(jnp.argmax(q, axis=1)) for n, q in scores.items()}
        rev = op.revenue_table(actions, test, levels)
        rev_rows = [{"policy": n, **v} for n, v in rev.items()]
        write_rows(out, "revenue", rev_rows, meta)
        short = [{"policy": n, **{m: f"{v[m + '_mean']:.3f} ± {v[m + '_se']:.3f}" for m in
                  ("revenue", "margin", "conversion", "discount_spend")},
                  "revenue vs no offer": f"{v['revenue_diff']:+.3f} ± {v['revenue_diff_se']:.3f}",
                  "margin vs no offer": f"{v['margin_diff']:+.3f} ± {v['margin_diff_se']:.3f}"}
                 for n, v in rev.items()]  # fmt: skip
        atomic_write_text(out / "revenue.md", markdown(short))
        plot_revenue(rev, out / "revenue.png")
        report += [
            "## Revenue per test sample (mean ± SE; offers to the simulated shoppers)",
            "",
            markdown(short),
        ]
    report += [
        f"DQN: {trained['transitions']:,} transitions, {trained['seconds']:.0f} s for both gammas; "
        f"gradient boosting on {len(sub):,} rows, {t_hgb:.0f} s; total {time.perf_counter() - t0:.0f} s."
    ]
    atomic_write_text(out / "report.md", "\n".join(report) + "\n")
    print("\n".join(report))
    return {"metrics": rows, "revenue": rev, "meta": meta}


if __name__ == "__main__":
    main()
