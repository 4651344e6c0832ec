"""Product + discount offers matched to willingness to pay (Mahdavian, Moradi, Bahrak, Algorithms
18(11):706, 2025; ``shared/specs/pricing_and_offers.md`` §2).

Modules: ``types`` (actions, Tables 3 and 5, params/state), ``generator`` (simulated shoppers from the
coupon population with known willingness to pay), ``env`` (5-action contextual-bandit episodes over
samples), ``policies`` (no offer, uniform discount, oracle), ``metrics`` (the paper's metrics in JAX),
``revenue`` (what the chosen offers earn on simulated shoppers), ``protocol`` (gradient-boosting
baseline, fixed policies' scores, revenue table; agent-agnostic). The dataset builder is
:mod:`jaxretail.data.offers`, the main job :mod:`jaxretail.jobs.offers`.
"""

from jaxretail.envs.offers.env import OfferEnv, make_params, reward
from jaxretail.envs.offers.generator import occasion_outcome, simulate
from jaxretail.envs.offers.metrics import SCALAR_METRICS, classification_report, confusion_matrix
from jaxretail.envs.offers.policies import no_offer, oracle, uniform_discount
from jaxretail.envs.offers.revenue import OUTCOMES, offer_outcome, outcomes, summary
from jaxretail.envs.offers.types import (
    ACTION_NAMES,
    DEFAULT_EDGES,
    DEFAULT_LEVELS,
    FEATURES,
    NUM_ACTIONS,
    REWARD_TABLE,
    WEIGHT_TABLE,
    OfferParams,
    OfferState,
    check_edges_levels,
)

__all__ = [
    "ACTION_NAMES", "DEFAULT_EDGES", "DEFAULT_LEVELS", "FEATURES", "NUM_ACTIONS", "OUTCOMES", "REWARD_TABLE",
    "SCALAR_METRICS", "WEIGHT_TABLE", "OfferEnv", "OfferParams", "OfferState", "check_edges_levels",
    "classification_report", "confusion_matrix", "make_params", "no_offer", "occasion_outcome",
    "offer_outcome",
    "oracle", "outcomes", "reward", "simulate", "summary", "uniform_discount",
]  # fmt: skip
