"""What every system shares for evaluation: seeded episodes (``episodes``), summary statistics (``stats``,
re-exported from :mod:`jaxretail.core.stats`), tables and run metadata (``tables``), plots (``plots``) and
off-policy estimators (``off_policy``). A system's own metrics and protocol live in its package
(``jaxretail.envs.<system>.metrics`` / ``.protocol``); the main jobs in :mod:`jaxretail.jobs`."""

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
