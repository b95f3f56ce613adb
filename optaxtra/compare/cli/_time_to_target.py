"""Time to target: the first checkpoint at which a curve reaches a target value.

The measure of AlgoPerf (Dahl et al. 2023): a training algorithm is scored by
how long it takes to reach a fixed validation target, not by where it ends.
The target counts as reached at the first checkpoint whose value is at least
as good as it (``>=`` when higher is better, ``<=`` when lower is better);
a non-finite value (a diverged run's NaN, a checkpoint not evaluated) never
reaches it. Its resolution is the spacing of the checkpoints: a run that got
there between two checkpoints is credited with the later one.

References:
  Dahl et al., "Benchmarking Neural Network Training Algorithms", 2023.
  https://arxiv.org/abs/2306.07179
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["reached", "time_to_target"]


def reached(values: Sequence[float | None], target: float, *, higher_is_better: bool) -> np.ndarray:
    """Per checkpoint, whether ``values`` is at least as good as ``target`` (``None``/NaN: never)."""
    array = np.array([np.nan if value is None else value for value in values], dtype=np.float64)
    finite = np.isfinite(array)
    with np.errstate(invalid="ignore"):
        good = array >= target if higher_is_better else array <= target
    return finite & good


def time_to_target(
    steps: Sequence[int],
    values: Sequence[float | None],
    target: float | None,
    *,
    higher_is_better: bool,
) -> int | None:
    """The first step of ``steps`` at which ``values`` reaches ``target``, or ``None``.

    Args:
      steps: the checkpoint steps, increasing (e.g. a record's
        ``curves["eval_steps"]``; step 0 is the initial parameters).
      values: the metric at each checkpoint (``None`` or NaN: not reached there).
      target: the value to reach; ``None`` means there is no target.
      higher_is_better: ``True`` for an accuracy (reached when ``value >=
        target``), ``False`` for a loss (``value <= target``).

    Returns:
      The first such step, or ``None`` if no checkpoint reaches the target.

    Raises:
      ValueError: if ``steps`` and ``values`` differ in length.

    Example:
      >>> time_to_target([0, 100, 200, 300], [0.1, 0.6, 0.93, 0.95], 0.9, higher_is_better=True)
      200
      >>> print(time_to_target([0, 100], [2.3, None], 1.0, higher_is_better=False))
      None
    """
    if len(steps) != len(values):
        raise ValueError(f"steps and values must have one entry each, got {len(steps)} and {len(values)}.")
    if target is None:
        return None
    hits = np.flatnonzero(reached(values, target, higher_is_better=higher_is_better))
    return int(steps[hits[0]]) if hits.size else None
