"""Train-then-resume protocol: training matches direct updates, t-tests, evaluation, main job."""

import csv
import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxretail.agents.bandits import linear
from jaxretail.core.offline import OfflineAgent
from jaxretail.data import collection as col
from jaxretail.envs.coupon.protocol import run_protocol
from jaxretail.jobs import coupon_protocol as proto
from jaxretail.jobs.coupon_benchmark import main

# a tiny catalogue (27 products) keeps compiles short; the published one is measured in benchmarks/
TINY = {"category_sizes": (7, 3, 12, 5), "base_prices": "draw"}
# the main job's test, the dataset fixture and tests/test_offline_data.py share these sizes (64 customers
# per simulation, 3 weeks, 3 evaluation weeks, 16 RL customers): their collection, evaluators and
# trainers are the same XLA programs, compiled once for the session (the persistent compilation cache)
WEEKS, EVAL_WEEKS, RL_CUSTOMERS = 3, 3, 16


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("cb") / "dataset"
    cfg = col.CollectionConfig(
        num_simulations=2, customers_per_simulation=64, num_weeks=WEEKS, block_size=64, **TINY
    )
    col.collect(root, cfg, progress=False)
    return root, cfg


def test_training_arrays_and_linear_training_match_direct_update(dataset):
    root, _ = dataset
    data = proto.load_training_arrays(root, None, 0)
    assert data["context"].shape == (2 * 64 * WEEKS, 9) and len(np.unique(data["uid"])) == 128
    sub = proto.load_training_arrays(root, 10, 0)
    assert len(np.unique(sub["uid"])) == 10
    with pytest.raises(ValueError, match="train_customers"):
        proto.load_training_arrays(root, 1000, 0)
    state = proto.train_linear(
        data, 11, forgetting=0.5, epochs=2, batch_customers=10_000, rng=np.random.default_rng(0)
    )
    once = linear.update(
        linear.init(11, 10),
        proto.with_bias(jnp.asarray(data["context"])),
        jnp.asarray(data["action"]),
        jnp.asarray(data["reward"]),
    )
    # two epochs over every customer with forgetting 0.5: 0.5 * S + S
    np.testing.assert_allclose(state.precision, 1.5 * once.precision, rtol=1e-4, atol=1e-3)


def test_offline_rl_agents_train_on_the_logged_trajectories(dataset):
    root, cfg = dataset
    data = proto.load_training_arrays(root, None, 0)
    # the next context of a week is the context of the following week of the same customer
    per_cust = lambda x: x.reshape((data["num_customers"], data["weeks"]) + x.shape[1:])
    np.testing.assert_allclose(
        per_cust(data["next_context"])[:, :-1], per_cust(data["context"])[:, 1:], rtol=1e-6
    )
    np.testing.assert_allclose(data["action_prob"], 1 / 11, rtol=1e-6)
    pcfg = proto.ProtocolConfig(ppo_updates=2, dqn_updates=2, rl_customers=RL_CUSTOMERS)
    agent = proto.train_ppo(data, 11, pcfg, jax.random.key(0))
    q_params = proto.train_dqn(data, 11, pcfg, jax.random.key(0))
    params, state = col.load_state(root, cfg, 0)
    obs = proto.context(state, params)
    # every run at once (split over the devices) trains what the runs one by one train; chunked
    # gradients (3 chunks of 20 rows for the 48 rows of an update) give the whole-batch gradient
    keys = [jax.random.key(0), jax.random.key(5)]
    together = proto.train_ppo_runs(data, 11, dataclasses.replace(pcfg, ppo_grad_chunk=20), keys)
    assert len(together) == 2
    for k, got in zip(keys, together, strict=True):  # pcfg's chunk (2,048) holds all 48 rows at once
        chex.assert_trees_all_close(got, proto.train_ppo(data, 11, pcfg, k), rtol=1e-4, atol=1e-5)
    for got, k in zip(proto.train_dqn_runs(data, 11, pcfg, keys), keys, strict=True):
        chex.assert_trees_all_close(got, proto.train_dqn(data, 11, pcfg, k), rtol=1e-4, atol=1e-5)
    assert proto.agent("ppo", pcfg, 11).fit_runs and proto.agent("dqn", pcfg, 11).fit_runs
    # the Neural Boltzmann runs vmapped: each run draws its own customers in the same order
    ncfg = proto.ProtocolConfig(nb_epochs=3, nb_customers=40, nb_batch_size=32)
    rngs = lambda: [np.random.default_rng([0, r]) for r in range(2)]
    for got, k, rng in zip(proto.train_neural_runs(data, 11, ncfg, keys, rngs()), keys, rngs(), strict=True):
        want = proto.train_neural(data, 11, ncfg, k, rng).params
        chex.assert_trees_all_close(got, want, rtol=1e-4, atol=1e-6)
    for kind, trained in (("ppo", agent), ("dqn", q_params)):
        policy = proto.make_agent_policy(kind, pcfg, 11)
        action = policy(jax.random.key(1), obs, state, params, trained)
        assert action.shape == (64,) and action.dtype == jnp.int32
        assert int(action.min()) >= 0 and int(action.max()) <= 10


def test_an_injected_agent_is_fitted_per_run_and_acts_in_the_protocol(dataset):
    root, cfg = dataset
    params, state = col.load_state(root, cfg, 0)
    starts = [(params, state, proto.context(state, params))]
    fitted = []

    def fit(data, key, rng):  # records what it was given; "learns" the 10% coupon (level 2)
        fitted.append((data, int(rng.integers(1 << 30))))
        return jnp.asarray(2, jnp.int32)

    agent = OfflineAgent(fit=fit, act=lambda a, k, o: jnp.full(o.shape[0], a, jnp.int32))
    out = run_protocol(starts, "logs", {"always_10": agent}, eval_weeks=1, training_runs=2, seed=0)
    assert [d for d, _ in fitted] == ["logs", "logs"] and fitted[0][1] != fitted[1][1]  # fresh rng per run
    assert out["allocation"]["always_10"] == pytest.approx({"price_sensitive": 0.1, "price_insensitive": 0.1})
    rows = {(r["segment"], r["policy"]): r for r in out["rows"]}
    assert rows[("all", "always_10")]["runs"] == 2 and rows[("all", "coupon_10%")]["runs"] == 1
    assert rows[("all", "always_10")]["offered_discount"] == pytest.approx(0.1)
    # an agent that trains every run at once is called once, with each run's key and rng
    calls = []

    def fit_runs(data, keys, rngs):
        calls.append((data, [int(r.integers(1 << 30)) for r in rngs]))
        return [jnp.asarray(2, jnp.int32)] * len(keys)

    together = agent._replace(fit=None, fit_runs=fit_runs)
    again = run_protocol(starts, "logs", {"always_10": together}, eval_weeks=1, training_runs=2, seed=0)
    assert calls == [("logs", [f[1] for f in fitted])]
    assert again["allocation"] == out["allocation"]
    for wrong in ([jnp.asarray(2, jnp.int32)], None):  # one result per run, or a clear error
        short = agent._replace(fit=None, fit_runs=lambda data, keys, rngs, w=wrong: w)
        with pytest.raises(ValueError, match="'always_10': fit_runs must return one trained agent per"):
            run_protocol(starts, "logs", {"always_10": short}, eval_weeks=1, training_runs=2, seed=0)


def test_paired_t_test_matches_scipy():
    a, b = np.array([3.0, 4.0, 5.5, 6.0]), np.array([2.0, 4.1, 4.0, 5.0])
    assert proto.paired_t_greater(a, b) == pytest.approx(stats.ttest_rel(a, b, alternative="greater").pvalue)
    assert np.isnan(proto.paired_t_greater([1.0], [0.0]))


def test_static_evaluator_offers_its_level(dataset):
    root, cfg = dataset
    params, state = col.load_state(root, cfg, 0)
    run = proto.evaluator("baseline", proto.ProtocolConfig(eval_weeks=EVAL_WEEKS), 11)
    obs = proto.context(state, params)
    m = run(params, state, obs, jax.random.key(0), jnp.asarray(4))
    np.testing.assert_allclose(m["offered_discount"], 0.2, rtol=1e-6)
    m = run(params, state, obs, jax.random.key(0), jnp.asarray(-1))
    assert 0.15 < float(np.mean(m["offered_discount"])) < 0.35


def test_bad_protocol_config():
    with pytest.raises(ValueError, match="training_runs"):
        proto.ProtocolConfig(training_runs=0)
    with pytest.raises(ValueError, match="lints_forgetting"):
        proto.ProtocolConfig(lints_forgetting=1.5)


def test_main_job_end_to_end(tmp_path):
    out = tmp_path / "cb"
    args = [
        "--customers",
        "128",
        "--customers-per-simulation",
        "64",
        "--train-weeks",
        str(WEEKS),
        "--eval-weeks",
        str(EVAL_WEEKS),
        "--eval-simulations",
        "2",
        "--training-runs",
        "1",  # one training run: the t-tests pair the evaluation simulations
        "--nb-epochs",
        "1",
        "--ppo-updates",
        "2",
        "--dqn-updates",
        "2",
        "--rl-customers",
        str(RL_CUSTOMERS),
        "--category-sizes",
        "7,3,12,5",
        "--out",
        str(out),
    ]
    main(args)
    rows = list(csv.DictReader((out / "results.csv").read_text().splitlines()))
    policies = {r["policy"] for r in rows if r["segment"] == "all"}
    assert {
        "random",
        "coupon_0%",
        "coupon_50%",
        "linucb",
        "lints",
        "neural_boltzmann",
        "ppo",
        "dqn",
    } <= policies
    assert {r["segment"] for r in rows} == {"all", "price_sensitive", "price_insensitive"}
    alloc = list(csv.DictReader((out / "allocation.csv").read_text().splitlines()))
    assert float(next(a for a in alloc if a["policy"] == "coupon_50%")["price_sensitive"]) == pytest.approx(
        0.5
    )
    assert (out / "results.png").read_bytes()[:4] == b"\x89PNG"
    # collecting again with the main job's configuration reuses the dataset: no part is rewritten
    parts = sorted((out / "dataset").glob("part-*.parquet"))
    before = [p.stat().st_mtime_ns for p in parts]
    same = col.CollectionConfig(  # the main job's block: 64 visitors for 64-customer simulations
        num_simulations=2, customers_per_simulation=64, num_weeks=WEEKS, seed=0, block_size=64, **TINY
    )
    col.collect(out / "dataset", same, progress=False)
    assert [p.stat().st_mtime_ns for p in parts] == before
    with pytest.raises(SystemExit) as exit_info:  # a bad flag is one line on stderr and exit status 2
        main(["--customers", "100", "--customers-per-simulation", "64", "--out", str(out)])
    assert exit_info.value.code == 2


def test_legacy_evaluation_quirks(dataset):
    root, cfg = dataset
    params, state = col.load_state(root, cfg, 1)
    fresh = proto.fresh_wrapper_state(state, params)
    assert bool(fresh.first_step) and np.all(np.asarray(fresh.visit_probability) == 1.0)
    assert float(fresh.summaries.weeks) == 0.0 and np.all(np.asarray(fresh.summaries.lines) == 0)
    assert int(fresh.t) == int(state.t)  # the simulation clock is kept
    ctx = proto.last_logged_context(root, 1, cfg.num_weeks - 1, params.num_customers)
    table = proto.ds.load_dataset(root).to_pydict()
    rows = [
        i
        for i, (s, w) in enumerate(zip(table["simulation"], table["week"], strict=True))
        if s == 1 and w == cfg.num_weeks - 1
    ]
    f = proto.CONTEXT_FEATURES[5]
    np.testing.assert_array_equal(
        ctx[[table["customer"][i] for i in rows], 5], [table[f"ctx_{f}"][i] for i in rows]
    )
    # everyone visits in the first evaluation week under the quirk
    out = proto.evaluator("baseline", proto.ProtocolConfig(eval_weeks=EVAL_WEEKS), 11)(
        params, fresh, jnp.asarray(ctx), jax.random.key(0), jnp.asarray(0)
    )
    assert out["revenue"].shape == (params.num_customers,)
