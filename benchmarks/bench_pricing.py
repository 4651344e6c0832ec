"""Throughput of the dynamic pricing market: JAX (vmap over SKUs, jitted scan over days) against a
vectorized NumPy implementation of the same daily step, timed in the same run; and the update rates
of the DDPG and DQfD trainers.

Each SKU-day does the same work in both: the bin-centre price of a random action, the MNL purchase
probability (SKU vs competitor vs no purchase, log-sum-exp), a Poisson count from one uniform
(40-term inverse CDF / normal quantile), revenue, profit, RCR, PCR, the DRCR reward, the look-back
window update (a ring-buffer row written in place in JAX, a roll in NumPy; the same observation), the next
day's traffic, shock and competitor draws, and the observation vector.
Compile time is reported apart; figures are medians of ``--reps`` runs.

    python benchmarks/bench_pricing.py                       # 10k and 100k SKUs
    python benchmarks/bench_pricing.py --sizes 10000 --days 5 --reps 2
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import ndtri

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import peak_memory_bytes, time_jit, time_python  # noqa: E402

from jaxretail.agents import ddpg, dqfd  # noqa: E402
from jaxretail.agents.training import make_train  # noqa: E402
from jaxretail.core.validation import cli_parser, int_at_least  # noqa: E402
from jaxretail.core.vector import batched  # noqa: E402
from jaxretail.envs.pricing import DynamicPricing, group_params  # noqa: E402
from jaxretail.utils import atomic_write_text  # noqa: E402

ENV = DynamicPricing()


def jax_rollout(params, n, days):
    def run(state, key):
        def day(carry, k):
            state, total = carry
            k_a, k_s = jax.random.split(k)
            a = jax.random.randint(k_a, (n,), 0, params.num_prices)
            obs, state, r, *_ = jax.vmap(ENV.step_env, in_axes=(0, 0, 0, None))(
                jax.random.split(k_s, n), state, a, params
            )
            # every output feeds the result, so XLA cannot drop part of the step
            return (state, total + jnp.sum(r) + jnp.sum(obs)), None

        (state, total), _ = jax.lax.scan(day, (state, 0.0), jax.random.split(key, days))
        return total, state

    return run


def _age_order(ring, t):
    """Rows ``[N, size, ...]`` of the env's ring buffers oldest -> newest (row ``(t - 1) mod size`` is
    the oldest); a freshly reset state (``t = 1``) is already in that order and is returned as is."""
    size = ring.shape[1]
    start = (t - 1) % size
    if not start.any():
        return ring
    idx = (start[:, None] + np.arange(size)) % size
    return np.take_along_axis(ring, idx.reshape(idx.shape + (1,) * (ring.ndim - 2)), axis=1)


class NumpyPricing:
    """The daily step of :class:`DynamicPricing` (daily mode, DRCR reward) on arrays ``[N]``."""

    def __init__(self, state, params, seed=0):
        g = lambda x: np.asarray(x, np.float64)
        self.sku = {f: g(getattr(state.sku, f)) for f in state.sku.__dataclass_fields__}
        # the env keeps ring buffers; the reference rolls plain arrays kept oldest -> newest
        t = np.asarray(state.t)
        self.history, self.lags = _age_order(g(state.history), t), _age_order(g(state.basis_lags), t)
        self.shock, self.uv, self.comp = g(state.shock), g(state.uv), g(state.competitor_rel)
        self.reviews, self.t = g(state.reviews), 1
        self.k, self.horizon, self.rng = params.num_prices, params.horizon, np.random.default_rng(seed)

    def poisson(self, u, mean):
        m = np.minimum(mean, 12.0)
        pmf = np.exp(-m)
        cdf, k = pmf.copy(), np.zeros_like(mean)
        for j in range(1, 40):
            k += u > cdf
            pmf = pmf * m / j
            cdf += pmf
        normal = np.maximum(np.floor(mean + np.sqrt(mean) * ndtri(np.clip(u, 1e-7, 1 - 1e-7)) + 0.5), 0.0)
        return np.where(mean <= 12.0, k, normal)

    def step(self, action):
        s, n = self.sku, action.shape[0]
        price = s["p_min"] + (action + 0.5) / self.k * (s["p_max"] - s["p_min"])
        u_sku = s["intercept"] + self.shock - s["price_slope"] * price
        u_comp = s["competitor_intercept"] + self.shock - s["price_slope"] * self.comp * s["list_price"]
        m = np.maximum(np.maximum(u_sku, u_comp), 0.0)
        prob = np.exp(u_sku - m) / (np.exp(-m) + np.exp(u_sku - m) + np.exp(u_comp - m))
        units = self.poisson(self.rng.uniform(1e-7, 1.0, n), self.uv * prob)
        revenue, profit = price * units, (price - s["unit_cost"]) * units
        ok = self.uv > 0
        rcr = np.where(ok, revenue / np.where(ok, self.uv, 1.0), 0.0)
        pcr = np.where(ok, profit / np.where(ok, self.uv, 1.0), 0.0)
        before_ok = self.lags[:, 0, 1] > 0
        reward = np.where(ok & before_ok, rcr - self.lags[:, 0, 0], 0.0) / s["list_price"]
        p_ref = s["list_price"]
        row = np.stack(
            [
                price / p_ref,
                1 - price / p_ref,
                np.log1p(units),
                np.log1p(revenue / p_ref),
                self.uv / np.maximum(s["base_uv"], 1.0),
                10 * rcr / p_ref,
                10 * pcr / p_ref,
                self.comp,
            ],
            1,
        )
        self.history = np.concatenate([self.history[:, 1:], row[:, None]], axis=1)
        self.lags = np.concatenate([self.lags[:, 1:], np.stack([rcr, ok.astype(float)], 1)[:, None]], axis=1)
        self.reviews = self.reviews + units
        self.t += 1
        e = self.rng.standard_normal((3, n))
        season = 1 + s["season_amplitude"] * np.sin(2 * np.pi * (self.t + s["season_phase"]) / 7)
        sd = s["traffic_noise"]
        self.uv = np.round(s["base_uv"] * season * np.exp(sd * e[0] - 0.5 * sd * sd))
        self.shock = s["shock_rho"] * self.shock + s["shock_sd"] * np.sqrt(1 - s["shock_rho"] ** 2) * e[1]
        c = s["competitor_noise"]
        self.comp = s["competitor_price"] * np.exp(c * e[2] - 0.5 * c * c)
        dow = 2 * np.pi * (self.t + s["season_phase"]) / 7
        static = np.stack(
            [
                s["p_min"] / p_ref,
                s["p_max"] / p_ref,
                s["unit_cost"] / p_ref,
                np.sin(dow),
                np.cos(dow),
                np.ones(n),
                np.full(n, self.t / self.horizon),
                np.log1p(self.reviews) / 10,
            ],
            1,
        )
        obs = np.concatenate([self.history.reshape(n, -1), static], 1)
        return obs, reward


def numpy_rollout(state, params, days):
    env = NumpyPricing(state, params)
    n = state.t.shape[0]
    for _ in range(days):
        env.step(env.rng.integers(0, params.num_prices, n))


def pricing_trainer(name: str, updates: int, envs: int = 64, batch: int = 256, hidden=(256, 256)):
    """The DQfD (discrete areas) or DDPG (continuous prices) trainer timed here and by
    ``scripts/bench.py`` (FMCG-like SKUs, ``envs`` SKUs stepped per update, n-step 10)."""
    mod, cfg_cls, action_type = {
        "dqfd": (dqfd, dqfd.DQfDConfig, "discrete"),
        "ddpg": (ddpg, ddpg.DDPGConfig, "continuous"),
    }[name]
    params = group_params("fmcg", num_prices=10, reward_scale=100.0, action_type=action_type)
    cfg = cfg_cls(
        num_updates=updates,
        batch_size=batch,
        buffer_size=max(50_000, batch),
        learning_starts=batch,
        hidden=tuple(hidden),
        n_step=10,
    )
    return mod.make_trainer(cfg, batched(ENV, params, envs))


def agent_rates(reps):
    out = {}
    for name in ("dqfd", "ddpg"):
        updates = 200
        t = time_jit(make_train(pricing_trainer(name, updates)), (jax.random.key(0),), repeats=reps)
        out[name] = {
            "updates_per_s": updates / t.seconds,
            "compile_s": t.compile_s,
            "batch": 256,
            "hidden": [256, 256],
            "env_steps_per_update": 64,
        }
        print(f"{name}: {updates / t.seconds:,.0f} updates/s (batch 256, 2 x 256 MLP, 64 SKUs per update)")
    return out


def main(argv=None):
    ap = cli_parser(__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int_at_least(1), nargs="+", default=[10_000, 100_000])
    ap.add_argument("--days", type=int_at_least(1), default=30, help="days per timed rollout (one episode)")
    ap.add_argument("--reps", type=int_at_least(1), default=5, help="timed rollouts; the median is reported")
    ap.add_argument("--no-agents", action="store_true")
    ap.add_argument("--out", default="results/bench_pricing")
    a = ap.parse_args(argv)
    if Path(a.out).exists() and not Path(a.out).is_dir():  # refused before any compute
        ap.error(f"--out must be a folder, got the file {a.out!r}")
    params = group_params("fmcg", num_prices=10, reward="drcr")
    rows = []
    for n in a.sizes:
        _, state = jax.jit(jax.vmap(ENV.reset, in_axes=(0, None)))(
            jax.random.split(jax.random.key(0), n), params
        )
        t = time_jit(jax_rollout(params, n, a.days), (state, jax.random.key(1)), repeats=a.reps)
        # warmed up like the JAX side (its first rollout pays the copy of the state off the device)
        t_np = time_python(lambda state=state: numpy_rollout(state, params, a.days), repeats=a.reps, warmup=1)
        work = n * a.days
        rows.append(
            {
                "skus": n,
                "days": a.days,
                "jax_sku_days_per_s": work / t.seconds,
                "numpy_sku_days_per_s": work / t_np,
                "speedup": t_np / t.seconds,
                "compile_s": t.compile_s,
                "xla_buffer_bytes": t.buffer_bytes,
            }
        )
        print(
            f"{n:>7} SKUs: JAX {work / t.seconds:,.0f} SKU-days/s, NumPy {work / t_np:,.0f} SKU-days/s, "
            f"x{t_np / t.seconds:.1f} (compile {t.compile_s:.1f} s)"
        )
    agents = {} if a.no_agents else agent_rates(a.reps)
    meta = {
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_avg": os.getloadavg(),
        "jax": jax.__version__,
        "device": str(jax.devices()[0]),
        "peak_rss_bytes": peak_memory_bytes(jax.devices()[0]),
    }
    print(f"peak memory {meta['peak_rss_bytes'] / 2**20:,.0f} MiB, load {meta['load_avg']}")
    atomic_write_text(
        Path(a.out) / "bench_pricing.json",
        json.dumps({"meta": meta, "env": rows, "agents": agents}, indent=1),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
