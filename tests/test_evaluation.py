"""Evaluation helpers, atomic writes and the assortment main job."""

import csv
import json

import numpy as np
import pytest

from jaxretail.evaluation import mean_se, parse_seed_range
from jaxretail.jobs.assortment import main
from jaxretail.utils import atomic_path, atomic_write_text


def test_parse_seed_range():
    assert parse_seed_range("1-100") == list(range(1, 101))
    assert parse_seed_range("3,7-9") == [3, 7, 8, 9]
    for bad in ("", "5-2", "a-b", "1-2-3", "-4"):
        with pytest.raises(ValueError, match="seed range"):
            parse_seed_range(bad)


def test_mean_se_matches_formula():
    x = np.array([1.0, 2.0, 4.0, 7.0])
    m = mean_se(x)
    assert m.mean == pytest.approx(3.5)
    assert m.se == pytest.approx(np.sqrt(((x - 3.5) ** 2).sum() / 3) / 2)
    assert np.isnan(mean_se([2.0]).se)


def test_atomic_write_never_leaves_partial_file(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half-written")
        raise RuntimeError("crash during write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_main_job_writes_table_and_plot(tmp_path, capsys):
    out = tmp_path / "res"
    args = ["--out", str(out), "--train-seeds", "1-6", "--test-seeds", "2001-2004", "--horizon", "10"]
    main(args + ["--ppo-updates", "3", "--ppo-envs", "8"])
    rows = list(csv.DictReader((out / "results.csv").read_text().splitlines()))
    assert {(r["split"], r["policy"]) for r in rows} == {
        (s, p) for s in ("train", "test") for p in ("expert", "greedy", "random", "ppo")
    }
    assert (out / "ppo_training.png").read_bytes()[:4] == b"\x89PNG"
    assert len(list((out / "ppo_checkpoints").glob("*/3"))) == 1  # the finished run's last checkpoint
    assert [int(r["episodes"]) for r in rows if r["policy"] == "expert"] == [6, 4]
    data = json.loads((out / "results.json").read_text())
    assert data["meta"]["config"]["horizon"] == 10 and len(data["rows"]) == 8
    assert (out / "cumulative_revenue.png").read_bytes()[:4] == b"\x89PNG"
    assert "expert" in (out / "results.md").read_text()
    assert "revenue" in capsys.readouterr().out
