"""Throughput of the dynamic assortment benchmark: JAX (jitted scan) against vectorized NumPy.

For each batch size B, a rollout of T steps under the random policy and under the myopic expert
(JAX: enumeration in chunks, and the parametric solver; NumPy: chunked enumeration) is timed after
a warm-up (compile excluded, reported separately); each figure is the median of ``--reps`` runs
with ``block_until_ready``. Prints env-steps/s, ns per env-step and the ratio to NumPy measured in
the same run; writes JSON and a plot to ``--out``.

    python benchmarks/bench_assortment.py                    # B = 1k, 10k, 100k
    python benchmarks/bench_assortment.py --sizes 1000 --reps 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import time_python  # noqa: E402
from numpy_assortment import NumpyAssortment, run_episode  # noqa: E402

from jaxretail.core import rollout  # noqa: E402
from jaxretail.envs.assortment import (  # noqa: E402
    DynamicAssortment,
    expert_parametric_policy,
    expert_policy,
    random_policy,
)
from jaxretail.evaluation import episode_keys  # noqa: E402
from jaxretail.evaluation.plots import save_figure  # noqa: E402
from jaxretail.utils import atomic_write_text  # noqa: E402


def time_median(fn, reps: int) -> float:
    return time_python(fn, reps)


def jax_case(policy, batch, B, T, reps):
    env = DynamicAssortment()
    params = env.default_params
    keys = episode_keys(range(B))
    fn = jax.jit(lambda k: rollout(env, policy, k, params, keys, T, policy_batch_size=batch)[2].sum(0))
    start = time.perf_counter()
    run = fn.lower(jax.random.key(0)).compile()
    compile_s = time.perf_counter() - start
    run(jax.random.key(0)).block_until_ready()  # warm-up
    counter = iter(range(1, 10_000))
    steady = time_median(lambda: run(jax.random.key(next(counter))).block_until_ready(), reps)
    return steady, compile_s


def numpy_case(policy, B, T, reps):
    env = NumpyAssortment(B, horizon=80)
    return time_median(lambda: run_episode(env, policy, T), reps)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,10000,100000", help="comma-separated batch sizes B")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument(
        "--expert-env-steps",
        type=int,
        default=800_000,
        help="expert rollouts use T = min(80, this / B) steps (the NumPy expert is slow)",
    )
    ap.add_argument("--out", default="results/benchmarks")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    env = DynamicAssortment()
    params = env.default_params
    _, state = env.reset(jax.random.key(0), params)
    state_bytes = sum(
        np.asarray(
            jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x
        ).nbytes
        for x in jax.tree.leaves(state)
    )
    rows = []
    print(f"device {jax.devices()[0].device_kind}, jax {jax.__version__}, {os.cpu_count()} CPUs", flush=True)
    header = (
        f"{'policy':8s} {'impl':22s} {'B':>7s} {'T':>3s} {'env-steps/s':>12s} {'ns/step':>9s} "
        f"{'x NumPy':>8s} {'GB/s*':>6s} {'compile s':>9s}"
    )
    print(header)
    for B in sizes:
        T_expert = max(1, min(80, args.expert_env_steps // B))
        cases = [
            ("random", "numpy", None, 80),
            ("random", "jax scan", (random_policy, None), 80),
            ("expert", "numpy enum (chunk 1k)", None, T_expert),
            ("expert", "jax enum (chunk 1k)", (expert_policy(params), min(B, 1000)), T_expert),
            ("expert", "jax parametric", (expert_parametric_policy(), None), T_expert),
        ]
        ref = {}
        for policy_name, impl, jax_policy, T in cases:
            if jax_policy is None:
                seconds, compile_s = numpy_case(policy_name, B, T, args.reps), None
                ref[policy_name] = seconds
            else:
                seconds, compile_s = jax_case(*jax_policy, B, T, args.reps)
            rate = B * T / seconds
            ratio = ref[policy_name] / seconds
            gbps = 2 * state_bytes * rate / 1e9  # state read + written once per env-step
            row = {
                "policy": policy_name,
                "impl": impl,
                "B": B,
                "T": T,
                "seconds": seconds,
                "env_steps_per_s": rate,
                "ns_per_env_step": 1e9 / rate,
                "ratio_vs_numpy": ratio,
                "compile_s": compile_s,
                "state_gb_per_s": gbps,
            }
            rows.append(row)
            print(
                f"{policy_name:8s} {impl:22s} {B:7d} {T:3d} {rate:12.3e} {1e9 / rate:9.1f} "
                f"{ratio:8.2f} {gbps:6.1f} "
                f"{'' if compile_s is None else f'{compile_s:9.2f}'}",
                flush=True,
            )
    out = Path(args.out)
    meta = {
        "device": jax.devices()[0].device_kind,
        "jax": jax.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "state_bytes_per_env": state_bytes,
    }
    atomic_write_text(out / "assortment.json", json.dumps({"meta": meta, "rows": rows}, indent=2))
    plot(rows, out / "assortment.png")
    print(
        f"* GB/s: the {state_bytes}-byte env state read and written once per env-step at that rate; "
        "compare with the machine's memory bandwidth (about 40-60 GB/s on the 2-core dev CPU)"
    )
    print(f"wrote {out}/assortment.json and assortment.png")


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, policy in zip(axes, ("random", "expert"), strict=True):
        for impl in sorted({r["impl"] for r in rows if r["policy"] == policy}):
            pts = [
                (r["B"], r["env_steps_per_s"]) for r in rows if r["policy"] == policy and r["impl"] == impl
            ]
            ax.plot(*zip(*pts, strict=True), marker="o", label=impl)
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="parallel episodes B",
            ylabel="env-steps / s",
            title=f"{policy} policy",
        )
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    save_figure(fig, path, dpi=110)


if __name__ == "__main__":
    main()
