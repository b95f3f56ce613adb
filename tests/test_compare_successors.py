"""The successors' experiments: Reddi et al.'s online problem, the speed-up interval, the evaluation point.

The experiments' tables, findings and verdicts on made-up sweeps are checked
with the others in ``test_cli.py``; here, the parts that compute something.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import stats

import optaxtra
from optaxtra.compare import Task
from optaxtra.compare.cli._engine import Sweep, run_sweep
from optaxtra.compare.cli._stats import compare, holm
from optaxtra.compare.cli.experiments._amsgrad_counterexample import OPTIMIZERS
from optaxtra.compare.cli.experiments._cautious import speed_up
from optaxtra.compare.cli.experiments._online_convex import SECTION_5, THEOREM_1, OnlineProblem, simulate


def test_reddi_theorem_1_adam_ends_at_plus_one_amsgrad_and_adopt_at_minus_one():
    """At the decays of Reddi et al.'s Theorem 1 (C = 3, b1 = 0, b2 = 1/(1 + C^2) = 0.1), alpha 0.5.

    With ``x_t = +1`` on every step the regret of one period is
    ``2C - 2 - 2 = 2``, so Adam's average regret tends to 2/3 (0.672 after
    3,000 steps from ``x = 0``). The Section 5 instance needs 1e5 steps or more
    to settle; the experiment runs it (1e6 steps by default).
    """
    runs = {name: simulate((THEOREM_1,), OPTIMIZERS[name], 0.5, (THEOREM_1.b2,), 3000)
            for name in ("adam", "amsgrad", "adopt")}
    assert runs["adam"].x[0, -1] > 0.99
    assert abs(runs["adam"].average_regret[0, -1] - 2 / 3) < 0.01
    for name in ("amsgrad", "adopt"):
        assert runs[name].x[0, -1] < -0.98
        assert runs[name].average_regret[0, -1] < 0.03
    assert SECTION_5.large - (SECTION_5.period - 1) * SECTION_5.small > 0  # The optimum is -1 there too.


def test_simulate_replays_projected_sgd_by_hand():
    """``simulate``'s gradients, step size ``alpha / sqrt(t)``, projection and regret, step by step."""
    problem = OnlineProblem("tiny", 3.0, 1.0, 3, 0.0, 0.1, "")
    path = simulate((problem,), lambda lr, b1, b2: optax.sgd(lr), 0.8, (0.1,), 7)
    x, regret, xs, averages = 0.0, 0.0, [], []
    for t in range(1, 8):
        g = 3.0 if t % 3 == 1 else -1.0
        regret += g * (x + 1.0)
        x = min(1.0, max(-1.0, x - 0.8 / math.sqrt(t) * g))
        xs.append(x)
        averages.append(regret / t)
    assert path.steps.tolist() == list(range(1, 8))
    np.testing.assert_allclose(path.x[0], xs, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(path.average_regret[0], averages, rtol=1e-6, atol=1e-7)


def test_speed_up_is_the_geometric_mean_with_a_t_interval_on_log_ratios():
    baseline = np.array([100.0, 200.0, 150.0, np.nan])
    faster = np.array([50.0, 100.0, 150.0, 80.0])  # The last seed has no pair.
    ratio, low, high, pairs = speed_up(baseline, faster)
    logs = np.log([2.0, 2.0, 1.0])
    half = stats.t.ppf(0.975, 2) * stats.sem(logs)
    assert pairs == 3 and ratio == pytest.approx(2 ** (2 / 3))
    assert (low, high) == pytest.approx((math.exp(logs.mean() - half), math.exp(logs.mean() + half)))
    assert np.isnan(speed_up(np.array([10.0, 20.0]), np.array([5.0, 10.0]))[1])  # Two pairs: no interval.
    assert speed_up(np.array([np.nan]), np.array([1.0]))[3] == 0


def test_engine_evaluates_where_the_sweep_says():
    """``Sweep.evaluate_at`` picks the weights the validation loss is taken at (Schedule-Free's ``x``)."""
    x = jnp.linspace(-1.0, 1.0, 8).reshape(4, 2)
    task = Task(
        name="quadratic", init_params=lambda key: jnp.ones(2),
        loss=lambda w, batch: jnp.mean((batch @ w - 1.0) ** 2),
        sample_batch=lambda key, batch_size: x, validation=x, train_eval=x,
    )
    at_zero = lambda state, params: jnp.zeros_like(params)
    sgd = lambda h: optax.sgd(h["learning_rate"])
    sweep = Sweep("sgd", sgd, {"learning_rate": (0.1,)}, evaluate_at=at_zero)
    result = run_sweep(task, sweep, (0,), steps=3, batch_size=4, evaluations=1)
    np.testing.assert_allclose(result.validation_loss[0], 1.0)  # loss(0) = mean((0 - 1)^2) at every checkpoint.
    np.testing.assert_allclose(result.final_train_loss[0], 1.0)
    # Without evaluate_at, Schedule-Free is evaluated at its x, not at the y it trains.
    free = lambda h: optaxtra.schedule_free_sgd(h["learning_rate"])
    default = run_sweep(task, Sweep("sf", free, {"learning_rate": (0.1,)}), (0,), steps=3, batch_size=4, evaluations=1)
    at_x = Sweep("sf", free, {"learning_rate": (0.1,)}, evaluate_at=optaxtra.schedule_free_eval_params)
    at_y = Sweep("sf", free, {"learning_rate": (0.1,)}, evaluate_at=lambda state, params: params)
    at_x, at_y = (run_sweep(task, s, (0,), steps=3, batch_size=4, evaluations=1) for s in (at_x, at_y))
    np.testing.assert_array_equal(default.validation_loss, at_x.validation_loss)
    assert not np.allclose(default.validation_loss[0, 1:], at_y.validation_loss[0, 1:])


def test_holm_keeps_the_winner_of_a_one_sided_failure():
    """A run that never reached the target (NaN) loses its pair outright, after Holm's correction too."""
    reached = np.array([30.0, 25.0, 28.0])
    missed_once = np.array([35.0, np.nan, 39.0])
    one_sided = compare(reached, missed_once, higher_is_better=False)
    each_failed = compare(np.array([np.nan, 1.0, 2.0]), np.array([1.0, np.nan, 2.0]), higher_is_better=False)
    assert one_sided.verdict == "a"
    assert [c.verdict for c in holm([one_sided, each_failed], higher_is_better=False)] == ["a", "tie"]
