"""Paired comparisons over seeds: a paired t-test, its interval, and Holm's correction.

Runs with the same seed share their initial parameters and their batches, so
two optimizers are compared seed by seed, on the per-seed differences
``d_s = a_s - b_s``.

* **Test**: the two-sided paired t-test (``scipy.stats.ttest_rel``) on the
  differences, with the 95% t interval of their mean. It is the primary test
  because it is the only standard paired test that can reach α = 0.05 at the
  seed counts a laptop run affords: the exact sign-flip (permutation) test's
  smallest two-sided p-value is ``2 / 2**n``, above 0.05 for n <= 5 seeds, and
  the Wilcoxon signed-rank test has the same floor. The t-test assumes
  roughly normal differences; final losses of runs that differ only in their
  seed are averages over many examples and are close to normal. The exact
  sign-flip p-value (``scipy.stats.permutation_test``, ``permutation_type=
  "samples"``), which assumes only symmetry, is reported next to it.
* **Too few seeds**: with fewer than ``MIN_SEEDS`` (3) paired seeds the verdict
  is "too few seeds". With two seeds the t-test has one degree of freedom (its
  interval is ±12.7 standard errors and its p-value rests on normality alone)
  and every distribution-free paired test has p >= 0.5.
* **Correction**: Holm's step-down over the comparisons of one table or one
  experiment (``holm``), so that the chance of any false "better"/"worse" in
  it stays <= α.
* **Failures**: a diverged or collapsed run (NaN here) loses its pair. When
  only one side failed on some seeds (and the other never failed where the
  first did not), the failing side loses the comparison outright, whatever
  the seed count: failing is a fact about a run, not an estimate. Pairs where
  both sides failed carry no information and are dropped.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
from scipy import stats

__all__ = [
    "ALPHA",
    "MIN_SEEDS",
    "METHOD",
    "Comparison",
    "compare",
    "comparison_record",
    "format_difference",
    "format_interval",
    "format_number",
    "format_p",
    "holm",
    "holm_adjust",
    "too_few_text",
]

ALPHA = 0.05
MIN_SEEDS = 3
METHOD = {
    "test": "two-sided paired t-test on per-seed differences (scipy.stats.ttest_rel)",
    "interval": "95% t interval of the mean paired difference",
    "alpha": ALPHA,
    "correction": "Holm step-down over the comparisons of one table or experiment",
    "minimum_seeds": MIN_SEEDS,
    "also_reported": "exact sign-flip permutation p (scipy.stats.permutation_test, permutation_type='samples')",
    "failures": "a diverged or collapsed run loses its pair; one-sided failures lose the comparison",
}


class Comparison(NamedTuple):
    """The paired comparison of ``a`` against ``b`` on one metric.

    Attributes:
      differences: per-seed ``a - b`` (+-inf where only one side failed, NaN
        where both did).
      mean: mean of the finite differences.
      low: lower end of the 95% t interval of the mean (NaN if undefined).
      high: upper end.
      p_value: the paired t-test's two-sided p (0 when decided by failures,
        NaN with too few seeds).
      p_permutation: the exact sign-flip p (NaN when decided by failures).
      p_adjusted: ``p_value`` after Holm's correction in its family.
      verdict: ``"a"``, ``"b"`` (which is better), ``"tie"`` (not
        distinguishable) or ``"few"`` (too few seeds).
    """

    differences: np.ndarray
    mean: float
    low: float
    high: float
    p_value: float
    p_permutation: float
    p_adjusted: float
    verdict: str

    @property
    def distinguishable(self) -> bool:
        return self.verdict in ("a", "b")

    @property
    def noise(self) -> float:
        """Half the width of the 95% interval (NaN if undefined)."""
        return (self.high - self.low) / 2


def _sign_flip_p(differences: np.ndarray) -> float:
    if np.all(differences == 0):
        return 1.0
    result = stats.permutation_test(
        (differences,),
        np.mean,
        permutation_type="samples",
        n_resamples=2**14,
        alternative="two-sided",
        rng=np.random.default_rng(0),
    )
    return float(result.pvalue)


def _verdict(mean: float, p_adjusted: float, higher_is_better: bool) -> str:
    if not p_adjusted <= ALPHA:
        return "tie"
    return "a" if (mean > 0) == higher_is_better else "b"


def compare(a: np.ndarray, b: np.ndarray, *, higher_is_better: bool) -> Comparison:
    """Compares per-seed values ``a`` and ``b`` (NaN = failed) of one metric, as a family of one.

    Args:
      a: values of the first side, one per seed.
      b: values of the second side, for the same seeds in the same order.
      higher_is_better: True for accuracy, False for loss.

    Returns:
      A ``Comparison``; pass several to ``holm`` to correct them together.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"paired values need one value per seed on both sides, got {a.shape} and {b.shape}.")
    worst = -np.inf if higher_is_better else np.inf
    a_failed, b_failed = np.isnan(a), np.isnan(b)
    with np.errstate(invalid="ignore"):
        differences = np.where(a_failed, worst, a) - np.where(b_failed, worst, b)
    only_a, only_b = a_failed & ~b_failed, b_failed & ~a_failed
    if only_a.any() or only_b.any():
        if only_a.any() and only_b.any():  # Each failed where the other did not: no side wins.
            return Comparison(differences, np.nan, np.nan, np.nan, 1.0, np.nan, 1.0, "tie")
        loser_is_a = bool(only_a.any())
        mean = -np.inf if loser_is_a == higher_is_better else np.inf
        return Comparison(differences, mean, np.nan, np.nan, 0.0, np.nan, 0.0, "b" if loser_is_a else "a")
    finite = differences[~(a_failed & b_failed)]
    if finite.size < MIN_SEEDS:
        mean = float(np.mean(finite)) if finite.size else np.nan
        return Comparison(differences, mean, np.nan, np.nan, np.nan, np.nan, np.nan, "few")
    mean = float(np.mean(finite))
    if np.ptp(finite) <= 1e-9 * abs(mean):  # No spread (to rounding): t is infinite, or 0/0 when mean = 0;
        # p is the t-test's limit (0 or 1); the sign-flip p beside it says how much n alone can show.
        p_value, low, high = (1.0 if mean == 0 else 0.0), mean, mean
    else:
        kept = ~(a_failed & b_failed)
        test = stats.ttest_rel(a[kept], b[kept])
        p_value = float(test.pvalue)
        low, high = (float(end) for end in test.confidence_interval(1 - ALPHA))
    return Comparison(
        differences, mean, low, high, p_value, _sign_flip_p(finite), p_value,
        _verdict(mean, p_value, higher_is_better),
    )


def holm_adjust(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN entries stay NaN and are not counted).

    The ``k``-th smallest of ``m`` p-values becomes ``max_{j<=k} min(1, (m - j + 1) p_(j))``;
    rejecting where the adjusted p <= α keeps the family-wise error rate <= α.
    """
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, np.nan)
    tested = np.flatnonzero(np.isfinite(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    m = order.size
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted


def holm(comparisons: Sequence[Comparison], *, higher_is_better: bool) -> list[Comparison]:
    """The ``comparisons`` of one family with Holm-adjusted p-values and verdicts."""
    adjusted = holm_adjust([comparison.p_value for comparison in comparisons])
    corrected = []
    for comparison, p in zip(comparisons, adjusted):
        if comparison.verdict == "few" or not np.isfinite(p):
            corrected.append(comparison)
            continue
        # A one-sided failure (mean ±inf, p 0) keeps its winner; NaN (each side failed somewhere) ties.
        verdict = "tie" if np.isnan(comparison.mean) else _verdict(comparison.mean, p, higher_is_better)
        corrected.append(comparison._replace(p_adjusted=float(p), verdict=verdict))
    return corrected


def format_number(value: float, scale: float = 1.0, digits: int = 2) -> str:
    """``value * scale`` with ``digits`` significant digits and a sign; infinities read "failed"."""
    if not np.isfinite(value):
        return "failed" if np.isinf(value) else "—"
    scaled = value * scale
    if scaled == 0:
        return "0"
    if not 1e-4 <= abs(scaled) < 1e6:
        return f"{scaled:+.{digits}g}"
    decimals = max(0, digits - 1 - int(np.floor(np.log10(abs(scaled)))))
    return f"{scaled:+.{decimals}f}"


def format_difference(comparison: Comparison, scale: float = 1.0) -> str:
    """``"-0.0112 (-0.010, -0.0080, ...)"``: the mean (3 significant digits), then each seed's difference."""
    seeds = ", ".join(format_number(value, scale) for value in comparison.differences)
    return f"{format_number(comparison.mean, scale, 3)} ({seeds})"


def format_interval(comparison: Comparison, scale: float = 1.0) -> str:
    """``"[-0.015, -0.0073]"``, or ``"—"`` where no interval exists."""
    if not (np.isfinite(comparison.low) and np.isfinite(comparison.high)):
        return "—"
    return f"[{format_number(comparison.low, scale)}, {format_number(comparison.high, scale)}]"


def format_p(p: float) -> str:
    """``"0.0012"``, ``"<1e-4"``, or ``"—"``."""
    if not np.isfinite(p):
        return "—"
    return "<1e-4" if p < 1e-4 else f"{p:.2g}"


def too_few_text() -> str:
    """The verdict text for a comparison with fewer than ``MIN_SEEDS`` paired seeds."""
    return f"too few seeds (need {MIN_SEEDS})"


def comparison_record(comparison: Comparison) -> dict[str, object]:
    """The numbers of a comparison, JSON-ready (non-finite numbers become ``None``)."""

    def number(value: float) -> float | None:
        return float(value) if np.isfinite(value) else None

    return {
        "differences": [number(value) for value in comparison.differences],
        "mean_difference": number(comparison.mean),
        "ci95": [number(comparison.low), number(comparison.high)],
        "p_t_test": number(comparison.p_value),
        "p_sign_flip": number(comparison.p_permutation),
        "p_holm": number(comparison.p_adjusted),
        "outcome": comparison.verdict,
    }
