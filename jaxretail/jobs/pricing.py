"""Dynamic pricing main job: the comparisons of Liu et al. (2019, arXiv 1912.02572) on simulated SKUs.

Studies (every learned policy is trained on one set of SKUs and evaluated greedily on held-out SKUs,
with common random numbers, against the analytic optimum and the specialist rules):

1. ``reward_gamma`` (Fig. 4a): DQN with RCR vs DRCR reward, gamma in {0.5, 0.9, 0.99}, on the
   luxury-like and the FMCG-like group (gammas and seeds vmapped in one compiled call).
2. ``num_prices`` (Fig. 4b): DQN with DRCR over the number of price areas K.
3. ``demonstrations`` (Fig. 4c): DQfD (discrete) vs DDPGfD (continuous) against the number of
   demonstration transitions from a specialist log (0 = plain prioritised DQN / DDPG).
4. ``markdown`` (Fig. 6): DQN (K = 9, 10..90 % off, PCR reward) vs the manual markdown rule, RCR and
   profit by day.
5. ``offline``: the replay estimator (Algorithm 1), IPW, SNIPW and DR of the greedy DQN from logs of
   an epsilon-specialist, next to its on-line value.
6. ``did`` (Fig. 5): twin SKU groups under the same rule (DID ~ 0) and with the treated group
   switched to the learned policy halfway (DID vs the simulated effect); outcome: daily RCR.

Value = pooled RCR (or PCR) per visitor in % of the list price, averaged over SKU-days.
Writes ``results.csv``, ``results.json``, ``report.md`` and PNG plots to ``--out`` atomically. The
studies themselves are in :mod:`jaxretail.jobs.pricing_studies`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from jaxretail.core.validation import cli_parser, int_at_least, run_cli, seed_flag
from jaxretail.evaluation.plots import plt, save_figure
from jaxretail.evaluation.tables import run_metadata
from jaxretail.jobs.pricing_studies import LEARNING_STARTS, STUDIES
from jaxretail.utils.atomic import atomic_write_text
from jaxretail.utils.rundir import OutputFolderError, claim_output


def build_parser() -> argparse.ArgumentParser:
    ap = cli_parser(__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="results/pricing", help="output folder")
    ap.add_argument(
        "--overwrite", action="store_true", help="replace an output folder that holds a different run"
    )
    ap.add_argument("--updates", type=int_at_least(1), default=600, help="DQN/DDPG updates per run")
    ap.add_argument(
        "--train-skus", type=int_at_least(1), default=32, help="SKUs stepped in parallel while training"
    )
    ap.add_argument(
        "--eval-skus",
        type=int_at_least(4),
        default=256,
        help="held-out SKUs for evaluation (the DID study splits them into two groups of >= 2)",
    )
    ap.add_argument("--days", type=int_at_least(1), default=30, help="evaluation days (daily mode)")
    ap.add_argument("--seeds", type=int_at_least(1), default=2)
    ap.add_argument(
        "--num-prices", type=int_at_least(2), nargs="+", default=[5, 10, 20], help="K values of study 2"
    )
    ap.add_argument(
        "--demos", type=int_at_least(0), nargs="+", default=[0, 960], help="demonstration counts of study 3"
    )
    ap.add_argument(
        "--studies",
        nargs="+",
        default=list(STUDIES),
    )
    ap.add_argument("--seed", type=seed_flag, default=0)
    return ap


def check_args(a: argparse.Namespace) -> None:
    """Cross-flag checks the flag types cannot make (every number is range-checked by its type)."""
    unknown = set(a.studies) - set(build_parser().get_default("studies"))
    if unknown:
        raise ValueError(f"--studies has unknown names {sorted(unknown)}")
    stored = a.updates * a.train_skus  # one transition per training SKU and update
    if stored <= LEARNING_STARTS:
        raise ValueError(
            f"--updates x --train-skus = {a.updates} x {a.train_skus} = {stored} transitions, but the agents "
            f"take their first gradient step after {LEARNING_STARTS} stored transitions; raise --updates "
            "or --train-skus"
        )


# -- outputs -------------------------------------------------------------------------------------------
def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def markdown_table(rows: list[dict]) -> str:
    cols = [c for c in dict.fromkeys(k for r in rows for k in r) if any(r.get(c) is not None for r in rows)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def write_outputs(out: Path, rows: list[dict], curves: dict, meta: dict) -> None:
    import csv
    import io

    import pandas as pd

    cols = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "results.csv", buf.getvalue())
    atomic_write_text(
        out / "results.json", json.dumps({"meta": meta, "rows": rows, "curves": curves}, indent=1)
    )
    lines = [f"# Dynamic pricing evaluation\n\n`{json.dumps(meta)}`\n"]
    for study in dict.fromkeys(r["study"] for r in rows):
        lines += [f"\n## {study}\n", markdown_table([r for r in rows if r["study"] == study]), ""]
    atomic_write_text(out / "report.md", "\n".join(lines))
    df = pd.DataFrame(rows)
    rg = df[df.study == "reward_gamma"]
    if len(rg):
        fig, axes = plt.subplots(1, 2, figsize=(10, 4), squeeze=False)
        for ax, (group, part) in zip(axes[0], rg.groupby("group"), strict=False):
            for reward, p in part.groupby("reward"):
                ax.errorbar(
                    p.gamma, p.value, yerr=p.value_sd, marker="o", label=f"DQN, {reward.upper()} reward"
                )
            ax.axhline(part.rule_optimal.iloc[0], ls="--", c="k", label="analytic optimum")
            ax.axhline(part.rule_list_price.iloc[0], ls=":", c="gray", label="list-price rule")
            ax.set(xscale="logit", title=group, xlabel="gamma", ylabel="RCR, % of list price per visitor")
            ax.legend(fontsize=8)
        save_figure(fig, out / "reward_gamma.png")
    if "markdown_dqn" in curves:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for name in ("dqn", "manual_rule"):
            c = curves[f"markdown_{name}"]
            axes[0].plot(np.arange(1, len(c["rcr"]) + 1), c["rcr"], marker="o", label=name)
            axes[1].plot(np.arange(1, len(c["profit"]) + 1), c["profit"], marker="o", label=name)
        axes[0].set(xlabel="markdown day", ylabel="RCR, % of list price per visitor")
        axes[1].set(xlabel="markdown day", ylabel="profit per SKU / list price")
        axes[1].axhline(0, c="k", lw=0.8)
        axes[0].legend()
        save_figure(fig, out / "markdown.png")
    other = df[df.study.isin(["num_prices", "demonstrations"])]
    if len(other):
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        k = other[other.study == "num_prices"]
        axes[0].errorbar(k.K, k.value, yerr=k.value_sd, marker="o")
        axes[0].set(
            xscale="log", xlabel="price areas K", ylabel="RCR, % of list price per visitor", title="DQN, FMCG"
        )
        d = other[other.study == "demonstrations"]
        for fam, part in d.groupby(d.agent.str.startswith("ddpg")):
            axes[1].errorbar(
                part.demos,
                part.value,
                yerr=part.value_sd,
                marker="o",
                label="DDPG(fD)" if fam else "DQN/DQfD",
            )
        axes[1].set(xlabel="demonstration transitions", title="pre-training from demonstrations")
        if len(d):  # the report is redrawn after every study; this one may not have run yet
            axes[1].legend()
        save_figure(fig, out / "k_and_demos.png")
    if "did" in curves:
        fig, ax = plt.subplots(figsize=(6, 4))
        for name, c in curves["did"].items():
            ax.plot(np.arange(1, len(c) + 1), c, label=name)
        ax.axvline(15.5, c="k", ls=":")
        ax.set(xlabel="day", ylabel="mean RCR (% of list price per visitor)", title="twin SKU groups")
        ax.legend()
        save_figure(fig, out / "did.png")


def main(argv: list[str] | None = None) -> None:
    """Parse ``argv`` and run the studies; a bad flag or an output folder that holds another run is one
    ``prog: error: ...`` line and exit status 2, before anything is computed."""
    run_cli(build_parser(), argv, check_args, run, errors=(OutputFolderError,))


def run(a: argparse.Namespace, _=None) -> None:
    identity = {k: v for k, v in sorted(vars(a).items()) if k not in ("out", "overwrite")}
    with claim_output(a.out, identity, overwrite=a.overwrite):
        _run(a)


def finished_studies(out: Path) -> tuple[list[dict], dict]:
    """``(rows, curves)`` of the studies a run in ``out`` already finished (``results.json`` is written
    atomically after each study; empty for a new folder). ``claim_output`` has checked that the folder
    holds this very run, and every study draws its own keys from ``--seed``, so a resumed run skips
    them and ends with the outputs of an uninterrupted one."""
    path = out / "results.json"
    if not path.exists():
        return [], {}
    stored = json.loads(path.read_text())
    return stored["rows"], stored["curves"]


def _run(a: argparse.Namespace) -> None:
    out = Path(a.out)
    rows, curves = finished_studies(out)
    done = {r["study"] for r in rows}
    tasks = {
        "reward_gamma": 4,
        "num_prices": len(a.num_prices),
        "demonstrations": 2 * len(a.demos),
        "markdown": 1,
        "offline": 1,
        "did": 1,
    }
    start = time.perf_counter()
    with tqdm(total=sum(tasks[s] for s in a.studies), desc="pricing studies") as bar:
        for s in a.studies:
            if s in done:  # finished before an interruption
                bar.update(tasks[s])
                continue
            STUDIES[s](a, rows, bar, curves)
            meta = run_metadata(**vars(a), seconds=round(time.perf_counter() - start, 1))
            write_outputs(out, rows, curves, meta)
    print(f"wrote {out}/report.md ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
