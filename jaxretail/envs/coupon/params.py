"""Validated environment params of the coupon simulator, its static layout and model options."""

from __future__ import annotations

import functools

import jax

from jaxretail.core.validation import check_int
from jaxretail.envs.coupon import customer as cm
from jaxretail.envs.coupon.configs import ScenarioConfig, validate
from jaxretail.envs.coupon.layout import TileLayout, make_layout
from jaxretail.envs.coupon.types import COUPON_SCOPES, UTILITY_CLIPS, CouponParams, Scenario  # noqa: F401 (re-exported)

SUB_BLOCK = 32  # default sub-block on CPU; default block sizes are multiples of this
_SUB_BLOCK = SUB_BLOCK  # former name
# (block_size, sub_block_size) per backend: on CPU a 128-visitor block whose utilities are filled 32
# customers at a time stays in cache; an accelerator gets one large chunk of visitors per loop step
# (a loop of small blocks would starve it), computed at once
BLOCK_SIZES = {"cpu": (128, 32)}
ACCELERATOR_BLOCK_SIZES = (8192, 8192)


def default_block_sizes(platform: str | None = None) -> tuple[int, int]:
    """``(block_size, sub_block_size)`` for ``platform`` (``"cpu"``, ``"gpu"``, ``"tpu"``; default: the
    default backend)."""
    return BLOCK_SIZES.get(platform or jax.default_backend(), ACCELERATOR_BLOCK_SIZES)


def make_params(
    scenario: Scenario,
    config: ScenarioConfig,
    *,
    block_size: int | None = None,
    sub_block_size: int | None = None,
    platform: str | None = None,
    legacy_coupling: bool = False,
    next_week_price_quirk: bool = False,
    utility_cap: float | None = None,
    utility_clip: str = "none",
    discount_factor: float = 1.0,
    coupon_scope: str = "store",
    debug: bool = False,
    mode: str | None = None,
) -> CouponParams:
    """Validated :class:`CouponParams` (errors name the field, the value and the rule).

    Args:
      block_size: visitors per streamed block (a positive integer; any size gives the same results,
        multiples of 64 run best on CPU, and the single-customer view uses 1); default by backend
        (:func:`default_block_sizes` of ``platform``), at most the population rounded up to 64.
      sub_block_size: customers whose utilities are computed at once inside a block (a positive
        divisor of ``block_size``); default by backend (64 on CPU, the whole block on accelerators),
        or the largest divisor of ``block_size`` below it.
      platform: backend whose block sizes are the defaults (default: JAX's default backend).
      utility_cap: a fixed upper cap on utilities (finite), or ``None``.
      utility_clip: ``"percentile"`` caps utilities each week at ``config.utility_clip_percentile`` of
        the week's customer x product utilities (all customers, exact; :mod:`.clip`), as the original;
        ``"none"`` does not (see :mod:`.modes` for clean mode's choice).
      debug: check every step (host callback): an invalid action or a non-finite visit probability,
        store value or revenue raises instead of only being flagged in ``info``.
      mode: ``"clean"`` or ``"paper"`` sets ``legacy_coupling``, ``next_week_price_quirk`` and
        ``utility_clip`` at once (:mod:`.modes`); the scenario must be sampled in the same mode.

    Results do not depend on ``block_size``, ``sub_block_size`` or ``platform``.
    """
    validate(config)
    if mode is not None:
        from jaxretail.envs.coupon.modes import mode_settings

        m = mode_settings(mode)
        legacy_coupling, next_week_price_quirk = m.legacy_coupling, m.next_week_price_quirk
        utility_clip = m.utility_clip
    num_customers = int(scenario.beta_w_customer.shape[0])
    default_block, default_sub = default_block_sizes(platform)
    if block_size is None:
        block_size = min(default_block, -(-num_customers // SUB_BLOCK) * SUB_BLOCK)
    block_size = check_int("block_size", block_size, 1)
    if sub_block_size is None:  # the largest divisor of the block up to the backend's sub-block
        cap = min(default_sub, int(block_size))
        sub_block_size = max(d for d in range(1, cap + 1) if block_size % d == 0)
    if isinstance(utility_cap, int | float) and not isinstance(utility_cap, bool):
        utility_cap = float(utility_cap)
    if isinstance(discount_factor, int) and not isinstance(discount_factor, bool):
        discount_factor = float(discount_factor)
    return CouponParams(  # checks every field (types.check_coupon_params)
        scenario=scenario,
        config=config,
        num_customers=num_customers,
        block_size=block_size,
        sub_block_size=sub_block_size,
        legacy_coupling=legacy_coupling,
        next_week_price_quirk=next_week_price_quirk,
        utility_cap=utility_cap,
        utility_clip=utility_clip,
        debug=debug,
        discount_factor=discount_factor,
        coupon_scope=coupon_scope,
    )


@functools.lru_cache(maxsize=16)
def layout_for(category_sizes: tuple[int, ...]) -> TileLayout:
    return make_layout(category_sizes)


def _lognormal(spec) -> tuple[float, float]:
    kw = dict(spec.kwargs)
    return float(kw["loc"]), float(kw["scale"])


def model_options(params: CouponParams) -> cm.ModelOptions:
    cfg = params.config
    return cm.ModelOptions(
        beta_z=_lognormal(cfg.beta_z),
        beta_x=_lognormal(cfg.beta_x),
        quantity_slope=_lognormal(cfg.quantity_slope),
        price_scale=cfg.price_scale,
        noise_scale=cfg.utility_noise_scale,
        legacy_coupling=params.legacy_coupling,
        num_products=cfg.num_products,
    )
