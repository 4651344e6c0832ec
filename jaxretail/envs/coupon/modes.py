"""The two simulation modes of the coupon benchmark, each one switch (``shared/specs/coupon.md`` §1.9, §3.5).

* ``"clean"`` (default): independent random keys, the price actually paid in the running summaries, no
  utility clip (every log-sum-exp subtracts the maximum, so no cap is needed to stay finite; the
  configuration's ``utility_clip_percentile`` is then not applied, by choice), and the clean
  train-then-resume evaluation.
* ``"paper"``: what the published results ran: one shared key for every latent draw (legacy coupling,
  including ``X = m + |m| z``), the original's base-price draw, the next-week price-timing quirk of the
  running summaries, the weekly utility clip at the configuration's percentile of the week's customer x
  product utilities, and the original's fresh-wrapper evaluation quirks.

Base prices: paper mode always uses the original's draw; clean mode uses it too by default, so revenue
levels stay comparable (``base_prices="draw"`` draws this configuration's own).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

MODES = ("clean", "paper")


@dataclass(frozen=True)
class ModeSettings:
    """Every option a mode fixes."""

    mode: str
    legacy_coupling: bool  # sample_scenario / make_params
    base_prices: str  # sample_scenario: "paper" | "draw"
    next_week_price_quirk: bool  # make_params
    utility_clip: str  # make_params: "percentile" | "none"
    legacy_evaluation: bool  # evaluation protocol (coupon.md 3.5)

    def as_dict(self) -> dict:
        return asdict(self)


def mode_settings(mode: str, base_prices: str | None = None) -> ModeSettings:
    """The settings of ``mode``; ``base_prices`` may override clean mode's default ("paper")."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got mode={mode!r}")
    if mode == "paper":
        if base_prices not in (None, "paper"):
            raise ValueError(f"paper mode uses the original's base prices, got base_prices={base_prices!r}")
        return ModeSettings("paper", True, "paper", True, "percentile", True)
    return ModeSettings("clean", False, base_prices or "paper", False, "none", False)
