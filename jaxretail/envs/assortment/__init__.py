"""Dynamic assortment with hype and saturation (Hoppe et al., arXiv 2505.19053)."""

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
