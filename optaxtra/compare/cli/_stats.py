"""Paired comparisons over seeds, and the rule for "not distinguishable".

Runs with the same seed share their initial parameters and their batches, so
two optimizers are compared seed by seed. A difference is called real only if

* every paired difference has the same sign, and
* the mean paired difference is larger than the seed spread (max - min over
  seeds) of either side.

Otherwise it is *not distinguishable*: inside the noise that changing the
seed alone produces. A diverged run counts as the worst possible value, so an
optimizer that diverges on some seeds loses to one that never does.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Comparison", "compare", "format_difference"]


class Comparison(NamedTuple):
    """The paired comparison of ``a`` against ``b`` on one metric.

    Attributes:
      differences: per-seed ``a - b`` (inf where only one side diverged,
        0 where both did).
      mean: mean of ``differences``.
      noise: the larger seed spread of the two sides.
      verdict: ``"a"``, ``"b"`` (which is better) or ``"tie"`` (not distinguishable).
    """

    differences: np.ndarray
    mean: float
    noise: float
    verdict: str

    @property
    def distinguishable(self) -> bool:
        return self.verdict != "tie"


def _spread(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.max() - finite.min()) if finite.size > 1 else 0.0


def compare(a: np.ndarray, b: np.ndarray, *, higher_is_better: bool) -> Comparison:
    """Compares per-seed values ``a`` and ``b`` (NaN = diverged) of one metric.

    Args:
      a: values of the first side, one per seed.
      b: values of the second side, for the same seeds in the same order.
      higher_is_better: True for accuracy, False for loss.

    Returns:
      A ``Comparison``.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"paired values need one value per seed on both sides, got {a.shape} and {b.shape}.")
    worst = -np.inf if higher_is_better else np.inf
    both = np.isnan(a) & np.isnan(b)
    differences = np.where(both, 0.0, np.where(np.isnan(a), worst, a)) - np.where(
        both, 0.0, np.where(np.isnan(b), worst, b)
    )
    with np.errstate(invalid="ignore"):  # +inf and -inf on different seeds: a NaN mean, a tie.
        mean = float(np.mean(differences))
    gain = differences if higher_is_better else -differences
    mean_gain = mean if higher_is_better else -mean
    noise = max(_spread(a), _spread(b))
    if np.all(gain > 0) and mean_gain > noise:
        verdict = "a"
    elif np.all(gain < 0) and -mean_gain > noise:
        verdict = "b"
    else:
        verdict = "tie"
    return Comparison(differences, mean, noise, verdict)


def format_difference(comparison: Comparison, scale: float = 1.0, digits: int = 3) -> str:
    """``"+0.012 (+0.010, +0.014)"``: the mean, then each seed's difference; inf reads "diverged"."""

    def number(value: float) -> str:
        return f"{value * scale:+.{digits}f}" if np.isfinite(value) else "diverged"

    return f"{number(comparison.mean)} ({', '.join(number(value) for value in comparison.differences)})"
