"""Setting a task's validation target from a reference run, as AlgoPerf does.

AlgoPerf sets each workload's target from its best-tuned reference
algorithm: the median over repeated runs of the best validation metric it
reached, its runs given 3/4 of the time budget submissions get (their budget
is 4/3 of the reference's). Here, from the records of a reference optimizer
over a learning-rate grid and seeds: for each learning rate, the median over
seeds of the best value each run reached at checkpoints within the first
``fraction`` (3/4) of its steps; the target is the best of these medians,
rounded to ``decimals`` towards the easier side. A failed run reached
nothing. So the reference reaches the target within 3/4 of the budget on
about half its seeds, and usually on more by the end of the run.

References:
  Dahl et al., "Benchmarking Neural Network Training Algorithms", 2023,
  section 4.3 (target setting). https://arxiv.org/abs/2306.07179
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ._records import cells, failed

__all__ = ["reference_target"]


def _best_within(run: dict[str, Any], metric: str, fraction: float) -> float:
    higher = metric == "accuracy"
    if failed(run):
        return -np.inf if higher else np.inf
    curves = run["curves"]
    steps = np.asarray(curves["eval_steps"], dtype=float)
    values = np.array([np.nan if v is None else v for v in curves[f"validation_{metric}"]], dtype=float)
    inside = values[(steps <= fraction * run["steps"]) & np.isfinite(values)]
    if not inside.size:
        return -np.inf if higher else np.inf
    return float(inside.max() if higher else inside.min())


def reference_target(
    runs: Sequence[dict[str, Any]], metric: str = "accuracy", *, fraction: float = 0.75, decimals: int = 2
) -> float:
    """The validation target that ``runs`` (one reference optimizer, a grid and seeds) set.

    Args:
      runs: the reference's records (``results.json``'s ``runs``, one optimizer, one task).
      metric: ``"accuracy"`` (higher is better) or ``"loss"``.
      fraction: the part of each run within which its best value counts.
      decimals: the target is rounded to this many decimals, down for an
        accuracy and up for a loss (towards the easier side).

    Returns:
      The target.

    Raises:
      ValueError: for an unknown metric, or if no setting reached anything.
    """
    if metric not in ("accuracy", "loss"):
        raise ValueError(f"metric must be 'accuracy' or 'loss', got {metric!r}.")
    higher = metric == "accuracy"
    medians = [
        float(np.median([_best_within(run, metric, fraction) for run in cell.runs]))
        for cell in cells(runs, by=("learning_rate",))
    ]
    best = max(medians) if higher else min(medians)
    if not np.isfinite(best):
        raise ValueError("no setting of the reference reached any finite value.")
    scale = 10.0**decimals
    nudge = 1e-9 * scale  # So that 0.912 * 1000 = 911.9999... still rounds to 0.912.
    return (math.floor(best * scale + nudge) if higher else math.ceil(best * scale - nudge)) / scale
