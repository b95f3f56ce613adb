"""From a sweep's arrays to one record per run, and from records to per-setting cells.

A run is *diverged* when its training loss became NaN or inf at any step,
its final losses are not finite, or it ended with a validation loss above
the one it started from (training made the model worse than its random
initialisation: at a too-large learning rate, typically a blow-up followed by
a collapse to a constant prediction) — unless its final accuracy is clearly
above chance (``Task.baseline_accuracy``): a classifier that overfits can end
with a validation loss above its start and still be right on most examples.

A run is *collapsed* when it got clearly better than the task's
``baseline_loss`` (predicting the training-label frequencies) at some
checkpoint and ended not clearly better than it: "clearly" is by more than
``COLLAPSE_MARGIN`` (5%) of the baseline, and, where the task has a
``baseline_accuracy``, with a final accuracy not more than 5 points above it. LAMB on digits at lr 0.03 reaches
90% validation accuracy, then ends at chance with the loss ln 10 = 2.303,
below its starting loss of 2.35, so it is not diverged but collapsed.

Diverged and collapsed runs (*failed*) keep their record (flagged), are
counted in their own columns, never enter an average and lose every paired
comparison.
"""

from __future__ import annotations

from typing import Any, Iterable, NamedTuple, Sequence

import numpy as np

from ._engine import SweepResult
from ._time_to_target import time_to_target

__all__ = ["COLLAPSE_MARGIN", "METRICS", "Cell", "cells", "collapsed", "failed", "records_from"]

METRICS = ("final_train_loss", "final_train_accuracy", "final_validation_loss", "final_validation_accuracy")
CURVE_POINTS = 100
COLLAPSE_MARGIN = 0.05


def _number(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _binned(values: np.ndarray) -> tuple[list[int], list[float | None]]:
    """The curve averaged over at most ``CURVE_POINTS`` bins, for JSON and plots."""
    edges = np.unique(np.linspace(0, values.size, CURVE_POINTS + 1).astype(int))
    means = [values[start:stop].mean() for start, stop in zip(edges[:-1], edges[1:])]
    return [int(stop) for stop in edges[1:]], [_number(mean) for mean in means]


def _steps_to_target(losses: np.ndarray, target: float | None) -> int | None:
    """First step where the running mean of the training loss (window steps/20) reaches ``target``."""
    if target is None:
        return None
    window = max(1, losses.size // 20)
    running = np.convolve(losses, np.ones(window) / window, mode="valid")
    return time_to_target(np.arange(window, losses.size + 1), running, target, higher_is_better=False)


def above_chance(accuracy: float, baseline_accuracy: float | None) -> bool:
    """Whether a final accuracy is clearly (by ``COLLAPSE_MARGIN``, 5 points) above chance."""
    if baseline_accuracy is None or not np.isfinite(accuracy):
        return False
    return bool(accuracy > baseline_accuracy + COLLAPSE_MARGIN)


def collapsed(
    validation_loss: np.ndarray,
    baseline_loss: float | None,
    final_accuracy: float = float("nan"),
    baseline_accuracy: float | None = None,
) -> bool:
    """Whether a validation-loss curve (first entry: before training) fell clearly below
    ``baseline_loss`` and ended not clearly below it, its final accuracy (where known) not clearly
    above chance (an overfitting classifier can end above the loss baseline but far above chance)."""
    if baseline_loss is None or validation_loss.size < 2 or above_chance(final_accuracy, baseline_accuracy):
        return False
    clearly = baseline_loss * (1.0 - COLLAPSE_MARGIN)
    earlier = validation_loss[:-1]
    final = validation_loss[-1]
    return bool(np.any(np.isfinite(earlier) & (earlier < clearly)) and np.isfinite(final) and final >= clearly)


def records_from(
    result: SweepResult,
    *,
    target_loss: float | None,
    tags: dict[str, Any],
    baseline_loss: float | None = None,
    baseline_accuracy: float | None = None,
    validation_target: float | None = None,
    validation_metric: str = "accuracy",
) -> list[dict[str, Any]]:
    """One JSON-ready dict per run of ``result`` (non-finite numbers become ``None``).

    ``steps_to_validation_target`` is the first validation checkpoint at which
    ``validation_metric`` reached ``validation_target`` (``_time_to_target``),
    ``None`` for a failed run; ``seconds_per_step`` is the sweep's measured
    running time over its steps — all runs of a sweep are lanes of one
    program, so a single run's own time is not observable — and
    ``seconds_to_validation_target`` their product.
    """
    seconds_per_step = result.run_seconds / result.train_loss.shape[1]
    curves_of = {"accuracy": result.validation_accuracy, "loss": result.validation_loss}[validation_metric]
    records = []
    for run in range(result.seeds.size):
        losses = result.train_loss[run]
        bad = np.flatnonzero(~np.isfinite(losses))
        start = result.validation_loss[run, 0]
        final_val = result.validation_loss[run, -1]
        diverged = bool(
            bad.size
            or not np.isfinite(final_val)
            or not np.isfinite(result.final_train_loss[run])
            or (
                np.isfinite(start)
                and final_val > start
                and not above_chance(result.validation_accuracy[run, -1], baseline_accuracy)
            )
        )
        collapse = not diverged and collapsed(
            result.validation_loss[run], baseline_loss, result.validation_accuracy[run, -1], baseline_accuracy
        )
        steps, train_curve = _binned(losses)
        to_target = None if diverged or collapse else time_to_target(
            result.eval_steps, curves_of[run], validation_target, higher_is_better=validation_metric == "accuracy"
        )
        records.append(
            {
                "task": result.task,
                "optimizer": result.optimizer,
                **{name: float(values[run]) for name, values in result.settings.items()},
                **tags,
                "seed": int(result.seeds[run]),
                "steps": int(losses.size),
                "batch_size": result.batch_size,
                "final_train_loss": _number(result.final_train_loss[run]),
                "final_train_accuracy": _number(result.final_train_accuracy[run]),
                "final_validation_loss": _number(final_val),
                "final_validation_accuracy": _number(result.validation_accuracy[run, -1]),
                "steps_to_target": None if diverged or collapse else _steps_to_target(losses, target_loss),
                "target_loss": target_loss,
                "diverged": diverged,
                "diverged_at_step": int(bad[0] + 1) if bad.size else None,
                "collapsed": collapse,
                "validation_metric": validation_metric,
                "validation_target": validation_target,
                "steps_to_validation_target": to_target,
                "seconds_per_step": seconds_per_step,
                "seconds_to_validation_target": None if to_target is None else to_target * seconds_per_step,
                "curves": {
                    "steps": steps,
                    "train_loss": train_curve,
                    "eval_steps": [int(step) for step in result.eval_steps],
                    "validation_loss": [_number(value) for value in result.validation_loss[run]],
                    "validation_accuracy": [_number(value) for value in result.validation_accuracy[run]],
                },
            }
        )
    return records


def failed(run: dict[str, Any]) -> bool:
    """Whether a run diverged or collapsed (records from before collapse detection: never collapsed)."""
    return bool(run["diverged"] or run.get("collapsed", False))


class Cell(NamedTuple):
    """The runs of one setting over seeds.

    Attributes:
      key: the values of the grouping fields.
      runs: the records, in seed order.
    """

    key: tuple[Any, ...]
    runs: list[dict[str, Any]]

    @property
    def seeds(self) -> list[int]:
        return [run["seed"] for run in self.runs]

    @property
    def diverged(self) -> int:
        return sum(run["diverged"] for run in self.runs)

    @property
    def collapsed(self) -> int:
        return sum(failed(run) and not run["diverged"] for run in self.runs)

    @property
    def failed(self) -> int:
        """Diverged plus collapsed runs."""
        return sum(failed(run) for run in self.runs)

    def values(self, metric: str) -> np.ndarray:
        """Per-seed values, NaN for a failed (diverged or collapsed) run or a missing metric."""
        return np.array(
            [np.nan if failed(run) or run[metric] is None else run[metric] for run in self.runs],
            dtype=float,
        )

    def mean(self, metric: str) -> float:
        """Mean over the runs that did not fail (NaN if none)."""
        values = self.values(metric)
        return float(np.mean(values[np.isfinite(values)])) if np.isfinite(values).any() else float("nan")

    def spread(self, metric: str) -> float:
        """Max minus min over the runs that did not fail."""
        values = self.values(metric)
        finite = values[np.isfinite(values)]
        return float(finite.max() - finite.min()) if finite.size else float("nan")


def cells(records: Iterable[dict[str, Any]], by: Sequence[str]) -> list[Cell]:
    """Groups records by the fields ``by``, in first-seen order, each cell sorted by seed."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(tuple(record[field] for field in by), []).append(record)
    return [Cell(key, sorted(runs, key=lambda run: run["seed"])) for key, runs in groups.items()]
