"""Coupon metrics on hand-built records, and the coupon sweep command end to end at a tiny size."""

import csv

import jax.numpy as jnp
import numpy as np
import pytest

from jaxretail.envs.coupon.metrics import METRICS, aggregate, customer_metrics, summarize
from jaxretail.jobs.coupon_sweep import main


def test_customer_metrics_on_hand_built_records():
    # 4 weeks x 3 customers
    revenue = jnp.array([[5.0, 0, 0], [0, 2.0, 0], [0, 0, 0], [1.0, 0, 0]])
    demand = jnp.array([[2.0, 0, 0], [0, 1.0, 0], [0, 0, 0], [1.0, 0, 0]])
    mask = jnp.array([[0b101, 0, 0], [0, 0b10, 0], [0, 0, 0], [0b1000, 0, 0]], jnp.uint32)
    coupon = jnp.array([[0.1, 0.0, 0.5]] * 4)
    redeemed = jnp.array([[True, False, False], [False] * 3, [False] * 3, [True, False, False]])
    m = customer_metrics(
        {"revenue": revenue, "demand": demand, "category_mask": mask, "coupon": coupon, "redeemed": redeemed}
    )
    np.testing.assert_allclose(m["revenue"], [6, 2, 0])
    np.testing.assert_allclose(m["retention"], [1, 1, 0])  # customer 1 bought in week 2 (within last 3)
    np.testing.assert_allclose(m["category_penetration"], [3, 1, 0])  # bits {0, 2, 3}, {1}, {}
    np.testing.assert_allclose(m["offered_discount"], [0.1, 0.0, 0.5])
    np.testing.assert_allclose(m["redeemed_discount"], [0.05, 0.0, 0.0])
    agg = aggregate({k: np.asarray(v) for k, v in m.items()})
    assert agg["revenue"] == 8 and agg["demand"] == 4 and agg["retention"] == pytest.approx(2 / 3)
    assert agg["category_penetration_as_coded"] == pytest.approx(4 / 3)
    seg = aggregate({k: np.asarray(v) for k, v in m.items()}, np.array([True, False, True]))
    assert seg["revenue"] == 6 and seg["retention"] == 0.5


def test_summarize_normalises_by_random_per_simulation():
    sims = [{m: 2.0 for m in METRICS}, {m: 3.0 for m in METRICS}]
    rnd = [{k: 1.0 for k in sims[0]}, {k: 2.0 for k in sims[0]}]
    out = summarize(sims, rnd)
    assert out["revenue"] == 2.5 and out["revenue_vs_random"] == pytest.approx(1.75)
    assert out["revenue_vs_random_se"] == pytest.approx(np.std([2.0, 1.5], ddof=1) / np.sqrt(2))


def test_coupon_sweep_command(tmp_path):
    out = tmp_path / "sweep"
    main(
        [
            "--customers",
            "64",
            "--simulations",
            "2",
            "--train-weeks",
            "3",
            "--eval-weeks",
            "3",
            "--block-size",
            "64",
            "--out",
            str(out),
        ]
    )
    rows = list(csv.DictReader((out / "sweep.csv").read_text().splitlines()))
    assert len(rows) == 3 * 12  # segments x (random + 11 levels)
    random_all = next(r for r in rows if r["segment"] == "all" and r["policy"] == "random")
    assert float(random_all["revenue_vs_random"]) == pytest.approx(1.0)
    static = [r for r in rows if r["segment"] == "all" and r["policy"] != "random"]
    offered = [float(r["offered_discount"]) for r in static]
    np.testing.assert_allclose(offered, 0.05 * np.arange(11), atol=1e-6)
    assert (out / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(SystemExit) as exit_info:  # one line on stderr, exit status 2
        main(["--customers", "0", "--out", str(out)])
    assert exit_info.value.code == 2
