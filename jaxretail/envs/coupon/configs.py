"""Named scenario configurations of the RetailSynth coupon benchmark (``shared/specs/coupon.md`` §1.8).

* ``"benchmark"`` -- ``retailsynth-agentsim: workflow/cfg/synthetic_data/no_marketing.yaml``, the
  configuration behind the published coupon results (Xia et al., arXiv 2405.10469), marketing mode ``random``.
* ``"hfhd"`` -- the high-frequency configuration ``hfhd.yaml`` (marketing mode ``discount_coupon``).
* ``"calibrated"`` -- the Complete Journey calibration of Xia et al. (arXiv 2312.14095), on the benchmark
  catalogue of 30 category blocks.

Every distribution is named by its numpyro class and keyword arguments (numpyro conventions:
``Beta(concentration1=alpha, concentration0=beta)``, ``TruncatedNormal(loc, scale, low, high)``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpyro.distributions as dist

# Category block sizes of the benchmark catalogue (2,514 products in 30 contiguous categories).
BENCHMARK_CATEGORY_SIZES = (
    59, 5, 2, 63, 18, 145, 93, 61, 20, 3, 93, 93, 5, 89, 84,
    76, 44, 135, 36, 28, 112, 87, 150, 132, 241, 178, 34, 301, 14, 113,
)  # fmt: skip
MARKETING_MODES = ("random", "discount", "discount_coupon")


@dataclass(frozen=True)
class Dist:
    """A numpyro distribution by name and keyword arguments: ``Dist.of("Beta", concentration1=50, ...)``."""

    name: str
    kwargs: tuple[tuple[str, float], ...]

    @classmethod
    def of(cls, name: str, **kwargs: float) -> Dist:
        return cls(name, tuple(sorted(kwargs.items())))

    def build(self) -> dist.Distribution:
        return getattr(dist, self.name)(**dict(self.kwargs))

    def __str__(self) -> str:
        return f"{self.name}({', '.join(f'{k}={v}' for k, v in self.kwargs)})"


def _beta(a: float, b: float) -> Dist:
    return Dist.of("Beta", concentration1=a, concentration0=b)


def _tn(loc: float, scale: float, low: float | None = None, high: float | None = None) -> Dist:
    kw = {"loc": loc, "scale": scale}
    if low is not None:
        kw["low"] = low
    if high is not None:
        kw["high"] = high
    return Dist.of("TruncatedNormal", **kw)


@dataclass(frozen=True)
class ScenarioConfig:
    """Distributions of the latent parameters of one simulation (shapes in brackets).

    U = customers, I = products, J = categories. Product-level base-price parameters
    (``alpha_0``, ``alpha_1``, ``brand_mean``) are drawn with the fixed key 0, so base prices are
    identical in every simulation, as in the original code.
    """

    name: str = "benchmark"
    category_sizes: tuple[int, ...] = BENCHMARK_CATEGORY_SIZES
    # shelf prices (high-low chain)
    discount_depth: Dist = _beta(50, 50)  # delta_it, fresh every week [I]
    discount_start: Dist = _beta(40, 60)  # a01_i = P(S=1 | S_prev=0) [I]
    discount_stay: Dist = _beta(40, 60)  # a11_i = P(S=1 | S_prev=1) [I]
    min_price: float = 1.0  # p_min
    # base price P_i = max(alpha_0i + alpha_1 Z_i, p_min), fixed key 0
    alpha_0: Dist = _tn(1.3, 0.5, low=0.0)  # [I]
    alpha_1: Dist = Dist.of("LogNormal", loc=0.8, scale=1.2)  # [1]
    brand_mean: Dist = Dist.of(
        "HalfNormal", scale=1.0
    )  # mu_j = sigma_j of Z_i ~ TruncN(mu_j, sigma_j, >= 0) [J]
    # utility mu = beta_x X + beta_z Z + c beta_w_u beta_w_i log(price) + eps
    beta_z: Dist = Dist.of("LogNormal", loc=1.0, scale=0.4)  # [U, I], streamed
    beta_x: Dist = Dist.of("LogNormal", loc=-1.0, scale=1.0)  # [U, I], streamed
    beta_w_product: Dist = _tn(-3.0, 2.0, high=0.0)  # [I]
    beta_w_customer: Dist = _tn(-3.0, 1.5, high=0.0)  # [U]
    price_scale: float = -1.4  # c
    utility_noise_scale: float = 0.1  # Gumbel(0, scale) per (u, i, t)
    utility_clip_percentile: float = 99.99  # 100 = off
    # category purchase p = sigmoid(g0_j + g1_j CV)
    category_intercept: Dist = Dist.of("Normal", loc=-5.0, scale=0.5)  # [J]
    category_slope: Dist = _tn(0.1, 0.04, low=0.0, high=0.12)  # [J]
    # store visit
    visit_inertia: Dist = Dist.of("Uniform", low=0.25, high=0.45)  # theta_u [U]
    visit_intercept: Dist = Dist.of("Gumbel", loc=4.0, scale=0.1)  # gamma^s_0 [1]
    visit_slope: Dist = _tn(0.01, 0.01, low=0.0)  # gamma^s_1 [1]
    marketing_weight: Dist = Dist.of("Uniform", low=5.0, high=6.0)  # gamma^s_2 [1]
    marketing_mode: str = "random"
    # quantity N = 1 + Poisson(exp(g0_i + g1_ui mu))
    quantity_intercept: Dist = Dist.of("Gumbel", loc=-3.0, scale=0.1)  # [I]
    quantity_slope: Dist = Dist.of("LogNormal", loc=-4.0, scale=0.1)  # [U, I], streamed
    redemption_rate: float = 1.0  # rho_u
    coupon_levels: tuple[float, ...] = field(default_factory=lambda: tuple(0.05 * k for k in range(11)))

    @property
    def num_products(self) -> int:
        return int(sum(self.category_sizes))

    @property
    def num_categories(self) -> int:
        return len(self.category_sizes)

    def __post_init__(self):
        # the config is a static (hashed) field of the env params: sequences become tuples
        for name in ("category_sizes", "coupon_levels"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        if not isinstance(self.name, str):
            raise ValueError(f"name must be a string, got name={self.name!r}")
        validate(self)  # a direct ScenarioConfig(...) is checked like get_config

    def replace(self, **changes) -> ScenarioConfig:
        return dataclasses.replace(self, **changes)  # validated by __post_init__


def validate(cfg: ScenarioConfig) -> ScenarioConfig:
    """Check every field before any compute; errors name the field, the value and the rule."""
    if not cfg.category_sizes or any(int(s) != s or s < 1 for s in cfg.category_sizes):
        raise ValueError(
            f"category_sizes must be positive integers, got category_sizes={cfg.category_sizes!r}"
        )
    for name in (
        "min_price",
        "utility_noise_scale",
        "price_scale",
        "utility_clip_percentile",
        "redemption_rate",
    ):
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {name}={value!r}")
    for name in ("min_price", "utility_noise_scale"):
        if not getattr(cfg, name) >= 0:
            raise ValueError(f"{name} must be >= 0, got {name}={getattr(cfg, name)!r}")
    if not 0.0 < cfg.utility_clip_percentile <= 100.0:
        raise ValueError(f"utility_clip_percentile must be in (0, 100], got {cfg.utility_clip_percentile!r}")
    if not 0.0 <= cfg.redemption_rate <= 1.0:
        raise ValueError(
            f"redemption_rate is a probability in [0, 1], got redemption_rate={cfg.redemption_rate!r}"
        )
    if cfg.marketing_mode not in MARKETING_MODES:
        raise ValueError(f"marketing_mode must be one of {MARKETING_MODES}, got {cfg.marketing_mode!r}")
    levels = cfg.coupon_levels
    if not levels or any(not (0.0 <= c < 1.0) or math.isnan(c) for c in levels):
        raise ValueError(f"coupon_levels must be non-empty and each in [0, 1), got coupon_levels={levels!r}")
    defaults = {f.name: f.default for f in dataclasses.fields(ScenarioConfig)}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if isinstance(defaults[f.name], Dist) and not isinstance(value, Dist):
            raise ValueError(
                f"{f.name} is a distribution: it must be a Dist, e.g. Dist.of('Normal', loc=0.0, scale=1.0), "
                f"got {f.name}={value!r}"
            )
        if isinstance(value, Dist):
            if not hasattr(dist, value.name):
                raise ValueError(f"{f.name}: unknown numpyro distribution {value.name!r}")
            kw = dict(value.kwargs)
            for k, v in kw.items():
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise ValueError(f"{f.name}: {k} must be a finite number, got {value}")
            if f.name in ("beta_z", "beta_x", "quantity_slope") and value.name != "LogNormal":
                raise ValueError(f"{f.name} is streamed by counter hashes and must be LogNormal, got {value}")
            if f.name in _PROBABILITIES and not _within_unit_interval(value):
                raise ValueError(f"{f.name} is a probability: its support must lie in [0, 1], got {value}")
            if f.name in _POSITIVE_SCALES and value.name == "Uniform" and not kw.get("low", 0) >= 0:
                raise ValueError(f"{f.name} must be >= 0, got {value}")
            for k in ("scale", "concentration1", "concentration0"):
                if k in kw and not kw[k] > 0:
                    raise ValueError(f"{f.name}: {k} must be > 0, got {value}")
            if "low" in kw and "high" in kw and not kw["low"] < kw["high"]:
                raise ValueError(f"{f.name}: low must be < high, got {value}")
    return cfg


# latents that are probabilities (support must lie in [0, 1]) or non-negative weights
_PROBABILITIES = ("discount_depth", "discount_start", "discount_stay", "visit_inertia")
_POSITIVE_SCALES = ("marketing_weight",)


def _within_unit_interval(spec: Dist) -> bool:
    kw = dict(spec.kwargs)
    if spec.name == "Beta":
        return True
    if spec.name == "Uniform":
        return kw.get("low", 0.0) >= 0.0 and kw.get("high", 1.0) <= 1.0
    if spec.name == "TruncatedNormal":
        return kw.get("low", -math.inf) >= 0.0 and kw.get("high", math.inf) <= 1.0
    if spec.name == "Delta":
        return 0.0 <= kw.get("v", -1.0) <= 1.0
    return False


CONFIGS: dict[str, ScenarioConfig] = {
    "benchmark": ScenarioConfig(),
    "hfhd": ScenarioConfig(
        name="hfhd",
        visit_intercept=Dist.of("Gumbel", loc=-2.0, scale=0.1),
        marketing_weight=Dist.of("Uniform", low=0.004, high=0.006),
        marketing_mode="discount_coupon",
    ),
    "calibrated": ScenarioConfig(
        name="calibrated",
        discount_depth=_beta(15, 35),
        discount_start=_beta(1, 5),
        discount_stay=_beta(2, 5),
        min_price=0.01,
        beta_w_product=_tn(-3.0, 1.0, high=0.0),
        beta_w_customer=_tn(-3.0, 0.8, high=0.0),
        utility_clip_percentile=100.0,
        visit_intercept=Dist.of("Gumbel", loc=0.0, scale=0.1),
        marketing_weight=Dist.of("Uniform", low=0.2, high=0.3),
        quantity_intercept=Dist.of("Gumbel", loc=-2.0, scale=0.1),
        quantity_slope=Dist.of("LogNormal", loc=-4.0, scale=0.05),
    ),
}


def get_config(name: str, **overrides) -> ScenarioConfig:
    """A named configuration with optional field overrides, validated."""
    if name not in CONFIGS:
        raise ValueError(f"unknown scenario configuration {name!r}; choose one of {sorted(CONFIGS)}")
    return validate(dataclasses.replace(CONFIGS[name], **overrides))
