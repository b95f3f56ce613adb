"""The statistics behind ``optaxtra compare``'s verdicts, on synthetic paired samples.

Under simulated nulls (equal means, independent or strongly correlated pairs)
the false-positive rate of one test, and the family-wise rate of a
Holm-corrected family, stay at or below α within their binomial error; clear
differences are found; one and two seeds give "too few seeds".
"""

from __future__ import annotations

import numpy as np
import pytest

from optaxtra.compare.cli._stats import ALPHA, MIN_SEEDS, compare, format_number, holm, holm_adjust

TRIALS = 1200
# α plus three binomial standard errors of a rate estimated from TRIALS draws.
BOUND = ALPHA + 3 * np.sqrt(ALPHA * (1 - ALPHA) / TRIALS)


def _null_pairs(rng, n, correlation):
    shared = rng.normal(size=n)
    a = np.sqrt(correlation) * shared + np.sqrt(1 - correlation) * rng.normal(size=n)
    b = np.sqrt(correlation) * shared + np.sqrt(1 - correlation) * rng.normal(size=n)
    return 0.3 + 0.01 * a, 0.3 + 0.01 * b


@pytest.mark.parametrize("n, correlation", [(3, 0.0), (5, 0.9), (8, 0.0), (8, 0.99)])
def test_false_positive_rate_under_the_null_is_at_most_alpha(n, correlation):
    rng = np.random.default_rng(n * 100 + int(correlation * 100))
    positives = sum(
        compare(*_null_pairs(rng, n, correlation), higher_is_better=False).distinguishable
        for _ in range(TRIALS)
    )
    assert positives / TRIALS <= BOUND


def test_holm_keeps_the_family_wise_rate_at_most_alpha():
    rng = np.random.default_rng(7)
    families_with_a_false_positive = 0
    for _ in range(TRIALS // 2):
        family = [compare(*_null_pairs(rng, 5, 0.5), higher_is_better=False) for _ in range(5)]
        families_with_a_false_positive += any(c.distinguishable for c in holm(family, higher_is_better=False))
    families = TRIALS // 2
    assert families_with_a_false_positive / families <= ALPHA + 3 * np.sqrt(ALPHA * (1 - ALPHA) / families)


def test_the_lookahead_example_from_the_docs_is_detected():
    # The lookahead experiment on digits at lr 0.003 (docs/experiments.md before it moved to mnist1d_mlp):
    # the old rule called these "not distinguishable".
    differences = np.array([-0.010, -0.008, -0.009, -0.016, -0.013])
    inner = np.array([0.121, 0.115, 0.130, 0.118, 0.125])
    comparison = compare(inner + differences, inner, higher_is_better=False)
    assert comparison.verdict == "a" and comparison.mean == pytest.approx(-0.0112)
    assert comparison.p_value < 0.002 and comparison.high < 0 < -comparison.low
    assert comparison.p_permutation == pytest.approx(2 / 2**5)  # The sign-flip floor with 5 seeds.


@pytest.mark.parametrize("n", [1, 2])
def test_one_or_two_seeds_are_too_few(n):
    assert MIN_SEEDS == 3
    huge = compare(np.full(n, 0.1), np.full(n, 2.0) + np.arange(n), higher_is_better=False)
    assert huge.verdict == "few" and not huge.distinguishable


def test_a_clear_difference_with_three_seeds_is_found_both_ways():
    a, b = np.array([0.95, 0.951, 0.949]), np.array([0.90, 0.905, 0.902])
    assert compare(a, b, higher_is_better=True).verdict == "a"
    assert compare(a, b, higher_is_better=False).verdict == "b"
    assert compare(a, a + [0.01, -0.01, 0.0], higher_is_better=True).verdict == "tie"


def test_failed_runs_lose_and_both_failing_is_dropped():
    failed = compare(np.array([np.nan, 0.3, 0.3]), np.array([0.9, 0.9, 0.9]), higher_is_better=False)
    assert failed.verdict == "b" and np.isinf(failed.mean)
    assert compare(np.array([np.nan]), np.array([0.5]), higher_is_better=True).verdict == "b"
    each = compare(np.array([np.nan, 0.2, 0.2]), np.array([0.3, np.nan, 0.3]), higher_is_better=False)
    assert each.verdict == "tie"
    both = compare(
        np.array([np.nan, 0.2, 0.21, 0.22]), np.array([np.nan, 0.3, 0.3, 0.3]), higher_is_better=False
    )
    assert both.verdict == "a" and both.mean == pytest.approx(-0.09)


def test_holm_step_down_by_hand():
    # Sorted 0.01, 0.03, 0.04 of m = 3: 3 x 0.01, max(0.03, 2 x 0.03), max(0.06, 1 x 0.04).
    np.testing.assert_allclose(holm_adjust([0.04, 0.01, 0.03, np.nan]), [0.06, 0.03, 0.06, np.nan])
    np.testing.assert_allclose(holm_adjust([0.5, 0.9]), [1.0, 1.0])


def test_numbers_keep_significant_digits():
    assert format_number(0.000123) == "+0.00012" and format_number(1e-6) == "+1e-06"
    assert format_number(-0.0112, digits=3) == "-0.0112"
    assert format_number(12.5, scale=100) == "+1250" and format_number(np.inf) == "failed"


def _sweep_result(validation_loss, accuracy):
    from optaxtra.compare.cli._engine import SweepResult

    validation_loss = np.asarray(validation_loss, float)
    runs, points = validation_loss.shape
    steps = 200
    return SweepResult(
        "digits", "lamb", {"learning_rate": np.full(runs, 0.03)}, np.arange(runs, dtype=np.int32), 64,
        np.tile(np.linspace(2.35, 0.5, steps), (runs, 1)), np.linspace(0, steps, points).astype(int),
        validation_loss, np.asarray(accuracy, float), validation_loss[:, -1], np.asarray(accuracy, float)[:, -1],
        0.0, 0.0,
    )


def test_a_run_that_collapses_to_the_label_frequencies_fails():
    """LAMB on digits at lr 0.03: 90% accuracy at step 124, then chance (val loss ln 10), below its start."""
    from optaxtra.compare.cli._records import Cell, collapsed, records_from

    baseline = float(np.log(10))
    lamb = [2.35, 0.9, 0.35, 1.1, 2.303, 2.303]
    healthy = [2.35, 0.9, 0.35, 0.2, 0.15, 0.12]
    never_learned = [2.35, 2.34, 2.31, 2.30, 2.303, 2.303]  # Poor, but it never was better: not collapsed.
    assert collapsed(np.array(lamb), baseline) and not collapsed(np.array(healthy), baseline)
    assert not collapsed(np.array(never_learned), baseline) and not collapsed(np.array(lamb), None)
    result = _sweep_result(
        [lamb, lamb, lamb], [[0.1, 0.7, 0.9, 0.6, 0.1, 0.1]] * 3
    )
    records = records_from(result, target_loss=None, tags={}, baseline_loss=baseline, baseline_accuracy=0.1)
    assert all(r["collapsed"] and not r["diverged"] for r in records)
    # An overfitting classifier (val loss 2.7 > its start, 65% accuracy) is neither collapsed nor diverged.
    overfit = _sweep_result([[2.3, 1.0, 1.2, 2.7]], [[0.1, 0.6, 0.65, 0.65]])
    (record,) = records_from(overfit, target_loss=None, tags={}, baseline_loss=baseline, baseline_accuracy=0.1)
    assert not record["collapsed"] and not record["diverged"]
    assert collapsed(np.array(lamb), baseline, 0.1, 0.1) and not collapsed(np.array(lamb), baseline, 0.6, 0.1)
    cell = Cell(("lamb", 0.03), records)
    assert (cell.collapsed, cell.diverged, cell.failed) == (3, 0, 3)
    assert np.isnan(cell.values("final_validation_loss")).all() and np.isnan(cell.mean("final_validation_loss"))
    worse = compare(cell.values("final_validation_loss"), np.array([2.0, 2.1, 2.2]), higher_is_better=False)
    assert worse.verdict == "b"  # Even against a poor optimizer, and whatever the seed count.
