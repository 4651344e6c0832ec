"""Cost of the paper's learned assortment policies (SIL, SRL, paper PPO) and of their gradient estimator.

1. **Estimator**: the Fenchel-Young gradient ``E[topK(theta + eps Z)] - y`` by the pathwise (Danskin)
   mean of perturbed masks against the score-function estimator of ``optax.perturbations``; error to a
   200k-sample reference over repetitions, per-sample variance and time per call (N=20, K=4, eps=1).
2. **Protocol**: each method's full protocol (paper settings: 200 episodes / 8 SIL epochs with their 200
   evaluation points, all init seeds at once, then the kept actors on 100 train + 100 test seeds):
   compile time, steady run time, wall time, training env-steps/s (exploration episodes) and all
   simulated steps/s (evaluation rollouts included).
3. **Shares**: the pieces of one update timed alone at the protocol's shapes (10 seeds): evaluation
   rollouts, expert (SIL's dataset), critic (Q of the SRL candidates, critic fits), top-K (candidate and
   Fenchel-Young top-Ks), as a share of the steady time per update.

    python benchmarks/bench_structured.py                       # everything, paper mode
    python benchmarks/bench_structured.py --methods srl --skip-estimator
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import time_jit  # noqa: E402

from jaxretail.agents import coaml, structured  # noqa: E402
from jaxretail.envs.assortment import DynamicAssortment, expert_parametric_policy, expert_policy  # noqa: E402
from jaxretail.jobs import assortment_learning as al  # noqa: E402
from jaxretail.utils import atomic_write_text  # noqa: E402


def bench_estimator(reps: int = 200) -> list[dict]:
    n, k, eps = 20, 4, 1.0
    theta = jax.random.normal(jax.random.key(0), (n,))
    y = structured.top_k_mask(theta, k)
    ref = structured.fenchel_young_grad(theta, y, jax.random.key(1), k=k, epsilon=eps, num_samples=200_000)
    rows = []
    for name, fn in (
        ("pathwise", structured.fenchel_young_grad),
        ("score-function (optax)", structured.fenchel_young_grad_score_function),
    ):
        for s in (20, 100, 1000):
            est = jax.jit(jax.vmap(lambda key, f=fn, s=s: f(theta, y, key, k=k, epsilon=eps, num_samples=s)))
            keys = jax.random.split(jax.random.key(2), reps)
            g = np.asarray(est(keys))
            err = g - np.asarray(ref)
            t = time_jit(
                lambda kk, f=fn, s=s: f(theta, y, kk, k=k, epsilon=eps, num_samples=s), (keys[0],), repeats=5
            )
            rows.append(
                {
                    "estimator": name,
                    "samples": s,
                    "rmse": float(np.sqrt((err**2).sum(1).mean())),
                    "variance_per_sample": float((g.var(0).sum()) * s),
                    "bias_norm": float(np.linalg.norm(err.mean(0))),
                    "us_per_call": t.seconds * 1e6,
                }
            )
            print(
                f"  {name:24s} S={s:5d} rmse {rows[-1]['rmse']:.4f} "
                f"var/sample {rows[-1]['variance_per_sample']:.2f} "
                f"{rows[-1]['us_per_call']:.0f} us/call",
                flush=True,
            )
    return rows


def bench_protocol(method: str, mode: str, env, params, seeds: int) -> dict:
    spec = coaml.EnvSpec(env, params, params.horizon, params.assortment_size)
    t0 = time.perf_counter()
    data = (
        al.expert_episodes(env, params, expert_parametric_policy(), range(1, 101))
        if method == "sil"
        else None
    )
    jax.block_until_ready(data)
    expert_s = time.perf_counter() - t0
    trainer = al.make_trainer(method, mode, spec)
    keys = jax.vmap(jax.random.key)(jnp.asarray(al.PAPER_INIT_SEEDS[:seeds], jnp.uint32))
    state = jax.jit(trainer.init)(keys, None)
    chunk_n = 20
    chunk = jax.jit(lambda s, d: jax.lax.scan(lambda s, _: trainer.update(s, d), s, None, chunk_n))
    t0 = time.perf_counter()
    compiled = chunk.lower(state, data).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(trainer.num_updates // chunk_n):
        state, _ = compiled(state, data)
    jax.block_until_ready(state)
    run_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    al.evaluate_actors(spec, state["selection"].best_params, list(range(1, 101)) + list(range(2001, 2101)))
    final_s = time.perf_counter() - t0
    u, horizon = trainer.num_updates, params.horizon
    train_steps = 0 if method == "sil" else u * horizon * seeds
    eval_steps = u * 60 * horizon * seeds
    return {
        "method": method,
        "mode": mode,
        "init_seeds": seeds,
        "updates": u,
        "expert_data_s": expert_s,
        "compile_s": compile_s,
        "run_s": run_s,
        "final_eval_s": final_s,
        "wall_s": expert_s + compile_s + run_s + final_s,
        "per_update_s": run_s / u,
        "train_env_steps_per_s": train_steps / run_s,
        "all_env_steps_per_s": (train_steps + eval_steps) / run_s,
    }


def bench_shares(method: str, env, params, seeds: int, per_update_s: float) -> dict:
    """Pieces of one update (all ``seeds`` at once), timed alone."""
    spec = coaml.EnvSpec(env, params, params.horizon, params.assortment_size)
    f, n, k = 10, params.num_items, params.assortment_size
    key = jax.random.key(0)
    actors = jax.vmap(lambda kk: coaml.init_actor(kk, f))(jax.random.split(key, seeds))
    critics = jax.vmap(lambda kk: coaml.init_critics(kk, n, k, f))(jax.random.split(key, seeds))
    x = jax.random.uniform(key, (seeds, 4, f, n), minval=1.0, maxval=10.0)
    shares = {}
    ev = time_jit(
        lambda a: jax.vmap(lambda a: coaml.evaluate_train_val(spec, a, 30, 1, 1001))(a), (actors,), repeats=2
    )
    shares["evaluation rollouts"] = ev.seconds
    if method == "sil":
        for name, pol in (
            ("expert (parametric)", expert_parametric_policy()),
            ("expert (brute force)", expert_policy(params)),
        ):
            t0 = time.perf_counter()
            jax.block_until_ready(al.expert_episodes(env, params, pol, range(1, 101)))  # once per protocol
            shares[name + ", once"] = time.perf_counter() - t0
        iters = 4 * params.horizon
        fy = lambda th, kk: structured.fenchel_young_grad(th, th, kk, k=k, epsilon=1.0, num_samples=20)  # noqa: E731
        th = jax.random.normal(key, (iters, seeds, n))
        shares["top-K (FY, 20 samples)"] = time_jit(
            lambda th: jax.lax.scan(lambda c, t: (c, jax.vmap(fy)(t, jax.random.split(key, seeds))), 0, th)[
                1
            ],
            (th,),
            repeats=2,
        ).seconds
        return {kk: v / per_update_s if "once" not in kk else v for kk, v in shares.items()}
    iters = 100
    cands = jax.random.normal(key, (iters, seeds, 4, 41, n))
    acts = jax.vmap(jax.vmap(jax.vmap(jax.vmap(lambda c: structured.top_k_mask(c, k)))))(cands)

    def q_all(c, a):
        q = jax.vmap(
            lambda cr, xs, aa: jax.vmap(
                lambda xx, a4: jax.vmap(
                    lambda a1: (
                        coaml.critic_reward(cr["rew"], xx, a1, k) + coaml.critic_future(cr["fut"], xx, a1)
                    )
                )(a4)
            )(xs, aa)
        )
        return jax.lax.scan(lambda carry, aa: (carry, q(c, x, aa)), 0, a)[1]

    topk = lambda c: jax.vmap(jax.vmap(jax.vmap(jax.vmap(lambda v: structured.top_k_mask(v, k)))))(c)  # noqa: E731
    fy_th = jax.random.normal(key, (iters, seeds, 4, 20, n))
    if method == "srl":
        shares["critic (Q of 41 candidates x 4)"] = time_jit(q_all, (critics, acts), repeats=2).seconds
        shares["top-K (41 candidates + 20 FY samples, x 4)"] = time_jit(
            lambda c, t: (topk(c), topk(t)), (cands, fy_th), repeats=2
        ).seconds
    else:
        shares["top-K (topK(theta_old), x 4)"] = time_jit(topk, (cands[:, :, :, :1],), repeats=2).seconds
    return {kk: v / per_update_s for kk, v in shares.items()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", default="sil,srl,paper-ppo")
    ap.add_argument("--mode", default="paper", choices=al.MODES)
    ap.add_argument("--init-seeds", type=int, default=10)
    ap.add_argument("--skip-estimator", action="store_true")
    ap.add_argument("--out", default="results/bench_structured")
    args = ap.parse_args(argv)
    methods = al.parse_methods(args.methods)
    if not 1 <= args.init_seeds <= len(al.PAPER_INIT_SEEDS):
        print(
            f"error: --init-seeds must be in 1..{len(al.PAPER_INIT_SEEDS)}, got {args.init_seeds}",
            file=sys.stderr,
        )
        raise SystemExit(2)
    load = os.getloadavg()
    print(f"device {jax.devices()[0]}, {os.cpu_count()} CPUs, load average {load[0]:.1f}", flush=True)
    out = {"load_average_start": load, "estimator": [], "protocol": []}
    if not args.skip_estimator:
        out["estimator"] = bench_estimator()
    env = DynamicAssortment()
    params = env.default_params
    for m in methods:
        res = bench_protocol(m, args.mode, env, params, args.init_seeds)
        res["shares"] = bench_shares(m, env, params, args.init_seeds, res["per_update_s"])
        res["load_average"] = os.getloadavg()
        out["protocol"].append(res)
        print(
            f"  {m} ({args.mode}, {args.init_seeds} seeds): wall {res['wall_s']:.0f} s = expert data "
            f"{res['expert_data_s']:.1f} + compile {res['compile_s']:.1f} + run {res['run_s']:.1f} + "
            f"final eval "
            f"{res['final_eval_s']:.1f}; {res['per_update_s'] * 1e3:.0f} ms/update; training "
            f"{res['train_env_steps_per_s']:,.0f} env-steps/s, all simulated "
            f"{res['all_env_steps_per_s']:,.0f} "
            f"env-steps/s; load {res['load_average'][0]:.1f}",
            flush=True,
        )
        for name, share in res["shares"].items():
            unit = "s" if "once" in name else "of an update"
            print(
                f"      {name:45s} {share * (1 if unit == 's' else 100):6.1f} {'s' if unit == 's' else '%'}"
            )
    path = Path(args.out) / f"bench_structured_{args.mode}.json"
    atomic_write_text(path, json.dumps(out, indent=2, default=float))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
