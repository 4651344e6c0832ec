"""Vectorized NumPy reference of the dynamic assortment step, used as the benchmark baseline.

The same model as :mod:`jaxretail.envs.assortment` (utility, MNL choice by inverse CDF with one
uniform per step, five-slot hype history, saturation x1.01, paper observation), written with
whole-batch NumPy operations on ``[B, N]`` float32 arrays and in-place updates.
"""

from __future__ import annotations

import itertools

import numpy as np

LAGS = np.array([0.02, -0.005, -0.005, -0.005, -0.005], np.float32)


class NumpyAssortment:
    def __init__(self, num_envs: int, n: int = 20, d: int = 2, k: int = 4, horizon: int = 80, seed: int = 0):
        self.B, self.N, self.d, self.K, self.T = num_envs, n, d, k, horizon
        self.rng = np.random.default_rng(seed)
        self.fw = (0.3 + 0.2 * np.arange(d)).astype(np.float32)

    def reset(self):
        B, N, d = self.B, self.N, self.d
        vals = self.rng.uniform(1, 10, (d + 3, B, N)).astype(np.float32)
        self.f, self.h, self.s, self.p = vals[:d], vals[d].copy(), vals[d + 1].copy(), vals[d + 2].copy()
        self.h0, self.s0 = self.h.copy(), self.s.copy()
        self.dh, self.ds = np.zeros_like(self.h), np.zeros_like(self.s)
        self.hist = np.full((B, 5), N, np.int64)
        self.t = 1
        self.static_utility = np.einsum("k,kbn->bn", self.fw, self.f) - 0.8 * self.p
        return self.observation()

    def observation(self):
        time_row = np.full_like(self.p, 1 + 9 * (self.t - 1) / self.T)
        return np.concatenate(
            [
                self.f,
                np.stack(
                    [self.h, self.s, self.p, time_row, self.dh, self.ds, self.h - self.h0, self.s - self.s0]
                ),
            ]
        )  # [d + 8, B, N]

    def utilities(self):
        return self.static_utility + 0.6 * self.h - 0.4 * self.s

    def step(self, mask: np.ndarray):
        """``mask`` [B, N] bool with K ones; returns (obs, reward [B])."""
        B, N = self.B, self.N
        theta = self.utilities()
        m = np.maximum(np.where(mask, theta, -np.inf).max(1), 0.0)
        w = np.where(mask, np.exp(theta - m[:, None]), 0.0).astype(np.float32)
        cum = np.cumsum(np.concatenate([w, np.exp(-m)[:, None].astype(np.float32)], 1), axis=1)
        u = self.rng.random(B, np.float32)
        choice = (cum < ((1 - u) * cum[:, -1])[:, None]).sum(1)
        bought = choice < N
        rows = np.flatnonzero(bought)
        reward = np.zeros(B, np.float32)
        reward[rows] = self.p[rows, choice[rows]]
        self.hist[:, 1:] = self.hist[:, :-1]
        self.hist[:, 0] = choice
        mult = np.ones((B, N), np.float32)
        for lag in range(5):
            r = np.flatnonzero(self.hist[:, lag] < N)
            mult[r, self.hist[r, lag]] += LAGS[lag]
        new_h = self.h * mult
        new_s = self.s.copy()
        new_s[rows, choice[rows]] *= 1.01
        self.dh, self.ds, self.h, self.s = new_h - self.h, new_s - self.s, new_h, new_s
        self.t += 1
        return self.observation(), reward

    # -- policies on [B, N] --------------------------------------------------------------------
    def random_policy(self):
        idx = self.rng.random((self.B, self.N), np.float32).argpartition(self.K, axis=1)[:, : self.K]
        mask = np.zeros((self.B, self.N), bool)
        np.put_along_axis(mask, idx, True, axis=1)
        return mask

    def expert_policy(self, chunk: int = 1000):
        """Brute force over all C(N, K) subsets, ``chunk`` environments per matrix product."""
        if not hasattr(self, "_subsets"):
            combos = list(itertools.combinations(range(self.N), self.K))
            self._subsets = np.zeros((len(combos), self.N), np.float32)
            for i, c in enumerate(combos):
                self._subsets[i, list(c)] = 1
        theta = self.utilities()
        m = np.maximum(theta.max(1), 0.0)[:, None]
        v = np.exp(theta - m)
        v0 = np.exp(-m)
        mask = np.zeros((self.B, self.N), bool)
        for a in range(0, self.B, chunk):
            b = min(a + chunk, self.B)
            num = (v[a:b] * self.p[a:b]) @ self._subsets.T
            den = v0[a:b] + v[a:b] @ self._subsets.T
            mask[a:b] = self._subsets[np.argmax(num / den, axis=1)] > 0
        return mask


def run_episode(env: NumpyAssortment, policy: str, num_steps: int) -> np.ndarray:
    """Roll ``num_steps`` steps; returns the episode returns ``[B]``."""
    env.reset()
    total = np.zeros(env.B, np.float32)
    for _ in range(num_steps):
        mask = env.random_policy() if policy == "random" else env.expert_policy()
        _, r = env.step(mask)
        total += r
    return total
