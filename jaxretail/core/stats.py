"""Summary statistics for per-episode and per-simulation results (shared by every layer above core)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class MeanSE(NamedTuple):
    """Mean, standard error of the mean (ddof=1) and sample size."""

    mean: float
    se: float
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.2f} +- {self.se:.2f}"


def mean_se(values, axis: int = 0) -> MeanSE:
    """Mean and standard error ``std(ddof=1) / sqrt(n)`` of ``values`` along ``axis``.

    With ``n = 1`` the standard error is NaN (it is not defined).
    """
    x = np.asarray(values, dtype=np.float64)
    n = x.shape[axis]
    se = x.std(axis=axis, ddof=1) / np.sqrt(n) if n > 1 else np.full(x.mean(axis=axis).shape, np.nan)
    mean = x.mean(axis=axis)
    if np.ndim(mean) == 0:
        return MeanSE(float(mean), float(se), int(n))
    return MeanSE(mean, se, int(n))
