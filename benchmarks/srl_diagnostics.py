"""Why SRL stays below SIL on the dynamic assortment problem (paper mode): two measurements, two ablations.

1. **Rollout bound of the myopic expert.** A one-step policy-improvement (rollout) policy: at every
   decision it scores the expert's ``M`` best assortments by immediate expected revenue, each followed by
   the (parametric, exact) expert to the horizon, by Monte Carlo over ``R`` customer streams shared by
   the candidates (common random numbers), exact MNL revenue for the first step, and offers the best.
   Played on the true customer stream of each test seed next to the expert itself (same stream). If the
   rollout gains little over the expert, the expert is close to a fixed point of policy improvement, so
   no learner can beat it by much and SIL, which imitates it, is a hard bar.
2. **Quality of SRL's critic.** SRL (paper settings) is trained for ``--init-seeds``; on states its final
   actor visits (validation seeds), its 41 candidates (``topK(theta)`` and 40 perturbed, std of the final
   sigma_B) are scored by the critics (``critic_rew + critic_fut``) and by the truth: the exact MNL
   immediate revenue plus ``gamma`` times the Monte Carlo continuation of the same actor (the critic's
   target). Reported per state and averaged: Spearman rank correlations, the true-Q regret of the
   critic's favourite, the softmax target's effective number of candidates, and the learning curve.
   ``--oracle`` also trains SRL with the exact immediate revenue as its only critic (the learned critic
   swapped out), ``--sil`` trains SIL on the same init seeds; every kept actor is evaluated on test seeds
   2001-2100. ``--temperature`` departs from the paper's tau = 1 (an ablation, not a paper setting).

    python benchmarks/srl_diagnostics.py                      # small default (5 test seeds, 2 init seeds)
    python benchmarks/srl_diagnostics.py --seeds 40 --replicates 64 --candidates 8 --skip-critic
    python benchmarks/srl_diagnostics.py --skip-rollout --oracle --sil --init-seeds 3 --episodes 800
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from jaxretail.agents import coaml, srl
from jaxretail.agents.structured import top_k_mask
from jaxretail.agents.training import run as run_trainer
from jaxretail.choice import mnl
from jaxretail.core.validation import cli_parser, finite_float, int_at_least, int_in_range
from jaxretail.envs.assortment import DynamicAssortment, expert_parametric_policy, subset_masks
from jaxretail.envs.assortment.env import feature_weights, observation, utilities
from jaxretail.jobs import assortment_learning as al
from jaxretail.utils import atomic_write_text

K0 = jax.random.key(0)  # the env's step key is unused (customers come from the episode stream)


def immediate_revenue(state, params, masks):
    """Exact expected revenue ``[C]`` of the 0/1 assortments ``masks [C, N]`` in ``state``."""
    theta = utilities(state, params)
    v, v0 = mnl.weights(theta, jnp.ones(theta.shape, bool))
    return (masks @ (v * state.price)) / (v0 + masks @ v)


def continuation(env, params, policy, state, gamma):
    """``sum_k gamma^k r_{t+k}`` of ``policy(state) -> mask`` from ``state`` to the horizon."""

    def body(carry, _):
        st, total, disc = carry
        _, nst, r, *_ = env.step_env(K0, st, policy(st), params)
        live = st.t <= params.horizon
        return (nst, total + jnp.where(live, disc * r, 0.0), disc * gamma), None

    (_, total, _), _ = jax.lax.scan(body, (state, 0.0, 1.0), None, length=params.horizon)
    return total


def q_values(env, params, policy, state, cands, rkeys, gamma):
    """``R(a) + gamma E[V^policy(s')]`` per candidate ``cands [M, N]``; the ``R`` customer streams
    ``rkeys`` are shared by the candidates (common random numbers)."""

    def one(a, ck):
        _, nst, *_ = env.step_env(K0, state.replace(customer_key=ck), a, params)
        return continuation(env, params, policy, nst, gamma)

    cont = jax.vmap(lambda a: jax.vmap(lambda ck: one(a, ck))(rkeys).mean())(cands)
    return immediate_revenue(state, params, cands.astype(state.price.dtype)) + gamma * cont


def rollout_bound(env, params, seeds, m, r):
    """Episode revenue of the expert and of its rollout improvement on ``seeds`` (true streams)."""
    masks = jnp.asarray(subset_masks(params.num_items, params.assortment_size), jnp.float32)
    expert = expert_parametric_policy()
    policy = lambda st: expert(K0, None, st, params)  # noqa: E731

    def episode(seed, improve):
        _, state = env.reset(jax.random.key(seed), params)
        base = jax.random.fold_in(jax.random.key(seed), 7_777_777)  # independent of the true stream

        def step(state, _):
            top, idx = jax.lax.top_k(immediate_revenue(state, params, masks), m)
            cands = masks[idx] > 0.5  # cands[0]: the myopic expert's assortment
            if improve:
                rkeys = jax.vmap(lambda i: jax.random.fold_in(jax.random.fold_in(base, state.t), i))(
                    jnp.arange(r)
                )
                q = q_values(env, params, policy, state, cands, rkeys, 1.0)
                c = jnp.argmax(q)
                gain = q[c] - q[0]
            else:
                c, gain = jnp.asarray(0), jnp.asarray(0.0)
            _, nst, rew, *_ = env.step_env(K0, state, cands[c], params)
            return nst, (rew, gain, c > 0, top[0] - top[c])

        _, (rew, gain, switched, myopic_loss) = jax.lax.scan(step, state, None, length=params.horizon)
        return rew.sum(), gain.sum(), switched.mean(), myopic_loss.sum()

    seeds = jnp.asarray(seeds, jnp.uint32)
    exp_rev = jax.jit(jax.vmap(lambda s: episode(s, False)[0]))(seeds)
    roll = jax.jit(jax.vmap(lambda s: episode(s, True)))(seeds)
    return np.asarray(exp_rev), [np.asarray(x) for x in roll]


def exact_critic_reward(params):
    """``critic_rew`` replaced by the exact MNL expected revenue of ``action``, read off the paper-mode
    features ``x`` (rows f_1..f_d, h, sigma, p) with the env's utility weights; ignores its parameters."""
    d = params.num_features

    def critic(p, x, action, k):
        del p, k
        theta = feature_weights(params) @ x[:d] + params.hype_weight * x[d]
        theta = theta + params.saturation_weight * x[d + 1] + params.price_weight * x[d + 2]
        return mnl.expected_revenue(theta, action > 0.5, x[d + 2])

    return critic


def train_srl(spec, init_seeds, episodes, oracle=False, temperature=1.0):
    """SRL in paper mode; ``oracle``: Q = the exact immediate revenue (no learned critic, myopic)."""
    temp = (temperature, temperature)
    cfg = srl.SRLConfig(paper_mode=True, episodes=episodes, dynamic=not oracle, temperature=temp)
    critic = exact_critic_reward(spec.params) if oracle else coaml.critic_reward
    trainer = srl.vmap_trainer(srl.make_srl(cfg, spec, critic_reward=critic))
    keys = jax.vmap(jax.random.key)(jnp.asarray(init_seeds, jnp.uint32))
    res = run_trainer(trainer, keys, None, None, chunk_updates=20, progress=True)
    return res["state"], {k: np.asarray(v) for k, v in res["metrics"].items()}


def _mean_se(r):
    """``[mean, standard error]`` (the error is None, undefined, for a single value)."""
    se = round(float(r.std(ddof=1) / np.sqrt(len(r))), 1) if len(r) > 1 else None
    return [round(float(r.mean()), 1), se]


def _result(revenue, score, t0, final=None):
    """``revenue [S_init]``: test seeds 2001-2100 per init seed of the selected actors (``final``: of
    the last actors); ``score [points, S_init]``: the evaluation points."""
    return {
        "test revenue (mean, se over init seeds)": _mean_se(revenue),
        **({} if final is None else {"test revenue of the last actor (no selection)": _mean_se(final)}),
        "evaluation curve (first / middle / last tenth, best)": _curve(score),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def critic_study(env, params, actor, critics, seeds, every, r, gamma, std_b, num_candidates, key, temp):
    """Per-state statistics of SRL's candidate scoring on states ``topK(actor)`` visits."""
    k = params.assortment_size
    act = lambda st: top_k_mask(coaml.actor_scores(actor, observation(st, params)), k) > 0.5  # noqa: E731

    def states_of(seed):
        _, state = env.reset(jax.random.key(seed), params)

        def step(st, _):
            _, nst, *_ = env.step_env(K0, st, act(st), params)
            return nst, st

        return jax.lax.scan(step, state, None, length=params.horizon)[1]

    states = jax.vmap(states_of)(jnp.asarray(seeds, jnp.uint32))
    states = jax.tree.map(lambda x: x[:, ::every].reshape((-1,) + x.shape[2:]), states)
    n_states = states.t.shape[0]

    def one(st, kk):
        x = observation(st, params)
        theta = coaml.actor_scores(actor, x)
        z = jax.random.normal(jax.random.fold_in(kk, 0), (num_candidates,) + theta.shape)
        cands = jax.vmap(top_k_mask, in_axes=(0, None))(jnp.concatenate([theta[None], theta + std_b * z]), k)
        q_rew = jax.vmap(coaml.critic_reward, in_axes=(None, None, 0, None))(critics["rew"], x, cands, k)
        q_fut = jax.vmap(coaml.critic_future, in_axes=(None, None, 0))(critics["fut"], x, cands)
        rkeys = jax.random.split(jax.random.fold_in(kk, 1), r)
        q_true = q_values(env, params, act, st, cands > 0.5, rkeys, gamma)
        return q_rew, q_fut, immediate_revenue(st, params, cands), q_true, cands

    keys = jax.random.split(key, n_states)
    q_rew, q_fut, rev, q_true, cands = (np.asarray(a) for a in jax.jit(jax.vmap(one))(states, keys))
    q = q_rew + q_fut

    def rho(a, b):  # NaN (and no warning) when a state's candidates are all the same assortment
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", stats.ConstantInputWarning)
            return stats.spearmanr(a, b).statistic

    rows = {"Q_critic~Q_true": [], "critic_rew~R": [], "critic_fut~cont": [], "R~Q_true": []}
    regret, regret_r, ess, distinct, mae = [], [], [], [], []
    for i in range(n_states):
        rows["Q_critic~Q_true"].append(rho(q[i], q_true[i]))
        rows["critic_rew~R"].append(rho(q_rew[i], rev[i]))
        rows["critic_fut~cont"].append(rho(q_fut[i], q_true[i] - rev[i]))
        rows["R~Q_true"].append(rho(rev[i], q_true[i]))
        regret.append(q_true[i].max() - q_true[i][np.argmax(q[i])])
        regret_r.append(q_true[i].max() - q_true[i][np.argmax(rev[i])])
        p = np.exp((q[i] - q[i].max()) / temp)
        p /= p.sum()
        ess.append(1.0 / np.sum(p**2))
        distinct.append(len({tuple(c) for c in cands[i].astype(int)}))
        mae.append(np.mean(np.abs(q_rew[i] - rev[i])))
    mean = lambda v: float(np.nanmean(v))  # noqa: E731
    # a rank correlation undefined on every state (constant scores) is null, not a NaN in the JSON
    corr = lambda v: round(mean(v), 3) if np.any(np.isfinite(v)) else None  # noqa: E731
    return {
        "states": n_states,
        **{f"spearman {k}": corr(v) for k, v in rows.items()},
        "true-Q regret of argmax critic": round(mean(regret), 3),
        "true-Q regret of argmax R (myopic)": round(mean(regret_r), 3),
        "true-Q spread (max - min over candidates)": round(mean(q_true.max(1) - q_true.min(1)), 3),
        "critic Q spread": round(mean(q.max(1) - q.min(1)), 3),
        "mean |critic_rew - R|": round(mean(mae), 3),
        "mean R": round(mean(rev), 3),
        "softmax effective candidates": round(mean(ess), 2),
        "distinct candidates of 41": round(mean(distinct), 2),
    }


def _curve(score):
    """Mean evaluation score ``[points, init seeds]`` over the first, middle and last tenth of the
    points, and the mean over init seeds of each seed's best point."""
    q = len(score) // 10 or 1
    mid = len(score) // 2 - q // 2
    parts = (score[:q], score[mid : mid + q], score[-q:])
    return [round(float(x.mean()), 1) for x in parts] + [round(float(score.max(0).mean()), 1)]


def main(argv=None) -> int:
    ap = cli_parser(__doc__.splitlines()[0])
    pos = int_at_least(1)
    ap.add_argument("--seeds", type=pos, default=5, help="test seeds 2001.. for the rollout bound")
    ap.add_argument(
        "--candidates",
        type=int_in_range(1, 4845),
        default=4,
        help="expert's top-M assortments tried per step",
    )
    ap.add_argument("--replicates", type=pos, default=16, help="Monte Carlo customer streams per candidate")
    ap.add_argument(
        "--init-seeds",
        type=int_in_range(1, len(al.PAPER_INIT_SEEDS)),
        default=2,
        help="SRL init seeds (paper's list, first n)",
    )
    ap.add_argument("--episodes", type=pos, default=200, help="SRL training episodes")
    ap.add_argument("--critic-seeds", type=pos, default=5, help="validation seeds 1001.. (critic)")
    ap.add_argument("--every", type=pos, default=8, help="critic study: one state every n steps")
    ap.add_argument("--skip-rollout", action="store_true")
    ap.add_argument("--skip-critic", action="store_true")
    ap.add_argument("--oracle", action="store_true", help="also train SRL with the exact myopic critic")
    ap.add_argument("--sil", action="store_true", help="also train SIL (paper mode) on the same init seeds")
    ap.add_argument(
        "--temperature",
        type=finite_float(0.0, low_open=True),
        default=1.0,
        help="SRL softmax temperature (paper: 1)",
    )
    ap.add_argument("--out", default="results/srl_diagnostics.json")
    a = ap.parse_args(argv)
    if Path(a.out).is_dir():  # refused before any compute, not after it
        ap.error(f"--out must be a file path, got the folder {a.out!r}")
    env = DynamicAssortment()
    params = env.default_params
    out = {"args": vars(a)}
    if not a.skip_rollout:
        t0 = time.perf_counter()
        seeds = list(range(2001, 2001 + a.seeds))
        exp_rev, roll = rollout_bound(env, params, seeds, a.candidates, a.replicates)
        roll_rev, gain, switched, myopic_loss = roll
        diff = roll_rev - exp_rev
        out["rollout"] = {
            "seeds": f"2001-{2000 + a.seeds}",
            "expert revenue": round(float(exp_rev.mean()), 2),
            "rollout revenue": round(float(roll_rev.mean()), 2),
            "gain (paired, same stream)": round(float(diff.mean()), 2),
            # undefined (None) from one seed
            "gain se": round(float(diff.std(ddof=1) / np.sqrt(len(diff))), 2) if len(diff) > 1 else None,
            "gain %": round(float(100 * diff.mean() / exp_rev.mean()), 2),
            "estimated gain (sum of chosen Q - Q_expert)": round(float(gain.mean()), 2),
            "share of steps off the expert": round(float(switched.mean()), 3),
            "immediate revenue given up per episode": round(float(myopic_loss.mean()), 2),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        print(json.dumps(out["rollout"], indent=1))
    spec = coaml.EnvSpec(env, params, params.horizon, params.assortment_size)
    init_seeds = list(al.PAPER_INIT_SEEDS[: a.init_seeds])
    test = lambda actors: al.evaluate_actors(spec, actors, range(2001, 2101)).mean(1)  # noqa: E731
    evaluation = lambda m: 0.5 * (m["train_revenue"] + m["val_revenue"])  # noqa: E731
    if not a.skip_critic:
        t0 = time.perf_counter()
        st, metrics = train_srl(spec, init_seeds, a.episodes, temperature=a.temperature)
        cfg = al.srl.SRLConfig()
        std_b = float(np.sqrt(cfg.sigma_b[1]))  # paper mode: variance 1 at the end of training
        val_seeds = list(range(1001, 1001 + a.critic_seeds))
        per_seed = []
        for i in range(a.init_seeds):
            actor, critics = jax.tree.map(lambda x, i=i: x[i], (st["actor"], st["critics"]))
            key = jax.random.key(i)
            study = (a.every, a.replicates, cfg.gamma, std_b, cfg.num_candidates, key, a.temperature)
            per_seed.append(critic_study(env, params, actor, critics, val_seeds, *study))
        out["srl"] = _result(test(st["selection"].best_params), evaluation(metrics), t0, test(st["actor"]))
        defined = lambda k: [p[k] for p in per_seed if p[k] is not None]  # noqa: E731
        out["srl"]["critic (mean over init seeds)"] = {
            k: round(float(np.mean(defined(k))), 3) if defined(k) else None for k in per_seed[0]
        }
        out["srl"]["critic per init seed"] = per_seed
        print("srl", json.dumps({k: v for k, v in out["srl"].items() if "per init" not in k}, indent=1))
    if a.oracle:
        t0 = time.perf_counter()
        st, metrics = train_srl(spec, init_seeds, a.episodes, True, a.temperature)
        out["srl_exact_myopic_critic"] = _result(
            test(st["selection"].best_params), evaluation(metrics), t0, test(st["actor"])
        )
        print("srl, exact myopic critic", json.dumps(out["srl_exact_myopic_critic"], indent=1))
    if a.sil:
        t0 = time.perf_counter()
        splits = {"test": range(2001, 2101)}
        res = al.train_and_evaluate(
            "sil", "paper", env, params, splits, expert=expert_parametric_policy(), init_seeds=init_seeds
        )
        out["sil"] = _result(res["revenue"]["test"].mean(1), evaluation(res["metrics"]), t0)
        print("sil", json.dumps(out["sil"], indent=1))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(a.out, json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
