"""Main job: evaluate the expert, greedy, random and a learned PPO top-K assortment policy on train
and test seeds.

PPO (item-score actor followed by top-K, :mod:`jaxretail.envs.assortment.learned`) is first trained
online for ``--ppo-updates`` updates on freshly drawn episodes (never the evaluation seeds), with
progress and an orbax checkpoint after every chunk of updates in ``<out>/ppo_checkpoints`` (an
interrupted run resumes; ``--ppo-updates 0`` skips it). Prints mean +- standard error of the
undiscounted episode revenue, and writes ``results.csv``, ``results.json``, ``results.md``,
``cumulative_revenue.png`` (cumulative revenue over the ``T`` steps, mean with a 95% band) and
``ppo_training.png`` to the output folder. Run ``python scripts/evaluate_assortment.py
--help`` for the options.

``--methods sil,srl,paper-ppo`` adds the learned policies of Hoppe et al. (arXiv 2505.19053) under the
paper's protocol (:mod:`jaxretail.jobs.assortment_learning`): all ``--init-seeds`` trained at
once, model selection on validation seeds, the kept actors evaluated on the train and test seeds, in
each of ``--modes`` (``paper``: the original's conventions; ``clean``: without them). Their rows give
the mean over init seeds and episodes with two standard errors (over episodes, over init seeds), and
``learning_curves.png`` / ``revenue_boxes.png`` are added. Off by default (minutes per method).
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import jax
import numpy as np

from jaxretail.agents import ppo
from jaxretail.agents.training import run as run_trainer
from jaxretail.core.stats import mean_se
from jaxretail.core.validation import ConfigError, cli_parser, int_at_least, run_cli, seed_flag
from jaxretail.envs.assortment import (
    DynamicAssortment,
    expert_parametric_policy,
    expert_policy,
    greedy_policy,
    random_policy,
)
from jaxretail.envs.assortment.learned import score_vector_env
from jaxretail.evaluation.episodes import evaluate_policy, parse_seed_range
from jaxretail.evaluation.plots import plot_cumulative_reward, plot_learning_curve
from jaxretail.evaluation.tables import run_metadata, write_rows
from jaxretail.jobs import assortment_learning as learning
from jaxretail.jobs.assortment_learning import ppo_config, ppo_policy
from jaxretail.utils.atomic import atomic_write_text
from jaxretail.utils.progress import heartbeat
from jaxretail.utils.rundir import OutputFolderError, claim_output

POLICIES = ("expert", "greedy", "random", "ppo")


def build_parser() -> argparse.ArgumentParser:
    ap = cli_parser(__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="results/assortment", help="output folder")
    ap.add_argument(
        "--overwrite", action="store_true", help="replace an output folder that holds a different run"
    )
    ap.add_argument("--train-seeds", default="1-100", help="episode seeds, e.g. '1-100' or '1,5,7-9'")
    ap.add_argument("--test-seeds", default="2001-2100", help="episode seeds, e.g. '2001-2100'")
    ap.add_argument("--obs-mode", default="paper", choices=("paper", "package"))
    ap.add_argument("--num-items", type=int_at_least(1), default=20, help="N")
    ap.add_argument("--num-features", type=int_at_least(0), default=2, help="d")
    ap.add_argument("--assortment-size", type=int_at_least(1), default=4, help="K <= N")
    ap.add_argument("--horizon", type=int_at_least(1), default=80, help="T decisions per episode")
    ap.add_argument("--exogenous", action="store_true", help="freeze hype and saturation")
    ap.add_argument("--policy-seed", type=seed_flag, default=0, help="seed of the random policy")
    ap.add_argument(
        "--ppo-updates", type=int_at_least(0), default=50, help="PPO training updates (0: no PPO)"
    )
    ap.add_argument(
        "--ppo-envs", type=int_at_least(4), default=256, help="episodes per update, a multiple of 4"
    )
    ap.add_argument("--ppo-seed", type=seed_flag, default=0)
    ap.add_argument(
        "--expert-batch",
        type=int_at_least(1),
        default=1000,
        help="episodes per chunk of the brute-force expert (bounds memory)",
    )
    ap.add_argument(
        "--methods",
        default="",
        help=f"learned methods of the paper to train and evaluate, comma-separated from {learning.METHODS}",
    )
    ap.add_argument("--modes", default="paper", help="'paper', 'clean' or 'paper,clean' (see --methods)")
    ap.add_argument(
        "--init-seeds",
        default=",".join(map(str, learning.PAPER_INIT_SEEDS)),
        help="initialisation seeds of the learned methods (trained at once)",
    )
    ap.add_argument(
        "--learn-episodes",
        type=int_at_least(0),
        default=0,
        help="override the paper's 200 training episodes of SRL / paper PPO and 8 epochs of SIL "
        "(0: the paper's; for SIL the value is the number of epochs)",
    )
    return ap


def check_args(args: argparse.Namespace) -> dict:
    """Build and validate everything the run needs (environment, seeds, PPO config, learned methods);
    no compute."""
    try:
        args.method_list = learning.parse_methods(args.methods)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    args.mode_list = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in args.mode_list if m not in learning.MODES]
    if bad or not args.mode_list:
        raise ConfigError(f"--modes must list modes from {learning.MODES}, got --modes={args.modes!r}")
    try:
        args.init_seed_list = parse_seed_range(args.init_seeds)
    except ValueError as err:
        raise ConfigError(f"--init-seeds={args.init_seeds!r} is not a seed list: {err}") from None
    if args.learn_episodes < 0:
        raise ConfigError(f"--learn-episodes must be >= 0, got --learn-episodes={args.learn_episodes}")
    splits = {}
    for split in ("train", "test"):
        text = getattr(args, f"{split}_seeds")
        try:
            splits[split] = parse_seed_range(text)
        except ValueError as err:
            raise ConfigError(f"--{split}-seeds={text!r} is not a seed range: {err}") from None
    overlap = sorted(set(splits["train"]) & set(splits["test"]))
    if overlap:  # test episodes seen in training would not measure generalisation
        shown = ", ".join(map(str, overlap[:5])) + (", ..." if len(overlap) > 5 else "")
        raise ConfigError(
            f"--train-seeds and --test-seeds must not overlap, got {len(overlap)} seed(s) in both: {shown}"
        )
    sizes = ("num_items", "num_features", "assortment_size", "horizon", "obs_mode", "exogenous")
    try:
        env = DynamicAssortment(**{name: getattr(args, name) for name in sizes})
    except ConfigError as err:  # name the flags, not the parameter fields (e.g. K > N)
        message = str(err)
        for name in sizes:
            message = re.sub(rf"\b{name}\b", "--" + name.replace("_", "-"), message)
        raise ConfigError(message) from None
    if args.ppo_envs % 4:
        raise ConfigError(f"--ppo-envs must be a positive multiple of 4, got --ppo-envs={args.ppo_envs}")
    config = ppo_config(num_updates=args.ppo_updates, num_steps=args.horizon) if args.ppo_updates else None
    expert = expert_policy(env.default_params)  # refuses a C(N, K) table that would not fit in memory
    return {"splits": splits, "env": env, "ppo_config": config, "expert": expert}


def _json_curve(values) -> list:
    """``[evaluation point, init seed]`` -> ``[init seed][evaluation point]`` lists for JSON (floats
    rounded to 3 digits; flags such as "kept this point" stay booleans)."""
    arr = np.asarray(values).T
    return (arr.round(3) if np.issubdtype(arr.dtype, np.floating) else arr).tolist()


def run_identity(args: argparse.Namespace) -> dict:
    """What determines the output folder's data: every flag but the folder itself."""
    return {k: v for k, v in sorted(vars(args).items()) if k not in ("out", "overwrite")}


def run(args: argparse.Namespace, built: dict | None = None) -> list[dict]:
    """Evaluate every policy on every split; write the table and the plot; return the rows.

    Raises:
      OutputFolderError: ``--out`` holds a different run (without ``--overwrite``) or is being written
        by another live run.
    """
    built = check_args(args) if built is None else built
    with claim_output(args.out, run_identity(args), overwrite=args.overwrite):
        return _run(args, built)


def _run(args: argparse.Namespace, built: dict) -> list[dict]:
    splits, env = built["splits"], built["env"]
    params = env.default_params
    policies = {
        "expert": (built["expert"], args.expert_batch),
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
    training = None
    if args.ppo_updates > 0:
        tag = (
            f"N{params.num_items}-d{params.num_features}-K{params.assortment_size}-T{params.horizon}-"
            f"{params.obs_mode}-{'exo' if params.exogenous else 'endo'}-updates{args.ppo_updates}-"
            f"envs{args.ppo_envs}-seed{args.ppo_seed}"
        )  # a checkpoint is only resumed by the same training run
        training = train_ppo(env, params, args, out / "ppo_checkpoints" / tag, built["ppo_config"])
        policies["ppo"] = (ppo_policy(training["config"], training["agent"]), None)
    all_seeds = [s for seeds in splits.values() for s in seeds]
    for name, (policy, batch) in policies.items():
        start = time.perf_counter()  # one compiled rollout per policy covers every split
        with heartbeat(f"  {name}: compiling and simulating {len(all_seeds)} episodes"):
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
    learned = run_learned(env, params, args, splits, rows, curves) if args.method_list else {}
    write_outputs(out, rows, curves, args)
    if learned:
        test = {r["policy"]: r["mean_revenue"] for r in rows if r["split"] == "test"}
        learning.plot_training_curves(
            learned,
            out / "learning_curves.png",
            references={f"{k} (test seeds)": test[k] for k in ("expert", "greedy") if k in test},
        )
        boxes = {
            k: {s: np.asarray(v).sum(1) for s, v in ((s, curves[s][k]) for s in splits)} for k in policies
        }
        boxes.update({k: {s: r.mean(0) for s, r in res["revenue"].items()} for k, res in learned.items()})
        learning.plot_boxes(boxes, out / "revenue_boxes.png")
        curves_json = {
            name: {k: _json_curve(v) for k, v in res["metrics"].items()}
            | {"best_point": res["best_point"].tolist(), "train_seconds": res["train_seconds"]}
            for name, res in learned.items()
        }  # per method: metric -> [init seed][evaluation point]
        atomic_write_text(out / "learning_curves.json", json.dumps(curves_json))
        print(f"wrote {out}/learning_curves.png, learning_curves.json, revenue_boxes.png", flush=True)
    if training is not None:
        test = {r["policy"]: r["mean_revenue"] for r in rows if r["split"] == "test"}
        plot_learning_curve(
            {"PPO (training episodes)": training["episode_return"]},
            out / "ppo_training.png",
            references={f"{k} (test seeds)": test[k] for k in ("expert", "greedy", "random")},
        )
    return rows


def run_learned(env, params, args, splits, rows, curves) -> dict:
    """Train and evaluate ``--methods`` in each of ``--modes``; append their rows; return the results."""
    learned = {}
    for mode in args.mode_list:
        for method in args.method_list:
            overrides = {}
            if args.learn_episodes:
                overrides = (
                    {"epochs": args.learn_episodes} if method == "sil" else {"episodes": args.learn_episodes}
                )
            name = f"{method} ({mode})"
            print(f"  training {name} for {len(args.init_seed_list)} init seeds at once ...", flush=True)
            res = learning.train_and_evaluate(
                method,
                mode,
                env,
                params,
                splits,
                expert=expert_parametric_policy(),
                init_seeds=args.init_seed_list,
                **overrides,
            )
            learned[name] = res
            new_rows = learning.summary_rows(name, res["revenue"], splits)
            rows.extend(new_rows)
            for r in new_rows:
                curves[r["split"]][name] = None
                print(
                    f"  [{r['split']:5s}] {name:18s} revenue {r['mean_revenue']:.2f} "
                    f"+- {r['se_revenue']:.2f} "
                    f"(episodes) +- {r['se_init_seeds']:.2f} (init seeds)",
                    flush=True,
                )
            print(
                f"  {name}: trained in {res['train_seconds']:.1f} s (compile included); selected evaluation "
                f"points {res['best_point'].tolist()}",
                flush=True,
            )
    for split in curves:  # the cumulative-revenue plot keeps the per-step baselines only
        curves[split] = {k: v for k, v in curves[split].items() if v is not None}
    return learned


def train_ppo(env, params, args, checkpoint_dir: Path, config) -> dict:
    """Online PPO over ``--ppo-envs`` parallel episodes, checkpointed every 10 updates."""
    trainer = ppo.make_trainer(config, score_vector_env(env, params, args.ppo_envs))
    start = time.perf_counter()
    res = run_trainer(trainer, jax.random.key(args.ppo_seed), checkpoint_dir=checkpoint_dir, chunk_updates=10)
    steps = args.ppo_updates * params.horizon * args.ppo_envs
    returns = np.asarray(res["metrics"]["episode_return"])
    print(
        f"  ppo: {args.ppo_updates} updates, {steps:,} env steps in {time.perf_counter() - start:.1f} s; "
        f"training episode return {returns[0]:.1f} -> {returns[-1]:.1f}",
        flush=True,
    )
    return {"config": config, "agent": ppo.agent_of(res["state"]), "episode_return": returns}


def write_outputs(out: Path, rows: list[dict], curves: dict, args: argparse.Namespace) -> None:
    """Atomically write CSV, JSON (with run metadata), Markdown and the cumulative-revenue plot."""
    keys = list(dict.fromkeys(k for r in rows for k in r))  # learned rows add the init-seed columns
    rows = [{k: r.get(k, "") for k in keys} for r in rows]
    write_rows(out, "results", rows, run_metadata(config=vars(args)))
    lines = [
        "| split | policy | mean revenue | s.e. (episodes) | s.e. (init seeds) | episodes |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['split']} ({r['seeds']}) | {r['policy']} | {r['mean_revenue']:.2f} | "
        f"{r['se_revenue']:.2f} | {r['se_init_seeds'] if r.get('se_init_seeds', '') != '' else '-'} "
        f"| {r['episodes']} |"
        for r in rows
    ]
    atomic_write_text(out / "results.md", "\n".join(lines) + "\n")
    panels = {f"{split} seeds": {k: np.asarray(v) for k, v in c.items()} for split, c in curves.items()}
    plot_cumulative_reward(panels, out / "cumulative_revenue.png")
    print(f"wrote {out}/results.csv, results.json, results.md, cumulative_revenue.png", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point; a bad flag or a busy/foreign output folder exits 2 with one line."""
    run_cli(build_parser(), argv, check_args, run, errors=(OutputFolderError,))


if __name__ == "__main__":
    main()
