"""A coupon-environment population split over several processes (hosts) with ``jax.distributed``.

Every process runs this same script. ``jax.distributed.initialize`` connects them; the mesh then
spans the devices of all processes, each process holds the customers of its own devices, and the
week runs under ``jax.shard_map`` (:mod:`jaxretail.envs.coupon.sharded`). The total revenue is
reduced across processes and printed by process 0, next to a single-process run of the same
scenario for comparison.

On a cluster (one line per host; the coordinator is process 0's address):

    python scripts/multihost_example.py --coordinator 10.0.0.1:12355 --num-processes 2 --process-id 0
    python scripts/multihost_example.py --coordinator 10.0.0.1:12355 --num-processes 2 --process-id 1

To try it on one machine (CPU, two processes talking over localhost with gloo collectives):

    python scripts/multihost_example.py --local 2
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def run_process(args) -> None:
    import jax

    if args.cpu:
        jax.config.update("jax_platforms", "cpu")
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=args.coordinator, num_processes=args.num_processes, process_id=args.process_id
    )
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from jaxretail.core.sharding import customer_mesh
    from jaxretail.envs.coupon.env import CouponEnv
    from jaxretail.envs.coupon.sharded import sharded_step, state_specs

    cfg, params = scenario_params(args.customers, args.category_sizes)
    env = CouponEnv(params)
    mesh = customer_mesh()  # every device of every process
    # each process computes the (cheap) reset and keeps only its devices' slices of the global arrays
    _, state = jax.jit(env.reset)(jax.random.key(0), params)
    local = jax.tree.map(np.asarray, state)
    specs = state_specs(state)
    state = jax.tree.map(
        lambda x, s: jax.make_array_from_callback(x.shape, NamedSharding(mesh, s), lambda idx, x=x: x[idx]),
        local,
        specs,
    )
    actions = (np.arange(args.customers) * 7) % len(cfg.coupon_levels)
    action = jax.make_array_from_callback(
        actions.shape, NamedSharding(mesh, P("customers")), lambda idx: actions[idx].astype(np.int32)
    )
    step = sharded_step(params, mesh)
    total = jax.jit(jnp.sum, out_shardings=NamedSharding(mesh, P()))
    revenue = 0.0
    for _ in range(args.weeks):
        _, state, reward, _ = step(state, action)
        revenue += float(total(reward))
    if args.process_id == 0:
        print(
            f"{jax.process_count()} processes, {len(jax.devices())} devices: "
            f"{args.customers} customers x {args.weeks} weeks, revenue {revenue:.4f}",
            flush=True,
        )
    jax.distributed.shutdown()


def scenario_params(customers: int, sizes: tuple[int, ...] | None):
    """``(config, params)`` of the example's scenario: the benchmark catalogue with the paper's prices,
    or ``sizes`` products per category with drawn prices."""
    import jax

    from jaxretail.envs.coupon import get_config, sample_scenario
    from jaxretail.envs.coupon.env import make_params

    if sizes is None:
        cfg = get_config("benchmark")
        return cfg, make_params(sample_scenario(jax.random.key(0), cfg, customers, base_prices="paper"), cfg)
    cfg = get_config("benchmark", category_sizes=sizes)
    return cfg, make_params(sample_scenario(jax.random.key(0), cfg, customers, base_prices="draw"), cfg)


def reference(customers: int, weeks: int, sizes: tuple[int, ...] | None = None) -> float:
    """The same weeks on one process and one device."""
    import jax
    import jax.numpy as jnp

    from jaxretail.envs.coupon.env import CouponEnv

    cfg, params = scenario_params(customers, sizes)
    env = CouponEnv(params)
    _, state = env.reset(jax.random.key(0), params)
    action = jnp.asarray((jnp.arange(customers) * 7) % len(cfg.coupon_levels), jnp.int32)
    step = jax.jit(env.step_env)
    revenue = 0.0
    for w in range(weeks):
        _, state, reward, *_ = step(jax.random.key(w), state, action, params)
        revenue += float(jnp.sum(reward))
    return revenue


def build_parser() -> argparse.ArgumentParser:
    from jaxretail.core.validation import catalogue_sizes, cli_parser, int_at_least

    ap = cli_parser(__doc__.split("\n\n")[0])
    ap.add_argument("--coordinator", default="localhost:12355", help="host:port of process 0")
    ap.add_argument("--num-processes", type=int_at_least(1), default=1)
    ap.add_argument("--process-id", type=int_at_least(0), default=0, help="0 .. --num-processes - 1")
    ap.add_argument("--customers", type=int_at_least(1), default=1024)
    ap.add_argument("--weeks", type=int_at_least(1), default=3)
    ap.add_argument(
        "--category-sizes",
        type=catalogue_sizes,
        default=None,
        help="products per category instead of the benchmark's 2,514, e.g. 7,3,12,5 (drawn prices)",
    )
    ap.add_argument("--cpu", action="store_true", help="use CPU devices with gloo collectives")
    ap.add_argument(
        "--local", type=int_at_least(0), default=0, help="spawn this many CPU processes here (0: none)"
    )
    return ap


def main(argv=None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    host, _, port = args.coordinator.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        ap.error(f"--coordinator must be host:port, port 1..65535, got --coordinator={args.coordinator}")
    if args.process_id >= args.num_processes:
        ap.error(
            f"--process-id must be < --num-processes={args.num_processes}, got --process-id={args.process_id}"
        )
    if args.local:
        common = ["--coordinator", args.coordinator, "--num-processes", str(args.local), "--cpu",
                  "--customers", str(args.customers), "--weeks", str(args.weeks)]  # fmt: skip
        if args.category_sizes is not None:
            common += ["--category-sizes", ",".join(map(str, args.category_sizes))]
        env = {**os.environ, "JAX_PLATFORMS": "cpu"}
        procs = [
            subprocess.Popen([sys.executable, __file__, *common, "--process-id", str(i)], env=env)
            for i in range(args.local)
        ]
        codes = [p.wait() for p in procs]
        if any(codes):
            print(f"error: process exit codes {codes}", file=sys.stderr)
            return 1
        revenue = reference(args.customers, args.weeks, args.category_sizes)
        print(f"single process, one device: revenue {revenue:.4f}")
        return 0
    run_process(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
