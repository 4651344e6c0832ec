"""Train-then-resume protocol of the coupon benchmark (Algorithm 2 of Xia et al., arXiv 2405.10469).

1. Train each agent on the logged dataset (``--train-customers`` customers' 50-week trajectories):
   LinUCB / LinTS fold ``epochs`` batches of customers into their statistics with the forgetting factor;
   the Neural Boltzmann bandit runs ``nb_epochs`` epochs of minibatch SGD, each on a fresh draw of
   ``nb_customers`` customers; PPO (offline, importance ratios against the logged uniform action
   probabilities) and DQN run ``ppo_updates`` / ``dqn_updates`` updates on draws of ``rl_customers``
   customers' trajectories (transitions for DQN), with the paper's tuned hyperparameters.
2. Evaluate by resuming the saved simulations (the first ``eval_simulations``) for ``eval_weeks`` weeks;
   LinUCB, PPO and DQN act greedily, LinTS and the Boltzmann bandit stay stochastic.
3. Repeat over ``training_runs`` independent runs; static coupons and random are evaluated once per
   simulation. Every metric is divided by the random policy's on the same simulation.

The default evaluation is the clean one: the resumed state keeps its visit probability, last visit and
running summaries, and the first decision sees the context after the last collected week.
``legacy_evaluation=True`` reproduces the original's fresh-wrapper quirks instead (coupon.md §3.5):
(i) visit probability and last visit reset to 1, recursion skipped in the first evaluation week;
(ii) running summaries restart from zero; (iii) the first evaluation week's shelf prices, marketing
feature and observed feature come from a fresh stream (shelf chain restarted); (iv) the first decision
is made on the logged pre-action context of the last training week.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from jaxretail.agents import dqn, ppo
from jaxretail.agents.bandits import linear, neural
from jaxretail.agents.training import make_train
from jaxretail.core import spaces
from jaxretail.core.rollout import scan_steps
from jaxretail.core.validation import check_bool, check_int, check_number, check_probability, check_sizes
from jaxretail.data import collection as col
from jaxretail.data import dataset as ds
from jaxretail.envs.coupon.env import CONTEXT_FEATURES, CouponEnv, context
from jaxretail.envs.coupon.policies import level_policy
from jaxretail.evaluation.coupon_metrics import METRICS, aggregate, customer_metrics, mean_price_coefficient
from jaxretail.evaluation.coupon_metrics import record_coupon_week as _record
from jaxretail.evaluation.stats import mean_se

AGENTS = ("linucb", "lints", "neural_boltzmann", "ppo", "dqn")


@dataclass(frozen=True)
class ProtocolConfig:
    """Training and evaluation settings; hyperparameters are the paper's tuned optima (App. D)."""

    train_customers: int | None = None  # None: every customer of the dataset
    eval_simulations: int = 5
    eval_weeks: int = 20
    training_runs: int = 10
    linear_epochs: int = 2
    linear_batch_customers: int = 50_000
    linucb_alpha: float = 0.8483
    linucb_forgetting: float = 0.1088
    lints_alpha: float = 0.7387
    lints_forgetting: float = 0.8119
    nb_learning_rate: float = 0.025
    nb_temperature: float = 0.1665
    nb_hidden: tuple[int, ...] = (8, 2)
    nb_epochs: int = 100
    nb_customers: int = 2000
    nb_batch_size: int = 1024
    rl_customers: int = 2000  # customers' trajectories per PPO / DQN update (the paper's 20 x 100)
    ppo_updates: int = 100
    ppo_learning_rate: float = 0.0064
    ppo_clip: float = 0.7849
    ppo_gamma: float = 0.8199
    ppo_entropy: float = 0.1013
    ppo_epochs: int = 12
    ppo_hidden: tuple[int, ...] = (32, 8)
    dqn_updates: int = 200
    dqn_learning_rate: float = 0.00464
    dqn_gamma: float = 0.8792
    dqn_hidden: tuple[int, ...] = (16,)
    dqn_lstm: int = 4
    rl_discount_as_coded: bool = False  # the original trains PPO / DQN on immediate rewards (gamma 0)
    legacy_evaluation: bool = False  # reproduce the original's fresh-wrapper evaluation quirks (i)-(iv)
    seed: int = 0

    def __post_init__(self):
        for name in (
            "eval_simulations",
            "eval_weeks",
            "training_runs",
            "linear_epochs",
            "linear_batch_customers",
            "nb_epochs",
            "nb_customers",
            "nb_batch_size",
            "rl_customers",
            "ppo_updates",
            "ppo_epochs",
            "dqn_updates",
        ):
            check_int(name, getattr(self, name), 1, owner="ProtocolConfig")
        check_int("train_customers", self.train_customers, 1, owner="ProtocolConfig", allow_none=True)
        check_int("seed", self.seed, 0, owner="ProtocolConfig")
        for name in (
            "nb_learning_rate", "nb_temperature", "linucb_alpha", "lints_alpha", "ppo_learning_rate",
            "ppo_clip", "dqn_learning_rate",
        ):  # fmt: skip
            check_number(name, getattr(self, name), low=0.0, low_open=True, owner="ProtocolConfig")
        for name in ("linucb_forgetting", "lints_forgetting"):
            check_number(name, getattr(self, name), low=0.0, high=1.0, low_open=True, owner="ProtocolConfig")
        for name in ("ppo_gamma", "dqn_gamma"):
            check_probability(name, getattr(self, name), owner="ProtocolConfig")
        check_number("ppo_entropy", self.ppo_entropy, low=0.0, owner="ProtocolConfig")
        for name in ("nb_hidden", "ppo_hidden", "dqn_hidden"):
            check_sizes(name, getattr(self, name), owner="ProtocolConfig")
        check_int("dqn_lstm", self.dqn_lstm, 0, owner="ProtocolConfig")
        for name in ("rl_discount_as_coded", "legacy_evaluation"):
            check_bool(name, getattr(self, name), owner="ProtocolConfig")

    def ppo_config(self) -> ppo.PPOConfig:
        """The coupon benchmark's PPOAgent: actor and value nets (32, 8), whole-batch epochs, clipping
        plus the adaptive KL penalty (target 0.01, beta 1), GAE lambda 0.95, normalised observations
        and rewards."""
        return ppo.PPOConfig(
            num_updates=self.ppo_updates, update_epochs=self.ppo_epochs, num_minibatches=1,
            actor_hidden=tuple(self.ppo_hidden), critic_hidden=tuple(self.ppo_hidden), adaptive_kl=True,
            batch_streams=self.rl_customers,
            hyper=ppo.PPOHyper(
                learning_rate=self.ppo_learning_rate, clip_eps=self.ppo_clip,
                gamma=0.0 if self.rl_discount_as_coded else self.ppo_gamma, ent_coef=self.ppo_entropy,
                kl_target=0.01, kl_beta_init=1.0,
            ),
        )  # fmt: skip

    def dqn_config(self, rows_per_update: int) -> dqn.DQNConfig:
        """The coupon benchmark's DqnAgent: Dense(16, ReLU) -> LSTM(4) -> Q-values, Huber loss, target
        network refreshed after every gradient step, one step per batch of ``rl_customers`` customers."""
        return dqn.DQNConfig(
            num_updates=self.dqn_updates, batch_size=rows_per_update, hidden=tuple(self.dqn_hidden),
            recurrent_units=self.dqn_lstm, target_update_interval=1, double_dqn=False,
            hyper=dqn.DQNHyper(
                learning_rate=self.dqn_learning_rate,
                gamma=0.0 if self.rl_discount_as_coded else self.dqn_gamma,
            ),
        )  # fmt: skip


def load_training_arrays(root, train_customers: int | None, seed: int) -> dict[str, np.ndarray]:
    """Contexts ``[n, 9]``, actions, rewards and the (simulation, customer) id of every logged row."""
    names = (
        ["simulation", "customer", "action", "action_prob", "reward"]
        + [f"ctx_{f}" for f in CONTEXT_FEATURES]
        + [f"next_ctx_{f}" for f in CONTEXT_FEATURES]
    )
    t = ds.load_dataset(root, columns=names)
    sim, cust = t.column("simulation").to_numpy(), t.column("customer").to_numpy()
    uid = sim.astype(np.int64) * (int(cust.max()) + 1) + cust
    keep = np.ones(len(uid), bool)
    if train_customers is not None:
        ids = np.unique(uid)
        if train_customers > len(ids):
            raise ValueError(
                f"train_customers={train_customers} exceeds the {len(ids)} customers in the dataset"
            )
        chosen = np.random.default_rng(seed).choice(ids, train_customers, replace=False)
        keep = np.isin(uid, chosen)
    ctx = np.stack([t.column(f"ctx_{f}").to_numpy() for f in CONTEXT_FEATURES], 1)[keep]
    next_ctx = np.stack([t.column(f"next_ctx_{f}").to_numpy() for f in CONTEXT_FEATURES], 1)[keep]
    order = np.argsort(uid[keep], kind="stable")  # each customer's rows become one contiguous block
    data = {
        "uid": uid[keep][order],
        "context": ctx[order].astype(np.float32),
        "action": t.column("action").to_numpy()[keep][order],
        "reward": t.column("reward").to_numpy()[keep][order],
        "action_prob": t.column("action_prob").to_numpy()[keep][order],
        "next_context": next_ctx[order].astype(np.float32),
    }
    customers, counts = np.unique(data["uid"], return_counts=True)
    if not np.all(counts == counts[0]):
        raise ValueError("every logged customer must have the same number of weeks")
    data["weeks"], data["num_customers"] = int(counts[0]), len(customers)
    return data


def customer_rows(data, count: int, rng) -> np.ndarray:
    """Row indices of ``count`` customers drawn without replacement (all of them if fewer)."""
    n, weeks = data["num_customers"], data["weeks"]
    chosen = rng.choice(n, min(count, n), replace=False)
    return (chosen[:, None] * weeks + np.arange(weeks)[None, :]).ravel()


def with_bias(x):
    return jnp.concatenate([x, jnp.ones(x.shape[:-1] + (1,), x.dtype)], axis=-1)


def train_linear(
    data, num_arms: int, forgetting: float, epochs: int, batch_customers: int, rng
) -> linear.LinearBanditState:
    """``epochs`` updates, each on every row of ``batch_customers`` customers drawn without replacement."""
    state = linear.init(num_arms, data["context"].shape[1] + 1)
    update = jax.jit(linear.update)
    for _ in range(epochs):
        rows = customer_rows(data, batch_customers, rng)
        state = update(
            state,
            with_bias(jnp.asarray(data["context"][rows])),
            jnp.asarray(data["action"][rows]),
            jnp.asarray(data["reward"][rows]),
            forgetting,
        )
    return state


def train_neural(data, num_arms: int, cfg: ProtocolConfig, key, rng) -> neural.NeuralBanditState:
    state = neural.init(key, data["context"].shape[1], num_arms, cfg.nb_hidden, cfg.nb_learning_rate)
    step = jax.jit(neural.update, static_argnames=("epochs", "batch_size"))
    for epoch in range(cfg.nb_epochs):
        rows = customer_rows(data, cfg.nb_customers, rng)
        batch = min(cfg.nb_batch_size, len(rows))
        idx = rows[: (len(rows) // batch) * batch]
        state, _ = step(
            state,
            jax.random.fold_in(key, epoch),
            jnp.asarray(data["context"][idx]),
            jnp.asarray(data["action"][idx]),
            jnp.asarray(data["reward"][idx]),
            epochs=1,
            batch_size=batch,
        )
    return state


def _per_customer(data, name):
    """``[customers, weeks, ...]`` view of a row-wise training array (rows are customer-major)."""
    x = data[name]
    return x.reshape((data["num_customers"], data["weeks"]) + x.shape[1:])


def train_ppo(data, num_arms: int, cfg: ProtocolConfig, key) -> dict:
    """Offline PPO on every customer's logged trajectory; returns the greedy policy's inputs."""
    logged = ppo.LoggedTrajectories(
        obs=jnp.asarray(_per_customer(data, "context")),
        action=jnp.asarray(_per_customer(data, "action")),
        action_prob=jnp.asarray(_per_customer(data, "action_prob")),
        reward=jnp.asarray(_per_customer(data, "reward")),
        last_next_obs=jnp.asarray(_per_customer(data, "next_context")[:, -1]),
    )
    out = _ppo_train_fn(cfg, num_arms, logged.obs.shape[-1])(key, None, logged)
    return ppo.agent_of(out["state"])


@functools.lru_cache(maxsize=4)
def _ppo_train_fn(cfg: ProtocolConfig, num_arms: int, dim: int):
    """One compiled trainer for every training run of a protocol."""
    return jax.jit(make_train(ppo.make_offline_trainer(cfg.ppo_config(), (dim,), spaces.Discrete(num_arms))))


@functools.lru_cache(maxsize=4)
def _dqn_train_fn(cfg: ProtocolConfig, num_arms: int, dim: int, rows: int):
    config = cfg.dqn_config(rows)
    return jax.jit(make_train(dqn.make_offline_trainer(config, (dim,), spaces.Discrete(num_arms))))


def train_dqn(data, num_arms: int, cfg: ProtocolConfig, key):
    """Offline DQN on every logged transition; returns the Q-network parameters."""
    logged = dqn.Transitions(
        obs=jnp.asarray(data["context"]),
        action=jnp.asarray(data["action"]),
        reward=jnp.asarray(data["reward"]),
        next_obs=jnp.asarray(data["next_context"]),
        terminated=jnp.zeros(len(data["reward"])),
    )
    rows = min(cfg.rl_customers * data["weeks"], len(data["reward"]))
    return _dqn_train_fn(cfg, num_arms, logged.obs.shape[-1], rows)(key, None, logged)["state"].params


def make_agent_policy(kind: str, cfg: ProtocolConfig, num_arms: int):
    """``policy(key, obs, state, params, agent)`` for an agent's trained parameters ``agent`` (for the
    Boltzmann bandit: its network parameters, so every training run reuses one compiled evaluator)."""
    if kind == "linucb":
        return lambda k, o, s, p, a: linear.act_ucb(a, with_bias(o), cfg.linucb_alpha)
    if kind == "lints":
        return lambda k, o, s, p, a: linear.act_thompson(k, a, with_bias(o), cfg.lints_alpha)
    if kind == "neural_boltzmann":
        net = neural.RewardNetwork(tuple(cfg.nb_hidden), num_arms)
        return lambda k, o, s, p, a: jax.random.categorical(k, net.apply(a, o) / cfg.nb_temperature).astype(
            jnp.int32
        )
    if kind == "ppo":
        act = ppo.make_policy(cfg.ppo_config(), spaces.Discrete(num_arms))
        return lambda k, o, s, p, a: act(a, k, o).astype(jnp.int32)
    if kind == "dqn":
        act = dqn.make_policy(cfg.dqn_config(1), spaces.Discrete(num_arms))
        return lambda k, o, s, p, a: act(a, k, o).astype(jnp.int32)
    if kind == "baseline":  # a static level for everyone, or random when the level is -1
        return level_policy
    raise ValueError(f"unknown agent {kind!r}; choose one of {AGENTS}")


@functools.lru_cache(maxsize=16)
def evaluator(kind: str, cfg: ProtocolConfig, num_arms: int):
    """Jitted ``(params, state, obs, key, agent) -> per-customer metrics`` over ``eval_weeks`` weeks."""
    env = CouponEnv()
    policy = make_agent_policy(kind, cfg, num_arms)

    @jax.jit
    def run(params, state, obs, key, agent):
        _, _, rec = scan_steps(
            env,
            lambda k, o, s, p: policy(k, o, s, p, agent),
            key,
            params,
            obs,
            state,
            cfg.eval_weeks,
            record=_record,
        )
        return customer_metrics(rec)

    return run


def fresh_wrapper_state(state, params):
    """Quirks (i)-(iii) of the original evaluation applied to a resumed state."""
    from jaxretail.envs.coupon.env import Summaries, _draw_next_week
    from jaxretail.envs.coupon.types import ShelfState

    n_u, n_j = params.num_customers, params.config.num_categories
    zeros = jnp.zeros((n_u,), jnp.float32)
    shelf, price, discount, marketing, obs_x = _draw_next_week(
        params,
        ShelfState(jnp.zeros_like(state.shelf.discounted)),
        state.t + 100_000,
        jnp.zeros((n_u, n_j), jnp.float32),
    )
    return state.replace(
        visit_probability=jnp.ones((n_u,), jnp.float32),
        visited=jnp.ones((n_u,), bool),
        first_step=jnp.asarray(True),
        summaries=Summaries(jnp.zeros((), jnp.float32), *([zeros] * 7)),
        shelf=shelf,
        price=price,
        discount=discount,
        marketing=marketing,
        observed_feature=obs_x,
    )


def last_logged_context(root, simulation: int, week: int, num_customers: int) -> np.ndarray:
    """Quirk (iv): the logged pre-action context of ``week`` for every customer, ``[U, 9]``."""
    t = ds.pq.read_table(ds.part_path(root, simulation))
    rows = np.flatnonzero(t.column("week").to_numpy() == week)
    ctx = np.stack([t.column(f"ctx_{f}").to_numpy()[rows] for f in CONTEXT_FEATURES], 1)
    out = np.zeros((num_customers, len(CONTEXT_FEATURES)), np.float32)
    out[t.column("customer").to_numpy()[rows]] = ctx
    return out


def paired_t_greater(a, b) -> float:
    """One-sided paired t-test p-value of ``mean(a) > mean(b)`` (NaN with fewer than two pairs)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or np.allclose(a, b):
        return float("nan")
    return float(stats.ttest_rel(a, b, alternative="greater").pvalue)


def summarize_policy(
    per_run_sims: list[list[dict]], random_sims: list[dict], best_static_sims: list[dict] | None
):
    """Mean +- s.e. of each metric, raw and divided by random on the same simulation: over training runs
    (simulation-averaged) for trained agents, over simulations for policies evaluated once. Plus
    one-sided paired t-tests of per-simulation revenue against random and the best static coupon."""
    row = {}
    for m in METRICS:
        ratio = lambda sims, m=m: [
            s[m] / r[m] if r[m] else np.nan for s, r in zip(sims, random_sims, strict=True)
        ]
        if len(per_run_sims) > 1:  # trained agents: spread over independent training runs
            raw = [np.mean([s[m] for s in sims]) for sims in per_run_sims]
            rel = [np.mean(ratio(sims)) for sims in per_run_sims]
        else:  # policies evaluated once: spread over simulations
            raw, rel = [s[m] for s in per_run_sims[0]], ratio(per_run_sims[0])
        a, b = mean_se(raw), mean_se(rel)
        row[m], row[f"{m}_se"], row[f"{m}_vs_random"], row[f"{m}_vs_random_se"] = a.mean, a.se, b.mean, b.se
    per_sim = np.mean([[s["revenue"] for s in sims] for sims in per_run_sims], axis=0)  # averaged over runs
    row["p_revenue_gt_random"] = paired_t_greater(per_sim, [r["revenue"] for r in random_sims])
    row["p_revenue_gt_best_static"] = (
        paired_t_greater(per_sim, [r["revenue"] for r in best_static_sims])
        if best_static_sims is not None
        else float("nan")
    )
    return row


def segment_masks(params_list) -> list[np.ndarray]:
    """Price-sensitive customers (mean price coefficient at or below the pooled median) per simulation."""
    coef = [mean_price_coefficient(p.scenario, p.config.price_scale) for p in params_list]
    median = float(np.median(np.concatenate(coef)))
    return [c <= median for c in coef]


def allocation(per_customer: dict, sensitive: np.ndarray) -> tuple[float, float]:
    """Mean offered coupon of the price-sensitive and the price-insensitive half."""
    offered = np.asarray(per_customer["offered_discount"])
    return float(offered[sensitive].mean()), float(offered[~sensitive].mean())


def evaluate_all(root, collection: col.CollectionConfig, cfg: ProtocolConfig, progress=None) -> dict:
    """Train and evaluate every agent; returns rows (per policy and segment) and coupon allocations."""
    if cfg.eval_simulations > collection.num_simulations:
        raise ValueError(
            f"eval_simulations={cfg.eval_simulations} exceeds the {collection.num_simulations} collected"
        )
    progress = progress or (lambda msg: None)
    progress("loading the logged training data and the saved simulations")
    data = load_training_arrays(root, cfg.train_customers, cfg.seed)
    if cfg.rl_customers > data["num_customers"]:
        raise ValueError(
            f"rl_customers must be <= the {data['num_customers']} training customers, "
            f"got rl_customers={cfg.rl_customers}"
        )
    restored = [col.load_state(root, collection, s) for s in range(cfg.eval_simulations)]
    if cfg.legacy_evaluation:
        starts = [
            (
                p,
                fresh_wrapper_state(st, p),
                jnp.asarray(last_logged_context(root, i, collection.num_weeks - 1, p.num_customers)),
            )
            for i, (p, st) in enumerate(restored)
        ]
    else:
        starts = [(p, st, context(st, p)) for p, st in restored]
    sensitive = segment_masks([p for p, _ in restored])
    num_arms = len(restored[0][0].config.coupon_levels)
    results, alloc = {}, {}  # name -> list over runs of list over sims of per-customer metrics
    base_eval = evaluator("baseline", cfg, num_arms)
    key = jax.random.key(cfg.seed)
    progress(f"evaluating random and {num_arms} static coupons (the first one compiles the evaluation)")
    for level in [-1, *range(num_arms)]:
        name = "random" if level < 0 else f"coupon_{round(100 * restored[0][0].config.coupon_levels[level])}%"
        sims = [
            jax.tree.map(
                np.asarray, base_eval(p, s, o, jax.random.fold_in(key, 1000 + i), jnp.asarray(level))
            )
            for i, (p, s, o) in enumerate(starts)
        ]
        results[name] = [sims]
        progress(f"evaluated {name}")
    for kind in AGENTS:
        run_eval = evaluator(kind, cfg, num_arms)
        progress(f"{kind}: training and evaluating {cfg.training_runs} runs (the first compiles)")
        runs = []
        for r in range(cfg.training_runs):
            rng = np.random.default_rng([cfg.seed, r, AGENTS.index(kind)])
            k = jax.random.fold_in(jax.random.fold_in(key, AGENTS.index(kind)), r)
            if kind == "neural_boltzmann":
                agent = train_neural(data, num_arms, cfg, k, rng).params
            elif kind == "ppo":
                agent = train_ppo(data, num_arms, cfg, k)
            elif kind == "dqn":
                agent = train_dqn(data, num_arms, cfg, k)
            else:
                forgetting = cfg.linucb_forgetting if kind == "linucb" else cfg.lints_forgetting
                agent = train_linear(
                    data, num_arms, forgetting, cfg.linear_epochs, cfg.linear_batch_customers, rng
                )
            runs.append(
                [
                    jax.tree.map(np.asarray, run_eval(p, s, o, jax.random.fold_in(k, 7 + i), agent))
                    for i, (p, s, o) in enumerate(starts)
                ]
            )
            progress(f"{kind}: training run {r + 1}/{cfg.training_runs}")
        results[kind] = runs
    rows = []
    for seg_name, select in (
        ("all", None),
        ("price_sensitive", sensitive),
        ("price_insensitive", [~m for m in sensitive]),
    ):
        agg = {
            name: [
                [aggregate(c, None if select is None else select[i]) for i, c in enumerate(sims)]
                for sims in runs
            ]
            for name, runs in results.items()
        }
        random_sims = agg["random"][0]
        statics = [n for n in agg if n.startswith("coupon_")]
        best = max(statics, key=lambda n: np.mean([s["revenue"] for s in agg[n][0]]))
        for name, per_run in agg.items():
            row = {"segment": seg_name, "policy": name, "runs": len(per_run)}
            row.update(summarize_policy(per_run, random_sims, agg[best][0] if name not in statics else None))
            row["best_static"] = best
            rows.append(row)
    for name, runs in results.items():
        pairs = [allocation(c, sensitive[i]) for sims in runs for i, c in enumerate(sims)]
        alloc[name] = {
            "price_sensitive": float(np.mean([p[0] for p in pairs])),
            "price_insensitive": float(np.mean([p[1] for p in pairs])),
        }
    return {"rows": rows, "allocation": alloc}
