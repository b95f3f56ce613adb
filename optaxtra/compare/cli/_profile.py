"""Performance profiles (Dolan & Moré 2002) and AlgoPerf's benchmark score.

Given each optimizer's time to target on each task, ``t[task][optimizer]``
(``inf`` where it never got there), the *performance ratio* of an optimizer
on a task is its time over the fastest optimizer's on that task, and its
*performance profile* is the fraction of tasks on which that ratio is at
most ``tau``::

    r[o, w] = t[o, w] / min_o' t[o', w]          rho_o(tau) = #{w : r[o, w] <= tau} / #tasks

``rho_o(1)`` is the fraction of tasks ``o`` was fastest on (ties count for
every optimizer tied), ``rho_o(inf)`` the fraction it reached the target on
at all. A task no optimizer reached counts in the denominator and for no one.
A target met at step 0 (by the initial parameters) gives ratio 1 to the
optimizers that met it there and ``inf`` to the others.

AlgoPerf's score is the area under the profile from 1 to ``r_max = 4``,
divided by 3: 1 for an optimizer fastest everywhere, 0 for one never within
4x of the fastest. The profile is a step function, so the area is exact:
``(1/n) * sum_w max(0, r_max - max(1, r[o, w]))`` over the tasks with
``r[o, w] <= r_max``.

References:
  Dolan & Moré, "Benchmarking optimization software with performance
  profiles", Mathematical Programming 91, 2002. https://arxiv.org/abs/cs/0102001;
  Dahl et al., "Benchmarking Neural Network Training Algorithms", 2023.
  https://arxiv.org/abs/2306.07179
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

__all__ = ["R_MAX", "TAUS", "performance_ratios", "profile", "profile_score"]

R_MAX = 4.0
TAUS = (1.0, 1.5, 2.0, 4.0)
"""The ``tau`` at which the summary prints ``rho``."""

Times = Mapping[str, Mapping[str, float]]


def performance_ratios(times: Times) -> dict[str, dict[str, float]]:
    """``{task: {optimizer: ratio}}``: each time over the task's fastest (``inf``: never reached).

    Args:
      times: ``{task: {optimizer: time}}``, every task with the same
        optimizers; a time is >= 0, ``inf`` (or NaN) when the target was not reached.

    Returns:
      The ratios, each in ``[1, inf]``.

    Raises:
      ValueError: if the tasks have different optimizers or a time is negative.

    Example:
      >>> performance_ratios({"a": {"x": 10.0, "y": 30.0}, "b": {"x": float("inf"), "y": 5.0}})
      {'a': {'x': 1.0, 'y': 3.0}, 'b': {'x': inf, 'y': 1.0}}
    """
    names = [tuple(per_task) for per_task in times.values()]
    if len(set(map(frozenset, names))) > 1:
        raise ValueError(f"every task needs the same optimizers, got {sorted(set(names))}.")
    ratios: dict[str, dict[str, float]] = {}
    for task, per_task in times.items():
        values = np.array([np.inf if np.isnan(t) else t for t in map(float, per_task.values())])
        if np.any(values < 0):
            raise ValueError(f"times must be >= 0, got {dict(per_task)} on {task!r}.")
        best = values.min() if values.size else np.inf
        if best == 0:
            scaled = np.where(values == 0, 1.0, np.inf)
        elif np.isfinite(best):
            scaled = values / best
        else:
            scaled = np.full(values.size, np.inf)
        ratios[task] = {name: float(ratio) for name, ratio in zip(per_task, scaled)}
    return ratios


def _by_optimizer(ratios: Mapping[str, Mapping[str, float]]) -> dict[str, np.ndarray]:
    optimizers = list(next(iter(ratios.values()), {}))
    return {name: np.array([ratios[task][name] for task in ratios], dtype=float) for name in optimizers}


def profile(ratios: Mapping[str, Mapping[str, float]], taus: Sequence[float]) -> dict[str, list[float]]:
    """``{optimizer: [rho(tau) for tau in taus]}``, the fraction of tasks with ratio <= tau.

    Example:
      >>> profile({"a": {"x": 1.0, "y": 3.0}, "b": {"x": float("inf"), "y": 1.0}}, [1, 2, 4])
      {'x': [0.5, 0.5, 0.5], 'y': [0.5, 0.5, 1.0]}
    """
    grid = np.asarray(taus, dtype=float)
    return {
        name: [float(value) for value in np.mean(values[:, None] <= grid[None, :], axis=0)]
        for name, values in _by_optimizer(ratios).items()
    }


def profile_score(ratios: Mapping[str, Mapping[str, float]], r_max: float = R_MAX) -> dict[str, float]:
    """AlgoPerf's score: the area under ``rho`` from 1 to ``r_max``, over ``r_max - 1``, in [0, 1].

    Example:
      Twice as slow as the fastest on the only task: ``(4 - 2) / 3``:

      >>> profile_score({"a": {"x": 1.0, "y": 2.0}})
      {'x': 1.0, 'y': 0.6666666666666666}
    """
    if not r_max > 1:
        raise ValueError(f"r_max must be > 1, got {r_max!r}.")
    scores = {}
    for name, values in _by_optimizer(ratios).items():
        inside = values[values <= r_max]
        area = np.sum(r_max - np.maximum(1.0, inside)) / values.size if values.size else 0.0
        scores[name] = float(area / (r_max - 1.0))
    return scores
