"""Coupon environment throughput: customer-weeks per second, JAX scan against vectorized NumPy.

For each population size U (2,514 products, benchmark configuration), one jitted ``lax.scan`` runs
``--weeks`` weeks of the environment under uniformly random coupons; the NumPy reference
(``numpy_coupon.py``) runs ``--numpy-weeks`` weeks of the same weekly work. Each measurement runs in
its own subprocess so its peak memory (max RSS) is its own. ``--devices 1,2`` runs the JAX scan once
per count of host devices (``--xla_force_host_platform_device_count``): with ``n > 1`` the customers
are split over the devices by ``jax.shard_map`` (:mod:`jaxretail.envs.coupon.sharded`), so each CPU
core simulates its own shard; the speed-up over one device is printed. Prints customer-weeks/s,
microseconds per customer-week, the ratio to NumPy and peak memory, and writes JSON to ``--out``.
XLA's CPU backend is asked to prefer 512-bit vectors (``--xla-flags`` to change).

    python benchmarks/bench_coupon.py                                  # U = 1,000 and 10,000, 70 weeks
    python benchmarks/bench_coupon.py --sizes 100000 --weeks 70 --numpy-weeks 1 --devices 1,2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


DEFAULT_XLA_FLAGS = "--xla_cpu_prefer_vector_width=512"


def measure(kind: str, customers: int, weeks: int, block: int | None, devices: int = 1) -> dict:
    import jax
    import numpy as np

    from jaxretail.core.rollout import scan_steps
    from jaxretail.envs.coupon import get_config, sample_scenario
    from jaxretail.envs.coupon.env import CouponEnv, make_params
    from jaxretail.envs.coupon.policies import random_coupon_policy

    cfg = get_config("benchmark")
    scenario = sample_scenario(jax.random.key(0), cfg, customers, base_prices="paper")
    out = {"kind": kind, "customers": customers, "weeks": weeks, "load_average": os.getloadavg()}
    if kind == "jax":
        params = make_params(scenario, cfg, block_size=block)
        env = CouponEnv(params)
        out.update(
            devices=len(jax.devices()), block_size=params.block_size, sub_block_size=params.sub_block_size
        )
        if len(jax.devices()) == 1:

            def run(key):
                obs, state = env.reset(key, params)
                _, _, rewards = scan_steps(env, random_coupon_policy, key, params, obs, state, weeks)
                return rewards.sum()
        else:
            from jaxretail.core.sharding import customer_mesh
            from jaxretail.envs.coupon.sharded import sharded_rollout

            rollout = sharded_rollout(params, customer_mesh(), random_coupon_policy, weeks)

            def run(key):
                return rollout(key)[0].sum()

        start = time.perf_counter()
        compiled = jax.jit(run).lower(jax.random.key(0)).compile()
        out["compile_s"] = time.perf_counter() - start
        start = time.perf_counter()
        out["revenue"] = float(compiled(jax.random.key(1)).block_until_ready())
        out["seconds"] = time.perf_counter() - start
    else:
        sys.path.insert(0, str(HERE))
        from numpy_coupon import NumpyCouponWeek

        ref = NumpyCouponWeek(scenario, cfg)
        rng = np.random.default_rng(1)
        price = np.asarray(scenario.base_price, np.float64)
        start = time.perf_counter()
        total = 0.0
        for _ in range(weeks):
            total += ref.week(0.05 * rng.integers(0, 11, customers), price).sum()
        out["seconds"] = time.perf_counter() - start
        out["revenue"] = float(total)
    out["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    out["customer_weeks_per_s"] = customers * weeks / out["seconds"]
    out["us_per_customer_week"] = 1e6 / out["customer_weeks_per_s"]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--weeks", type=int, default=70)
    ap.add_argument("--numpy-weeks", type=int, default=5, help="weeks timed for the (slower) NumPy reference")
    ap.add_argument("--block-size", type=int, default=None, help="default: the backend's (make_params)")
    ap.add_argument("--devices", default="1", help="host device counts of the JAX runs, e.g. 1,2")
    ap.add_argument("--xla-flags", default=DEFAULT_XLA_FLAGS)
    ap.add_argument("--out", default="results/benchmarks")
    ap.add_argument("--single", nargs=2, help=argparse.SUPPRESS)  # internal: run one measurement
    args = ap.parse_args(argv)
    if args.single:
        kind, customers = args.single[0], int(args.single[1])
        weeks = args.weeks if kind == "jax" else args.numpy_weeks
        print(json.dumps(measure(kind, customers, weeks, args.block_size)))
        return
    device_counts = [int(d) for d in args.devices.split(",")]
    rows = []
    print(
        f"{'impl':7s} {'U':>7s} {'weeks':>5s} {'cust-weeks/s':>13s} {'us/cust-week':>12s} {'x NumPy':>8s} "
        f"{'peak GiB':>8s} {'compile s':>9s} {'x 1 dev':>8s}   (load {os.getloadavg()[0]:.2f})",
        flush=True,
    )
    for customers in [int(s) for s in args.sizes.split(",")]:
        res = {}
        for kind, devices in [("numpy", 1)] + [("jax", d) for d in device_counts]:
            cmd = [sys.executable, __file__, "--single", kind, str(customers), "--weeks", str(args.weeks),
                   "--numpy-weeks", str(args.numpy_weeks)]  # fmt: skip
            if args.block_size is not None:
                cmd += ["--block-size", str(args.block_size)]
            env = dict(os.environ)
            env["XLA_FLAGS"] = " ".join(
                [
                    env.get("XLA_FLAGS", ""),
                    args.xla_flags,
                    f"--xla_force_host_platform_device_count={devices}",
                ]
            ).strip()
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
            res[(kind, devices)] = json.loads(proc.stdout.strip().splitlines()[-1])
        base = res[("numpy", 1)]["customer_weeks_per_s"]
        one = res.get(("jax", 1))
        for (kind, devices), r in res.items():
            r["ratio_vs_numpy"] = r["customer_weeks_per_s"] / base
            if kind == "jax" and one is not None:
                r["speedup_vs_one_device"] = r["customer_weeks_per_s"] / one["customer_weeks_per_s"]
            rows.append(r)
            label = kind if kind == "numpy" else f"jax x{devices}"
            speedup = r.get("speedup_vs_one_device", float("nan"))
            print(
                f"{label:7s} {customers:7d} {r['weeks']:5d} {r['customer_weeks_per_s']:13.3e} "
                f"{r['us_per_customer_week']:12.2f} {r['ratio_vs_numpy']:8.2f} {r['peak_rss_gib']:8.2f} "
                f"{r.get('compile_s', float('nan')):9.2f} {speedup:8.2f}",
                flush=True,
            )
    sys.path.insert(0, str(HERE.parent))
    from jaxretail.utils.atomic import atomic_write_text

    meta = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "load_average": os.getloadavg(),
        "xla_flags": args.xla_flags,
    }
    atomic_write_text(Path(args.out) / "coupon.json", json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"wrote {args.out}/coupon.json")


if __name__ == "__main__":
    main()
