"""Run the jaxretail benchmark suite on one device and record the figures.

    python scripts/bench.py --device gpu                 # paper scale on the first GPU
    python scripts/bench.py --device cpu --scale small   # a one-minute check
    python scripts/bench.py --cases coupon_env,assortment_env --repeats 5

Prints one table (items per second, ratio to the NumPy reference measured in the same run, compile
and steady-state time, XLA buffer memory, bytes and flops per item and the fraction of the measured
memory bandwidth) and writes ``<out>/bench-<platform>-<scale>.json`` and a bar chart next to it.
A requested device that JAX cannot see is an error (exit status 2); nothing falls back silently.
On CPU the process gets one host device per core (unless ``XLA_FLAGS`` already sets a count), and the
coupon case splits its customers over them (``jax.shard_map``), so that it uses every core.
Case list and units: ``benchmarks/suite.py``; figures per machine: ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))


def build_parser() -> argparse.ArgumentParser:
    from common import DEVICE_CHOICES
    from suite import CASES, SCALES

    from jaxretail.core.validation import cli_parser, int_at_least

    def case_list(text: str) -> list[str]:
        cases = [c.strip() for c in text.split(",") if c.strip()]
        unknown = [c for c in cases if c not in CASES]
        if not cases or unknown:
            raise argparse.ArgumentTypeError(
                f"must be a comma-separated subset of {', '.join(CASES)}, got {text!r}"
            )
        return cases

    ap = cli_parser(__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    ap.add_argument("--scale", default="paper", choices=tuple(SCALES))
    ap.add_argument(
        "--cases",
        type=case_list,
        default=",".join(CASES),
        help=f"comma-separated subset of {', '.join(CASES)}",
    )
    ap.add_argument(
        "--repeats", type=int_at_least(1), default=None, help="timed repetitions per case (None: per scale)"
    )
    ap.add_argument("--out", default="results/benchmarks")
    return ap


def main(argv=None) -> int:
    from jaxretail.utils.devices import use_every_core

    use_every_core()
    parser = build_parser()
    args = parser.parse_args(argv)
    import jax
    from common import DeviceUnavailableError, memory_bandwidth, peak_memory_bytes, select_device
    from suite import SCALES, run_case

    import jaxretail
    from jaxretail.evaluation.tables import git_commit
    from jaxretail.utils.atomic import atomic_write_text

    cases = args.cases
    try:
        device = select_device(args.device)
    except DeviceUnavailableError as err:
        parser.error(str(err))
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "device": str(device),
        "device_kind": device.device_kind,
        "platform": device.platform,
        "device_count": len(jax.devices(device.platform)),
        "jaxretail": jaxretail.__version__,
        "git_commit": git_commit(),
        "jax": jax.__version__,
        "python": platform.python_version(),
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "scale": args.scale,
        "sizes": SCALES[args.scale],
    }
    print(f"jaxretail benchmark suite: {meta['device_kind']} ({device.platform}, {meta['device_count']} "
          f"device(s)), jax {jax.__version__}, scale {args.scale}", flush=True)  # fmt: skip
    rows = []
    with jax.default_device(device):
        meta["memory_bandwidth_bytes_per_s"] = memory_bandwidth(device)
        print(
            f"  measured memory bandwidth {meta['memory_bandwidth_bytes_per_s'] / 1e9:.1f} GB/s", flush=True
        )
        for name in cases:
            start = time.perf_counter()
            row = run_case(name, args.scale, args.repeats, device.platform)
            if "bytes_per_item" in row:
                achieved = row["bytes_per_item"] * row["items_per_s"]
                row["bandwidth_fraction"] = achieved / meta["memory_bandwidth_bytes_per_s"]
            rows.append(row)
            print(f"  {name}: {row['items_per_s']:.3e} {row['unit']}/s, {ratio_label(row)} "
                  f"({time.perf_counter() - start:.1f} s)", flush=True)  # fmt: skip
    meta["peak_memory_bytes"] = peak_memory_bytes(device)
    table = format_table(rows)
    print("\n" + table)
    out = Path(args.out)
    stem = f"bench-{device.platform}-{args.scale}"
    atomic_write_text(out / f"{stem}.json", json.dumps({"meta": meta, "rows": rows}, indent=2))
    atomic_write_text(out / f"{stem}.md", table + "\n")
    plot(rows, meta, out / f"{stem}.png")
    print(f"\nwrote {out}/{stem}.json, {stem}.md, {stem}.png")
    return 0


def ratio_label(row: dict) -> str:
    """``x2.50 NumPy`` against a NumPy implementation of the same work; for training cases, whose
    reference is the bare NumPy simulation of the same steps, the speed as a fraction of it."""
    if "simulation" in row.get("reference", ""):
        return f"{row['ratio_vs_numpy']:.1%} of NumPy simulation speed"
    return f"x{row['ratio_vs_numpy']:.2f} NumPy"


def format_table(rows: list[dict]) -> str:
    lines = [
        "| case | unit | items/s | us/item | vs NumPy reference | compile s | steady s | XLA buffers MiB "
        "| bytes/item | flops/item | bandwidth |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        opt = lambda k, f, r=r: f.format(r[k]) if k in r else "-"  # noqa: E731
        lines.append(
            f"| {r['case']} | {r['unit']} | {r['items_per_s']:.3e} | {r['us_per_item']:.3g} | "
            f"{ratio_label(r)} | {r['compile_s']:.1f} | {r['seconds']:.3g} | "
            f"{r['buffer_bytes'] / 2**20:.0f} | {opt('bytes_per_item', '{:.3g}')} | "
            f"{opt('flops_per_item', '{:.3g}')} | {opt('bandwidth_fraction', '{:.1%}')} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict], meta: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from jaxretail.evaluation.plots import save_figure

    fig, ax = plt.subplots(figsize=(8, 3.5))
    names = [r["case"] for r in rows]
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["items_per_s"] for r in rows], 0.4, label="jaxretail")
    ax.bar(x + 0.2, [r["numpy_items_per_s"] for r in rows], 0.4, label="NumPy reference")
    ax.set_yscale("log")
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylabel("items per second")
    ax.set_title(f"{meta['device_kind']} ({meta['platform']}), scale {meta['scale']}, {meta['date'][:10]}")
    ax.legend()
    ax.grid(alpha=0.3, axis="y")
    save_figure(fig, path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
