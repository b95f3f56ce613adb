"""PNG plots (matplotlib, Agg backend): loss curves, and a final metric against a setting.

The second is the RAdam paper's robustness figure: final loss against the
learning rate, one line per optimizer. Lines join the mean over the seeds
that did not fail; every seed is a dot; a setting where any seed diverged
gets a cross of the line's colour at the top of the axes, one where a seed
collapsed a triangle, so failure is never hidden. Each series has its own
line style and marker, so a line drawn exactly under another stays visible.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullLocator, ScalarFormatter  # noqa: E402

from ._records import Cell, cells, failed  # noqa: E402

__all__ = ["plot_curves", "plot_versus"]

LABELS = {
    "final_train_loss": "final training loss",
    "final_validation_loss": "final validation loss",
    "final_validation_accuracy": "final validation accuracy",
    "learning_rate": "learning rate",
    "weight_decay": "decay coefficient",
    "batch_size": "batch size",
}


def _finite(values: Sequence[Any]) -> np.ndarray:
    return np.array([np.nan if value is None else value for value in values], dtype=float)


def _positive(axes: Any) -> bool:
    """Whether the axes hold a positive finite value (a log scale needs one)."""
    values = [np.asarray(line.get_ydata(), dtype=float) for line in axes.get_lines()]
    return any(np.any(np.isfinite(v) & (v > 0)) for v in values)


LINE_STYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "h", "P", "X", "*")  # Not "v" or "x": they mark collapse and divergence.


def style(index: int) -> dict[str, str]:
    """The line style and marker of the ``index``-th series (7 x 4 distinct pairs before a repeat)."""
    return {"linestyle": LINE_STYLES[index % len(LINE_STYLES)], "marker": MARKERS[index % len(MARKERS)]}


def _log_y(axes: Any) -> None:
    """A logarithmic vertical axis labelled with plain numbers (2.5, not 2.5x10^0).

    Within less than a decade the log ticks (1, 2, ..., 9 times a power of
    ten) leave one or two labels ("3", "4"): there, about six evenly spaced
    ticks are labelled instead; over wider ranges the minor ticks at 2, 3 and 5
    (2 and 5 beyond two decades) times a power of ten are labelled too.
    """
    axes.set_yscale("log")
    low, high = axes.get_ylim()
    if low > 0 and high / low < 10:
        axes.yaxis.set_major_locator(MaxNLocator(nbins=6))
        axes.yaxis.set_major_formatter(ScalarFormatter())
        axes.yaxis.set_minor_locator(NullLocator())
        return
    labelled = (2, 3, 5) if high / low <= 100 else (2, 5)

    def minor(value: float, _: int) -> str:
        leading = round(value / 10 ** np.floor(np.log10(value)))
        return f"{value:g}" if leading in labelled else ""

    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axes.yaxis.set_minor_formatter(FuncFormatter(minor))


def plot_curves(path: Path, title: str, series: Sequence[tuple[str, Cell]]) -> None:
    """Training (smoothed) and validation loss against steps, one colour per series.

    Args:
      path: the PNG to write.
      title: the figure title.
      series: ``(label, cell)``; the band spans the seeds, the line is their mean.
    """
    figure, (train_axes, validation_axes) = plt.subplots(1, 2, figsize=(11, 4.2))
    for index, (label, cell) in enumerate(series):
        finished = [run for run in cell.runs if not failed(run)]
        if not finished:
            failure = "diverged" if cell.diverged else "collapsed"
            train_axes.plot([], [], label=f"{label} ({failure})", **style(index))
            continue
        for axes, x_key, y_key in (
            (train_axes, "steps", "train_loss"),
            (validation_axes, "eval_steps", "validation_loss"),
        ):
            steps = finished[0]["curves"][x_key]
            values = np.stack([_finite(run["curves"][y_key]) for run in finished])
            (line,) = axes.plot(
                steps,
                values.mean(axis=0),
                label=label if axes is train_axes else None,
                markevery=max(1, len(steps) // 8),
                markersize=5,
                **style(index),
            )
            axes.fill_between(
                steps, values.min(axis=0), values.max(axis=0), color=line.get_color(), alpha=0.2
            )
    for axes, name in ((train_axes, "training loss (binned mean)"), (validation_axes, "validation loss")):
        axes.set_xlabel("step")
        axes.set_ylabel(name)
        if _positive(axes):
            _log_y(axes)
        axes.grid(True, which="both", alpha=0.3)
    train_axes.legend(fontsize="small")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_versus(
    path: Path,
    title: str,
    records: Sequence[dict[str, Any]],
    *,
    x: str,
    series: str,
    metrics: Sequence[str],
    log_x: bool = True,
) -> None:
    """Final ``metrics`` (one panel each) against the setting ``x``, one line per ``series`` value.

    Args:
      path: the PNG to write.
      title: the figure title.
      records: the runs.
      x: the record field on the horizontal axis (e.g. ``"learning_rate"``).
      series: the record field that makes a line (e.g. ``"optimizer"``).
      metrics: record fields on the vertical axes.
      log_x: logarithmic horizontal axis.
    """
    # A metric no run has (accuracy of a regression task) gets no panel.
    metrics = [m for m in metrics if any(r[m] is not None for r in records)] or list(metrics[:1])
    figure, panels = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4.2), squeeze=False)
    for axes, metric in zip(panels[0], metrics):
        crosses: list[tuple[float, str, str]] = []
        for index, name in enumerate(dict.fromkeys(record[series] for record in records)):
            line_cells = cells((record for record in records if record[series] == name), by=(x,))
            line_cells.sort(key=lambda cell: cell.key[0])
            xs = np.array([cell.key[0] for cell in line_cells], dtype=float)
            means = np.array([cell.mean(metric) for cell in line_cells])
            (line,) = axes.plot(xs, means, label=str(name), **style(index))
            for position, cell in zip(xs, line_cells):
                values = cell.values(metric)
                axes.scatter(np.full(values.size, position), values, s=10, color=line.get_color(), alpha=0.5)
                if cell.diverged:
                    crosses.append((position, line.get_color(), "x"))
                if cell.collapsed:
                    crosses.append((position, line.get_color(), "v"))
        if log_x:
            axes.set_xscale("log")
        if metric.endswith("loss") and _positive(axes):
            _log_y(axes)
        for position, color, marker in crosses:  # Last, in axes coordinates: they do not set the scale.
            axes.plot(
                position, 0.97, marker, color=color, markersize=10, mew=2, transform=axes.get_xaxis_transform()
            )
        axes.set_xlabel(LABELS.get(x, x))
        axes.set_ylabel(LABELS.get(metric, metric))
        axes.grid(True, which="both", alpha=0.3)
    panels[0][0].legend(
        fontsize="small", title="at the top: x a seed diverged, ▼ a seed collapsed", title_fontsize="x-small"
    )
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
