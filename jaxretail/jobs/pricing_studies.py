"""The studies of the dynamic pricing main job (:mod:`jaxretail.jobs.pricing`, Liu et al. 2019, arXiv
1912.02572): each trains its agents on one set of SKUs, evaluates them greedily on held-out SKUs with
common random numbers against the analytic optimum and the specialist rules, and appends its rows.

``STUDIES`` maps a study's name to ``study(a, rows, bar, curves)`` (``a``: the parsed flags; ``rows``:
the result rows, appended to; ``bar``: the tqdm bar, advanced per task; ``curves``: per-day curves for
the plots, filled by ``markdown`` and ``did``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxretail.agents import ddpg, demos, dqfd, dqn
from jaxretail.agents.training import make_train
from jaxretail.core.rollout import rollout
from jaxretail.core.vector import batched
from jaxretail.envs.pricing import DynamicPricing, group_params, metrics, policies, protocol
from jaxretail.evaluation import off_policy as ope

ENV = DynamicPricing()
GAMMAS = (0.5, 0.9, 0.99)
RULES = {
    "optimal": policies.optimal_policy,
    "list_price": policies.list_price_policy,
    "competitor": policies.competitor_policy(),
    "cost_plus": policies.cost_plus_policy(),
    "traffic": policies.traffic_policy,
    "random": policies.random_policy,
}


# -- evaluation --------------------------------------------------------------------------------------
def evaluate(policy, params, keys, days, key):
    """Per-day value ``[T]`` (% of list price per visitor: RCR, or PCR for profit rewards), profit ``[T]``."""
    profit_basis = params.reward in ("pcr", "dpcr", "profit")

    def rec(tr):
        amount = tr.info["profit"] if profit_basis else tr.info["revenue"]
        return amount, tr.info["uv"], tr.info["profit"], tr.info["revenue"]

    _, state, (amount, uv, profit, revenue) = rollout(ENV, policy, key, params, keys, days, record=rec)
    p_ref = state.sku.list_price[None, :]
    value = 100.0 * jnp.sum(amount / p_ref, axis=1) / jnp.maximum(jnp.sum(uv, axis=1), 1.0)
    return value, jnp.mean(profit / p_ref, axis=1), jnp.mean(revenue / p_ref, axis=1)


def greedy_from_q(net, params):
    return lambda k, obs, s, p: jnp.argmax(net.apply(params, obs[None]), axis=1)[0].astype(jnp.int32)


def eval_keys(seed, n):
    return jax.random.split(jax.random.key(10_000 + seed), n)


def rule_values(params, a):
    """Value of every rule of ``RULES`` on the evaluation SKUs (one compiled call: ``lax.switch``)."""
    keys = eval_keys(a.seed, a.eval_skus)
    rules = list(RULES.values())

    def one(i):
        policy = lambda k, o, s, p: jax.lax.switch(i, rules, k, o, s, p)
        return jnp.mean(evaluate(policy, params, keys, a.days, jax.random.key(1))[0])

    values = np.asarray(jax.jit(jax.vmap(one))(jnp.arange(len(rules))))
    return {name: float(v) for name, v in zip(RULES, values, strict=True)}


LEARNING_STARTS = 256  # stored transitions before an agent's first gradient step (every study)


# -- studies ------------------------------------------------------------------------------------------
def dqn_runs(params, a, gammas=GAMMAS, key=0):
    """Train DQN for every gamma x seed in one vmapped call; return greedy values ``[G, S]``."""
    cfg = dqn.DQNConfig(
        num_updates=a.updates,
        batch_size=128,
        buffer_size=20_000,
        learning_starts=LEARNING_STARTS,
        target_update_interval=50,
        hidden=(64, 64),
        hyper=dqn.DQNHyper(learning_rate=1e-3),
    )
    trainer = dqn.make_trainer(cfg, batched(ENV, params, a.train_skus))
    net = dqn.network(cfg, ENV.action_space(params))
    keys = eval_keys(a.seed, a.eval_skus)

    def one(gamma, k):
        out = make_train(trainer)(k, cfg.hyper.replace(gamma=gamma))
        v, _, _ = evaluate(greedy_from_q(net, out["state"].params), params, keys, a.days, jax.random.key(1))
        return jnp.mean(v), out["metrics"]["mean_reward"], out["state"].params

    seeds = jax.random.split(jax.random.key(a.seed + key), a.seeds)
    vals, curves, qparams = jax.jit(jax.vmap(jax.vmap(one, in_axes=(None, 0)), in_axes=(0, None)))(
        jnp.asarray(gammas, jnp.float32), seeds
    )
    return np.asarray(vals), np.asarray(curves), (net, qparams)


def value_row(vals, optimum: float, **labels) -> dict:
    """One result row: the labels, then the mean value over runs, its standard deviation and the share of
    the analytic optimum."""
    vals = np.asarray(vals)
    mean = float(vals.mean())
    return {**labels, "value": mean, "value_sd": float(vals.std()), "vs_optimal": mean / optimum}


def study_reward_gamma(a, rows, bar):
    for group in ("luxury", "fmcg"):
        rules = rule_values(group_params(group, reward="rcr", num_prices=10, horizon=a.days), a)
        opt = rules["optimal"]
        for reward in ("rcr", "drcr"):
            params = group_params(group, reward=reward, num_prices=10, horizon=a.days, reward_scale=100.0)
            vals, _, _ = dqn_runs(params, a)
            for g, gamma in enumerate(GAMMAS):
                rows.append(
                    value_row(
                        vals[g],
                        opt,
                        study="reward_gamma",
                        group=group,
                        agent="dqn",
                        reward=reward,
                        gamma=gamma,
                        K=10,
                        **{f"rule_{k}": v for k, v in rules.items()},
                    )
                )
            bar.update(1)


def study_num_prices(a, rows, bar):
    for k in a.num_prices:
        params = group_params("fmcg", reward="drcr", num_prices=k, horizon=a.days, reward_scale=100.0)
        opt = rule_values(params, a)["optimal"]
        vals, _, _ = dqn_runs(params, a, gammas=(0.9,), key=k)
        rows.append(
            value_row(vals, opt, study="num_prices", group="fmcg", agent="dqn", reward="drcr", gamma=0.9, K=k)
        )
        bar.update(1)


def demo_items(params, n_demos, a, key):
    """``n_demos`` transitions of the epsilon-competitor specialist (days x SKUs), as n-step items."""
    days = min(a.days, 30)
    n_skus = max(n_demos // days, 1)
    logs = protocol.collect_logs(
        ENV,
        policies.epsilon_policy(policies.competitor_policy(), 0.2)
        if params.action_type == "discrete"
        else policies.competitor_policy(),
        key,
        params,
        jax.random.split(key, n_skus),
        days,
    )
    items = demos.nstep_items(
        logs["obs"],
        logs["action"],
        logs["reward"],
        logs["terminated"],
        logs["truncated"],
        logs["final_obs"],
        10,
    )
    return jax.tree.map(lambda x: x[:n_demos], items)


def study_demonstrations(a, rows, bar):
    for action_type in ("discrete", "continuous"):
        params = group_params(
            "fmcg", reward="drcr", action_type=action_type, num_prices=10, horizon=a.days, reward_scale=100.0
        )
        opt = rule_values(params.replace(action_type="continuous"), a)["optimal"]
        keys = eval_keys(a.seed, a.eval_skus)
        for n in a.demos:
            items = demo_items(params, n, a, jax.random.key(77)) if n else None
            common = dict(
                num_updates=a.updates,
                batch_size=128,
                buffer_size=20_000,
                learning_starts=LEARNING_STARTS,
                pretrain_updates=a.updates // 4 if n else 0,
                num_demos=n,
                n_step=10,
                hidden=(64, 64),
            )
            venv = batched(ENV, params, a.train_skus)
            if action_type == "discrete":
                cfg = dqfd.DQfDConfig(target_update_interval=50, hyper=dqfd.DQfDHyper(gamma=0.9), **common)
                trainer, net = dqfd.make_trainer(cfg, venv), dqfd.network(cfg, venv.action_space)
                act = lambda ag, net=net: greedy_from_q(net, ag.params)
                name = "dqfd" if n else "dqn_per"
            else:
                cfg = ddpg.DDPGConfig(
                    priority_exponent=0.4, hyper=ddpg.DDPGHyper(gamma=0.9, actor_lr=3e-4), **common
                )
                trainer, (actor, _) = ddpg.make_trainer(cfg, venv), ddpg.networks(cfg, venv.action_space)
                act = lambda ag, actor=actor: lambda k, obs, s, p: actor.apply(ag.actor, obs[None])[0]
                name = "ddpgfd" if n else "ddpg"

            def one(k, trainer=trainer, act=act, items=items, params=params, keys=keys):
                out = make_train(trainer)(k, None, items)
                value = evaluate(act(out["state"].agent), params, keys, a.days, jax.random.key(1))[0]
                return jnp.mean(value)

            vals = np.asarray(jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(a.seed + n), a.seeds)))
            rows.append(
                value_row(
                    vals,
                    opt,
                    study="demonstrations",
                    group="fmcg",
                    agent=name,
                    reward="drcr",
                    gamma=0.9,
                    K=10,
                    demos=n,
                )
            )
            bar.update(1)


def study_markdown(a, rows, bar, curves):
    horizon = 15
    params = group_params("luxury", mode="markdown", horizon=horizon, initial_stock=10.0, reward_scale=100.0)
    cfg = dqn.DQNConfig(
        num_updates=a.updates,
        batch_size=128,
        buffer_size=20_000,
        learning_starts=LEARNING_STARTS,
        target_update_interval=50,
        hidden=(64, 64),
        hyper=dqn.DQNHyper(gamma=0.9),
    )
    trainer = dqn.make_trainer(cfg, batched(ENV, params, a.train_skus))
    net = dqn.network(cfg, ENV.action_space(params))
    keys = eval_keys(a.seed, a.eval_skus)

    def by_day(policy):
        def rec(tr):
            return (
                tr.info["revenue"],
                tr.info["profit"],
                tr.info["uv"],
                tr.info["price"] < tr.info["unit_cost"],
            )

        _, state, (rev, prof, uv, below) = rollout(
            ENV, policy, jax.random.key(1), params, keys, horizon, record=rec
        )
        p_ref = state.sku.list_price[None]
        rcr = 100.0 * jnp.sum(rev / p_ref, 1) / jnp.maximum(jnp.sum(uv, 1), 1.0)
        return rcr, jnp.mean(prof / p_ref, 1), jnp.mean(below, 1)

    out = jax.jit(jax.vmap(lambda k: make_train(trainer)(k)))(
        jax.random.split(jax.random.key(a.seed), a.seeds)
    )
    learned = jax.jit(jax.vmap(lambda q: by_day(greedy_from_q(net, q))))(out["state"].params)
    manual = jax.jit(lambda: by_day(policies.manual_markdown_policy(2)))()
    for name, (rcr, prof, below) in (("dqn", [np.asarray(x).mean(0) for x in learned]),
                                     ("manual_rule", [np.asarray(x) for x in manual])):  # fmt: skip
        rows.append(
            dict(
                study="markdown",
                group="luxury",
                agent=name,
                reward="pcr",
                gamma=0.9,
                K=9,
                value=float(rcr.mean()),
                total_profit=float(prof.sum()),
                below_cost_days=float(below.mean()),
            )
        )
        curves[f"markdown_{name}"] = {"rcr": rcr.tolist(), "profit": prof.tolist()}
    bar.update(1)


def study_offline(a, rows, bar):
    params = group_params("luxury", reward="rcr", num_prices=10, horizon=a.days, reward_scale=100.0)
    vals, _, (net, qparams) = dqn_runs(params, a, gammas=(0.9,), key=5)
    q = jax.tree.map(lambda x: x[0, 0], qparams)
    keys = eval_keys(a.seed + 1, a.eval_skus)
    rule = policies.competitor_policy()
    logs = jax.jit(
        lambda k: protocol.collect_logs(
            ENV,
            policies.epsilon_policy(rule, 0.5),
            k,
            params,
            keys,
            a.days,
            probs=policies.epsilon_probs(rule, 0.5),
        )
    )(jax.random.key(3))
    online = float(jnp.mean(rollout(ENV, greedy_from_q(net, q), jax.random.key(3), params, keys, a.days)[2]))
    flat = lambda x: x.reshape((-1,) + x.shape[2:])
    r, mu, act, obs = flat(logs["reward"]), flat(logs["propensity"]), flat(logs["action"]), flat(logs["obs"])
    greedy = jnp.argmax(net.apply(q, obs), axis=1)
    pi = jax.nn.one_hot(greedy, params.num_prices)
    q_hat = ope.fit_linear_reward_model(obs, act, r, params.num_prices)(obs)
    rep = protocol.replay_estimate(logs, greedy.reshape(logs["action"].shape), params)
    est = {
        "ipw": ope.ipw(r, mu, pi, act),
        "snipw": ope.snipw(r, mu, pi, act),
        "dr": ope.doubly_robust(r, mu, pi, act, q_hat),
    }
    row = dict(
        study="offline",
        group="luxury",
        agent="dqn",
        reward="rcr",
        online_value=online,
        replay_score=rep["score"],
        replay_hits=rep["hits"],
        replay_mean=rep["mean_matched_reward"],
        logged_mean=rep["logged_mean_reward"],
    )
    for k, e in est.items():
        row[f"{k}"], row[f"{k}_se"] = float(e["estimate"]), float(e["se"])
    rows.append(row)
    bar.update(1)


def study_did(a, rows, bar, curves):
    params = group_params("fmcg", reward="drcr", num_prices=10, horizon=1000, reward_scale=100.0)
    n, T, half = a.eval_skus // 2, 30, 15
    _, _, (net, qparams) = dqn_runs(params, a, gammas=(0.9,), key=9)
    q = jax.tree.map(lambda x: x[0, 0], qparams)
    learned = greedy_from_q(net, q)
    rule = policies.competitor_policy()
    switch = lambda k, o, s, p: jax.lax.cond(
        s.t > half, lambda: learned(k, o, s, p), lambda: rule(k, o, s, p)
    )
    keys_c = jax.random.split(jax.random.key(500), n)
    keys_t = jax.random.split(jax.random.key(501), n)

    def rcr(policy, keys):
        # outcome: daily RCR in % of the list price. (A DRCR outcome with lag 1 telescopes a level change
        # into one day; the paper's DID uses DRCR with a 365-day lag, i.e. RCR against last year's level.)
        rec = lambda tr: (tr.info["revenue"], tr.info["uv"])
        _, state, (rev, uv) = rollout(ENV, policy, jax.random.key(2), params, keys, T, record=rec)
        return 100.0 * metrics.conversion_rate(rev / state.sku.list_price[None], uv)[0]  # [T, n]

    ctrl, twin, treat = (
        np.asarray(jax.jit(lambda p=p, k=k: rcr(p, k))())
        for p, k in ((rule, keys_c), (rule, keys_t), (switch, keys_t))
    )
    same = protocol.did_estimate(ctrl, twin, half)
    diff = protocol.did_estimate(ctrl, treat, half)
    true_effect = float((treat - twin)[half:].mean())  # same SKUs and random numbers, other policy
    rows.append(
        dict(
            study="did",
            group="fmcg",
            agent="dqn_vs_competitor_rule",
            did_same=same["effect"],
            did_same_ci=str(tuple(round(x, 5) for x in same["ci95"])),
            did_switch=diff["effect"],
            did_switch_ci=str(tuple(round(x, 5) for x in diff["ci95"])),
            simulated_effect=true_effect,
        )
    )
    curves["did"] = {
        "control": ctrl.mean(1).tolist(),
        "twin": twin.mean(1).tolist(),
        "treated": treat.mean(1).tolist(),
    }
    bar.update(1)


STUDIES = {
    "reward_gamma": lambda a, rows, bar, curves: study_reward_gamma(a, rows, bar),
    "num_prices": lambda a, rows, bar, curves: study_num_prices(a, rows, bar),
    "demonstrations": lambda a, rows, bar, curves: study_demonstrations(a, rows, bar),
    "markdown": study_markdown,
    "offline": lambda a, rows, bar, curves: study_offline(a, rows, bar),
    "did": study_did,
}
