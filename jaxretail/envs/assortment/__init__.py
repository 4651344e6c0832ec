"""Dynamic assortment with hype and saturation (Hoppe et al., arXiv 2505.19053).

Modules: ``types`` (params/state with shapes), ``generator`` (instances), ``env`` (the MNL environment,
choice through :mod:`jaxretail.choice.mnl`), ``policies`` (expert, greedy, random, score -> top-K),
``learned`` (action spaces for learners), ``protocol`` (seed splits, expert episodes, summary rows;
agent-agnostic). The main job is :mod:`jaxretail.jobs.assortment`.
"""

from jaxretail.envs.assortment.env import (
    DynamicAssortment,
    hype_multiplier,
    observation,
    utilities,
)
from jaxretail.envs.assortment.generator import draw_instance
from jaxretail.envs.assortment.policies import (
    expert_parametric_policy,
    expert_policy,
    greedy_policy,
    random_policy,
    scores_topk_policy,
    subset_masks,
    top_k_mask,
)
from jaxretail.envs.assortment.types import AssortmentParams, AssortmentState, make_params

__all__ = [
    "AssortmentParams",
    "AssortmentState",
    "DynamicAssortment",
    "draw_instance",
    "expert_parametric_policy",
    "expert_policy",
    "greedy_policy",
    "hype_multiplier",
    "make_params",
    "observation",
    "random_policy",
    "scores_topk_policy",
    "subset_masks",
    "top_k_mask",
    "utilities",
]
