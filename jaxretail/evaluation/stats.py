"""Summary statistics, re-exported from :mod:`jaxretail.core.stats` (where system protocols reach them)."""

from jaxretail.core.stats import MeanSE, mean_se

__all__ = ["MeanSE", "mean_se"]
