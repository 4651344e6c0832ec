"""Evaluation protocols, statistics and plots."""

from jaxretail.evaluation.episodes import (
    episode_keys,
    evaluate_policy,
    parse_seed_range,
    summarize_returns,
)
from jaxretail.evaluation.stats import MeanSE, mean_se

__all__ = [
    "MeanSE",
    "episode_keys",
    "evaluate_policy",
    "mean_se",
    "parse_seed_range",
    "summarize_returns",
]
