"""The dynamic pricing main job end to end at a tiny size: its studies write their rows, the report and
its plots, every learned value is finite and a positive share of the analytic optimum, and the same
command again resumes without recomputing a finished study."""

import json

import numpy as np
import pandas as pd

from jaxretail.jobs import pricing

# every study but reward_gamma, whose DQN runs differ from num_prices' only in reward and gamma (a
# dozen more compilations; the bad-input table checks its flags)
STUDIES = ["num_prices", "demonstrations", "markdown", "offline", "did"]


def test_main_job_writes_its_studies_and_resumes(tmp_path, monkeypatch):
    out = tmp_path / "pricing"
    sizes = ["--updates", "40", "--train-skus", "8", "--eval-skus", "8", "--days", "4", "--seeds", "1"]
    argv = ["--out", str(out), *sizes, "--num-prices", "3", "5", "--demos", "0", "16", "--studies", *STUDIES]
    pricing.main(argv)
    df = pd.read_csv(out / "results.csv")
    assert set(df.study) == set(STUDIES)
    learned = df[df.study.isin(["num_prices", "demonstrations"])]
    assert np.isfinite(learned.value).all() and (learned.vs_optimal > 0).all()
    assert sorted(df[df.study == "num_prices"].K) == [3, 5]
    assert set(df[df.study == "demonstrations"].demos) == {0, 16}
    report = (out / "report.md").read_text()
    assert all(f"## {s}" in report for s in set(df.study))
    for png in ("k_and_demos.png", "markdown.png", "did.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "results.json").read_text())
    # the same command again resumes: every study is finished, none is recomputed, the rows stay
    csv = (out / "results.csv").read_text()
    monkeypatch.setattr(pricing, "STUDIES", {s: _must_not_run for s in STUDIES})
    pricing.main(argv)
    assert (out / "results.csv").read_text() == csv


def _must_not_run(*args):
    raise AssertionError("a finished study ran again")
