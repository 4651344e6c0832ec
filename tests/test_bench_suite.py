"""scripts/bench.py: the small suite runs end to end and records every case; an absent device is a
clear error with a non-zero exit status, never a fallback."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = str(ROOT / "scripts" / "bench.py")
# the end-to-end run checks that every case runs and is recorded, not its figures: compile without
# LLVM's expensive passes (about a third less compile time; compilation is most of a tiny run)
QUICK_COMPILE = {
    **os.environ,
    "XLA_FLAGS": " ".join(
        (os.environ.get("XLA_FLAGS", ""), "--xla_backend_optimization_level=0",
         "--xla_llvm_disable_expensive_passes=true")
    ).strip(),
}  # fmt: skip


# the cases in three runs that xdist spreads over the cores; together they cover every case
CASE_GROUPS = {
    "assortment_and_bandit": (
        "assortment_env", "assortment_expert", "bandit_update", "ppo_assortment", "dqn_assortment",
    ),
    "coupon": ("coupon_env", "ppo_coupon", "dqn_coupon"),
    "pricing": ("pricing_env", "dqfd_pricing", "ddpg_pricing"),
}  # fmt: skip


def test_case_groups_cover_every_case():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from suite import CASES

    grouped = [c for group in CASE_GROUPS.values() for c in group]
    assert sorted(grouped) == sorted(CASES) and len(set(grouped)) == len(grouped)


@pytest.mark.parametrize("group", list(CASE_GROUPS))
def test_tiny_suite_runs_end_to_end(group, tmp_path):
    """Every case at the "tiny" scale (the figures of the small and paper scales live in benchmarks/)."""
    cases = CASE_GROUPS[group]
    res = subprocess.run(
        [sys.executable, BENCH, "--device", "cpu", "--scale", "tiny", "--repeats", "1",
         "--cases", ",".join(cases), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env=QUICK_COMPILE,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    record = json.loads((tmp_path / "bench-cpu-tiny.json").read_text())
    meta, rows = record["meta"], record["rows"]
    assert meta["platform"] == "cpu" and meta["device_count"] >= 1 and meta["jax"] == jax.__version__
    assert meta["memory_bandwidth_bytes_per_s"] > 0 and meta["peak_memory_bytes"] > 0
    assert {r["case"] for r in rows} == set(cases)
    for r in rows:
        assert r["seconds"] > 0 and r["compile_s"] > 0 and r["items_per_s"] > 0
        assert r["ratio_vs_numpy"] == pytest.approx(r["items_per_s"] / r["numpy_items_per_s"])
    for case in {"assortment_env", "coupon_env"} & set(cases):  # bytes, flops and bandwidth of the env steps
        row = next(r for r in rows if r["case"] == case)
        assert row["bytes_per_item"] > 0 and row["flops_per_item"] > 0 and row["bandwidth_fraction"] > 0
        assert f"| {case} |" in (tmp_path / "bench-cpu-tiny.md").read_text()
    assert (tmp_path / "bench-cpu-tiny.png").read_bytes()[:4] == b"\x89PNG"


def _bench_main(argv, capsys):
    """``scripts/bench.py``'s ``main`` in this process (its exit status and stderr): no interpreter
    start and JAX import per case."""
    import importlib

    for folder in ("scripts", "benchmarks"):
        if str(ROOT / folder) not in sys.path:
            sys.path.insert(0, str(ROOT / folder))
    try:
        code = importlib.import_module("bench").main(argv)
    except SystemExit as exit_:  # a bad flag is a parser error: one line, status 2
        code = exit_.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("device", ["gpu", "tpu"])
def test_absent_device_is_a_clear_error(device, tmp_path, capsys):
    if any(
        d.platform == device or (device == "gpu" and d.platform in ("cuda", "rocm")) for d in jax.devices()
    ):
        pytest.skip(f"a {device} is present")
    code, err = _bench_main(["--device", device, "--scale", "small", "--out", str(tmp_path)], capsys)
    assert code == 2
    assert f"--device {device} requested" in err and "available: cpu" in err
    assert not list(tmp_path.iterdir())  # nothing was measured or written


def test_unknown_case_is_rejected(tmp_path, capsys):
    code, err = _bench_main(["--device", "cpu", "--cases", "warp_drive", "--out", str(tmp_path)], capsys)
    assert code == 2 and "warp_drive" in err
