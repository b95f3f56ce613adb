"""The performance-profile figure: rho(tau) against tau (log axis), one step curve per optimizer."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

from ._plots import plt, style
from ._profile import R_MAX

__all__ = ["plot_profile"]

PANELS = (("seconds", "wall time"), ("steps", "steps"))
TICKS = (1, 1.25, 1.5, 2, 3, 4, 6, 10, 20, 50, 100, 1000)


def plot_profile(path: Path, title: str, payload: Mapping[str, Any]) -> None:
    """Two panels (by wall time, by steps) of ``_algoperf``'s profile payload.

    Each optimizer is a step curve (``rho`` changes only at a task's ratio)
    with its own line style and marker; the area AlgoPerf scores, tau from 1
    to 4, is shaded. A curve that stays at 0 is an optimizer that was never
    within the plotted range (or never reached a target).

    Args:
      path: the PNG to write.
      title: the figure title.
      payload: ``{"tau": [...], "seconds": {name: rho}, "steps": {name: rho},
        "scores": {...}}`` (``_algoperf.algoperf_report``'s ``profile`` with its ``scores``).
    """
    taus = np.asarray(payload["tau"], dtype=float)
    figure, panels = plt.subplots(1, len(PANELS), figsize=(11, 5.6), sharey=True)
    every = max(1, taus.size // 8)
    for axes, (measure, label) in zip(panels, PANELS):
        series = payload[measure]
        for index, (name, rho) in enumerate(series.items()):
            score = payload["scores"][measure][name]
            axes.plot(  # Markers staggered, so that a curve drawn exactly under another still shows.
                taus, rho, drawstyle="steps-post", label=f"{name} (score {score:.2f})",
                markevery=(index * every // max(1, len(series)), every), markersize=5, alpha=0.85,
                **style(index),
            )
        axes.axvspan(1.0, R_MAX, color="grey", alpha=0.08, lw=0)  # The range AlgoPerf's score integrates.
        axes.set_xscale("log")
        axes.set_xlim(1.0, taus[-1])
        ticks = [tick for tick in TICKS if tick <= taus[-1]]
        axes.xaxis.set_major_locator(FixedLocator(ticks))
        axes.xaxis.set_major_formatter(FixedFormatter([f"{tick:g}" for tick in ticks]))
        axes.xaxis.set_minor_locator(NullLocator())
        axes.set_ylim(-0.03, 1.03)
        axes.set_xlabel(f"tau: ratio of {label} to target to the fastest's")
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2,
                    title=f"by {label}", title_fontsize="small")
    panels[0].set_ylabel("rho(tau): fraction of tasks")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
