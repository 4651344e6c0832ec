"""Vectorized NumPy reference of one coupon-benchmark week (the benchmark baseline).

Same model and work as :func:`jaxretail.envs.coupon.env.simulate_week`: visit from last week's state;
for visitors the U x I utilities (per-(customer, product) LogNormal latents, the observed feature
``X = sqrt(1 + s^2) z`` and Gumbel noise drawn every week), category inclusive values with
``np.add.reduceat`` over the contiguous category blocks, logistic category purchase, MNL product
choice by inverse CDF, shifted-Poisson quantities; then next week's observed-feature mean for every
customer. Customers are processed in blocks of ``block`` rows with whole-array NumPy operations.
"""

from __future__ import annotations

import numpy as np


class NumpyCouponWeek:
    def __init__(self, scenario, cfg, block: int = 1000, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.block = block
        g = lambda x: np.asarray(x, np.float64)
        self.base_price, self.brand = g(scenario.base_price), g(scenario.brand)
        self.beta_w_i, self.q0 = g(scenario.beta_w_product), g(scenario.quantity_intercept)
        self.g0, self.g1 = g(scenario.category_intercept), g(scenario.category_slope)
        self.beta_w_u, self.theta = g(scenario.beta_w_customer), g(scenario.visit_inertia)
        self.vs0, self.vs1, self.vs2 = (
            float(scenario.visit_intercept),
            float(scenario.visit_slope),
            float(scenario.marketing_weight),
        )
        self.starts = np.concatenate([[0], np.cumsum(cfg.category_sizes)[:-1]])
        self.cat = np.repeat(np.arange(len(cfg.category_sizes)), cfg.category_sizes)
        kw = lambda spec: dict(spec.kwargs)
        self.bz, self.bx, self.qs = kw(cfg.beta_z), kw(cfg.beta_x), kw(cfg.quantity_slope)
        self.c, self.noise = cfg.price_scale, cfg.utility_noise_scale
        U = len(self.beta_w_u)
        self.p_visit, self.visited, self.sv = np.ones(U), np.ones(U, bool), np.zeros(U)
        self.marketing = np.zeros(U)
        self.first = True

    def week(self, coupon: np.ndarray, price: np.ndarray) -> np.ndarray:
        """One week; returns revenue per customer ``[U]``."""
        rng, U, I = self.rng, len(self.beta_w_u), len(self.base_price)  # noqa: E741
        if not self.first:
            s = 1 / (
                1
                + np.exp(
                    -(self.vs0 + self.vs1 * np.where(self.visited, self.sv, 0) + self.vs2 * self.marketing)
                )
            )
            self.p_visit = (1 - self.theta) * s + self.theta * self.p_visit
        self.first = False
        self.visited = rng.random(U) < self.p_visit
        revenue = np.zeros(U)
        vis = np.flatnonzero(self.visited)
        log_p = np.log(price)
        for a in range(0, len(vis), self.block):
            ids = vis[a : a + self.block]
            n = len(ids)
            beta_z = np.exp(self.bz["loc"] + self.bz["scale"] * rng.standard_normal((n, I)))
            beta_x = np.exp(self.bx["loc"] + self.bx["scale"] * rng.standard_normal((n, I)))
            x = np.sqrt(1 + rng.standard_normal((n, I)) ** 2) * rng.standard_normal((n, I))
            eps = rng.gumbel(0.0, self.noise, (n, I))
            paid = 1 - coupon[ids]
            mu = (
                beta_x * x
                + beta_z * self.brand
                + self.c * self.beta_w_u[ids, None] * self.beta_w_i * (log_p + np.log(paid)[:, None])
                + eps
            )
            m = mu.max(1, keepdims=True)
            w = np.exp(mu - m)
            cat_sum = np.add.reduceat(w, self.starts, axis=1)  # [n, J]
            cv = m + np.log(cat_sum)
            self.sv[ids] = m[:, 0] + np.log(cat_sum.sum(1))
            buy = rng.random(cat_sum.shape) < 1 / (1 + np.exp(-(self.g0 + self.g1 * cv)))
            cum = np.cumsum(w, axis=1)
            before = np.concatenate([np.zeros((n, 1)), cum[:, self.starts[1:] - 1]], axis=1)  # [n, J]
            target = before + rng.random(cat_sum.shape) * cat_sum
            rows, cats = np.nonzero(buy)
            choice = (cum[rows] < target[rows, cats][:, None]).sum(1)  # first product reaching the target
            choice = np.minimum(choice, self.starts[cats] + np.bincount(self.cat)[cats] - 1)
            slope = np.exp(self.qs["loc"] + self.qs["scale"] * rng.standard_normal(len(rows)))
            lam = np.exp(self.q0[choice] + slope * mu[rows, choice])
            qty = 1 + rng.poisson(lam)
            np.add.at(revenue, ids[rows], qty * paid[rows] * price[choice])
        # next week's observed-feature mean for everyone, and marketing feature (random mode)
        for a in range(0, U, self.block):
            n = min(self.block, U - a)
            _ = (np.sqrt(1 + rng.standard_normal((n, I)) ** 2) * rng.standard_normal((n, I))).mean(1)
        m = rng.standard_normal(U)
        self.marketing = m + np.abs(rng.standard_normal(U)) * rng.standard_normal(U)
        return revenue
