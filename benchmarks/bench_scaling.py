"""Scaling study: time and memory against population size, and speed-up from sharding over devices.

1. ``--sizes``: the coupon environment (2,514 products, random coupons) for populations from 1,000
   to 1,000,000 customers over ``--weeks`` weeks, and the assortment environment for as many
   episodes; each size runs in its own process so its peak memory (max RSS) is its own.
2. ``--devices``: the same steps with the customer (episode) axis sharded over N devices of a 1-D
   ``Mesh``: the coupon week through ``jax.shard_map`` (each device compacts and streams its own
   visitors; one ``psum`` per population mean), the assortment rollout through ``NamedSharding``
   inputs (GSPMD partitions it). Random numbers are keyed by global ids, so results equal one
   device's. On CPU the devices are forced host devices (``--xla_force_host_platform_device_count``),
   which share this machine's cores.

Writes ``scaling.json`` and ``scaling.png`` (time per item and peak memory against size; speed-up
against devices) to ``--out``.

    python benchmarks/bench_scaling.py                                   # sizes 1k..1M, devices 1,2,4
    python benchmarks/bench_scaling.py --sizes 1000,10000 --devices 1,2 --weeks 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def worker(kind: str, size: int, weeks: int, shard: bool) -> dict:
    """One measurement in this process: compile, warm up, then the median of 2 timed runs."""
    import jax
    import jax.numpy as jnp

    sys.path.insert(0, str(HERE))
    from common import time_jit
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from jaxretail.core.rollout import rollout, scan_steps
    from jaxretail.core.sharding import customer_mesh, shard_leading

    mesh = customer_mesh()
    if kind == "coupon":
        from jaxretail.envs.coupon import get_config, sample_scenario
        from jaxretail.envs.coupon.env import CouponEnv, make_params
        from jaxretail.envs.coupon.policies import random_coupon_policy
        from jaxretail.envs.coupon.sharded import shard_state, sharded_step

        cfg = get_config("benchmark")
        params = make_params(sample_scenario(jax.random.key(0), cfg, size, base_prices="paper"), cfg)
        env = CouponEnv(params)
        obs, state = env.reset(jax.random.key(0), params)
        if shard:  # shard_map: each device simulates its own customers
            state = shard_state(state, mesh)
            step = sharded_step(params, mesh)

            def run(key, obs, state):
                def body(state, k):
                    action = jax.lax.with_sharding_constraint(
                        jax.random.randint(k, (size,), 0, 11), NamedSharding(mesh, P("customers"))
                    )
                    _, state, reward, _ = step(state, action)
                    return state, reward.sum()

                return jax.lax.scan(body, state, jax.random.split(key, weeks))[1].sum()
        else:

            def run(key, obs, state):
                return scan_steps(env, random_coupon_policy, key, params, obs, state, weeks)[2].sum()

        args = (jax.random.key(1), obs, state)
        items = size * weeks
    else:
        from jaxretail.envs.assortment import DynamicAssortment, random_policy
        from jaxretail.evaluation.episodes import episode_keys

        env = DynamicAssortment()
        params = env.default_params
        keys = episode_keys(range(size))
        if shard:
            keys = shard_leading(keys, mesh, size)

        def run(key, keys):
            return rollout(env, random_policy, key, params, keys, params.horizon)[2].sum()

        args = (jax.random.key(1), keys)
        items = size * params.horizon
    timing = time_jit(run, args, repeats=2)
    del jnp
    return {
        "kind": kind,
        "size": size,
        "devices": len(jax.devices()),
        "sharded": shard,
        "items": items,
        "compile_s": timing.compile_s,
        "seconds": timing.seconds,
        "us_per_item": 1e6 * timing.seconds / items,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def spawn(kind: str, size: int, weeks: int, devices: int | None) -> dict:
    env = dict(os.environ)
    if devices is not None:
        env["XLA_FLAGS"] = (
            f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}".strip()
        )
        env["JAX_PLATFORMS"] = "cpu"
    cmd = [sys.executable, __file__, "--worker", kind, str(size), str(weeks), str(int(devices is not None))]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode:
        raise RuntimeError(f"worker {kind} {size} failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,10000,100000,1000000")
    ap.add_argument(
        "--weeks", type=int, default=2, help="coupon weeks per run (assortment: one 80-step episode)"
    )
    ap.add_argument("--devices", default="1,2,4", help="device counts for the sharding study ('' to skip)")
    ap.add_argument(
        "--shard-customers", type=int, default=20_000, help="coupon population of the sharding study"
    )
    ap.add_argument("--shard-episodes", type=int, default=100_000)
    ap.add_argument("--out", default="results/benchmarks")
    ap.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        kind, size, weeks, shard = args.worker
        print(json.dumps(worker(kind, int(size), int(weeks), bool(int(shard)))))
        return
    sizes = [int(s) for s in args.sizes.split(",") if s]
    rows = []
    print(
        f"{'kind':10s} {'size':>9s} {'devices':>7s} {'us/item':>9s} {'seconds':>8s} {'peak GiB':>8s}",
        flush=True,
    )
    show = lambda r: print(  # noqa: E731
        f"{r['kind']:10s} {r['size']:9d} {r['devices']:7d} {r['us_per_item']:9.3f} {r['seconds']:8.2f} "
        f"{r['peak_rss_gib']:8.2f}",
        flush=True,
    )
    for kind in ("coupon", "assortment"):
        for size in sizes:
            rows.append(spawn(kind, size, args.weeks, None))
            show(rows[-1])
    shard_rows = []
    for n in [int(d) for d in args.devices.split(",") if d]:
        for kind, size in (("coupon", args.shard_customers), ("assortment", args.shard_episodes)):
            shard_rows.append(spawn(kind, size, args.weeks, n))
            show(shard_rows[-1])
    for r in shard_rows:
        base = (
            next(b for b in shard_rows if b["kind"] == r["kind"] and b["devices"] == 1) if args.devices else r
        )
        r["speedup"] = base["seconds"] / r["seconds"]
    sys.path.insert(0, str(HERE.parent))
    from jaxretail.utils.atomic import atomic_write_text

    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(), "weeks": args.weeks}
    out = Path(args.out)
    atomic_write_text(
        out / "scaling.json", json.dumps({"meta": meta, "sizes": rows, "sharding": shard_rows}, indent=2)
    )
    plot(rows, shard_rows, out / "scaling.png")
    print(f"wrote {out}/scaling.json, scaling.png")


def plot(rows, shard_rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from jaxretail.evaluation.plots import save_figure

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for kind, unit in (("coupon", "customer-week"), ("assortment", "env-step")):
        rs = [r for r in rows if r["kind"] == kind]
        axes[0].loglog(
            [r["size"] for r in rs], [r["us_per_item"] for r in rs], "o-", label=f"{kind} (us per {unit})"
        )
        axes[1].loglog([r["size"] for r in rs], [r["peak_rss_gib"] for r in rs], "o-", label=kind)
        ss = [r for r in shard_rows if r["kind"] == kind]
        if ss:
            axes[2].plot([r["devices"] for r in ss], [r["speedup"] for r in ss], "o-", label=kind)
    axes[0].set(xlabel="customers / episodes", ylabel="microseconds per item", title="time per item")
    axes[1].set(xlabel="customers / episodes", ylabel="peak RSS (GiB)", title="memory")
    axes[2].set(xlabel="devices", ylabel="speed-up over 1 device", title="sharded customer axis")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    save_figure(fig, path, dpi=110)


if __name__ == "__main__":
    main()
