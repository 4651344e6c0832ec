"""Matplotlib figures for evaluation results (saved atomically, no display needed)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from jaxretail.utils.atomic import atomic_path  # noqa: E402


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> None:
    """Lay out ``fig``, write it atomically to ``path`` (format from the suffix, PNG by default), close it."""
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=os.path.splitext(str(path))[1].lstrip(".") or "png", dpi=dpi)
    plt.close(fig)


def plot_cumulative_reward(
    panels: dict[str, dict[str, np.ndarray]],
    path: str | os.PathLike,
    ylabel: str = "cumulative revenue",
    xlabel: str = "decision step",
) -> None:
    """One panel per key of ``panels``; each maps policy name -> per-step rewards ``[S, T]``.

    Draws the mean cumulative reward over episodes with a +-1.96 standard-error band.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False, sharey=True)
    for ax, (title, curves) in zip(axes[0], panels.items(), strict=True):
        for name, rewards in curves.items():
            cum = np.cumsum(np.asarray(rewards, np.float64), axis=1)
            steps = np.arange(1, cum.shape[1] + 1)
            mean = cum.mean(0)
            se = cum.std(0, ddof=1) / np.sqrt(cum.shape[0]) if cum.shape[0] > 1 else 0 * mean
            ax.plot(steps, mean, label=name)
            ax.fill_between(steps, mean - 1.96 * se, mean + 1.96 * se, alpha=0.2)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel(ylabel)
    axes[0, -1].legend(loc="upper left")
    save_figure(fig, path)


def plot_learning_curve(
    curves: dict[str, np.ndarray],
    path: str | os.PathLike,
    xlabel: str = "update",
    ylabel: str = "mean episode return",
    references: dict[str, float] | None = None,
) -> None:
    """Training curves (name -> values per update), with optional horizontal reference levels, each
    in its own colour and dash pattern, all named in the legend."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, values in curves.items():
        ax.plot(np.arange(1, len(values) + 1), np.asarray(values), label=name)
    styles = ("--", ":", "-.", (0, (5, 1, 1, 1)))
    for i, (name, level) in enumerate((references or {}).items()):
        # reference levels get their own colours (after the curves') and dash patterns
        color = f"C{(len(curves) + i) % 10}"
        ax.axhline(level, linestyle=styles[i % len(styles)], linewidth=1.2, label=name, color=color)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    save_figure(fig, path)
