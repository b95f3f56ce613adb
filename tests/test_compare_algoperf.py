"""The AlgoPerf-style report of ``optaxtra compare``: time to target, performance profiles, ``--trials``.

Hand-made curves and tables check the definitions; one tiny run on a
least-squares task (``tests/_user_tasks.py``) checks the whole path
through the command line (a few seconds of compilation).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from optaxtra.compare import Task, check_task, reference_target, time_to_target
from optaxtra.compare.cli._algoperf import algoperf_report, median_time, seed_times
from optaxtra.compare.cli._profile import performance_ratios, profile, profile_score
from optaxtra.compare.cli._trials import sample_trials, tuned_hyperparameters
from optaxtra.compare.cli.main import main

INF = math.inf


@pytest.mark.parametrize(
    "values, target, higher, expected",
    [
        ([0.1, 0.5, 0.9, 0.95], 0.9, True, 200),  # Equal to the target counts as reached.
        ([0.1, 0.5, 0.89, 0.95], 0.9, True, 300),
        ([0.1, 0.2, 0.3, 0.4], 0.9, True, None),
        ([2.3, 1.0, 0.5, 0.4], 0.5, False, 200),
        ([0.4, 1.0, 0.5, 0.4], 0.5, False, 0),  # Met by the initial parameters.
        ([2.3, None, float("nan"), 0.4], 0.5, False, 300),  # Missing and NaN checkpoints never reach it.
        ([2.3, float("-inf"), 0.1, 0.1], 0.5, False, 200),  # Nor does a non-finite value that "beats" it.
        ([2.3, 1.0, 0.5, 0.4], None, False, None),  # No target.
    ],
)
def test_time_to_target_on_hand_made_curves(values, target, higher, expected):
    assert time_to_target([0, 100, 200, 300], values, target, higher_is_better=higher) == expected


def test_time_to_target_refuses_mismatched_lengths():
    with pytest.raises(ValueError, match="one entry each"):
        time_to_target([0, 100], [0.5], 0.4, higher_is_better=False)


def test_profile_on_a_hand_made_table():
    times = {
        "a": {"x": 10.0, "y": 10.0, "z": 40.0},  # A tie for the fastest: both get ratio 1.
        "b": {"x": 30.0, "y": INF, "z": 20.0},  # y never got there.
        "c": {"x": INF, "y": INF, "z": INF},  # Nobody did: counts for no one.
        "d": {"x": 0.0, "y": 5.0, "z": 0.0},  # Met at step 0 by two.
    }
    ratios = performance_ratios(times)
    assert ratios["a"] == {"x": 1.0, "y": 1.0, "z": 4.0}
    assert ratios["b"] == {"x": 1.5, "y": INF, "z": 1.0}
    assert ratios["c"] == {"x": INF, "y": INF, "z": INF}
    assert ratios["d"] == {"x": 1.0, "y": INF, "z": 1.0}
    rho = profile(ratios, [1.0, 1.5, 3.99, 4.0, 1e9])
    assert rho == {
        "x": [0.5, 0.75, 0.75, 0.75, 0.75],
        "y": [0.25, 0.25, 0.25, 0.25, 0.25],
        "z": [0.5, 0.5, 0.5, 0.75, 0.75],
    }
    # Exact areas over [1, 4], / 3: x: (3 + 2.5 + 3) / 4 / 3; y: 3 / 4 / 3; z: (0 + 3 + 3) / 4 / 3.
    assert profile_score(ratios) == pytest.approx({"x": 8.5 / 12, "y": 3 / 12, "z": 6 / 12}, abs=1e-12)


def test_profile_score_agrees_with_a_fine_numerical_integral():
    ratios = {"a": {"x": 1.0, "y": 1.7}, "b": {"x": 2.9, "y": 1.0}, "c": {"x": 6.0, "y": INF}}
    taus = np.linspace(1.0, 4.0, 300_001)
    rho = profile(ratios, taus)
    for name, score in profile_score(ratios).items():
        assert score == pytest.approx(np.trapezoid(rho[name], taus) / 3.0, abs=1e-4)


def test_profile_refuses_tasks_with_different_optimizers_and_negative_times():
    with pytest.raises(ValueError, match="same optimizers"):
        performance_ratios({"a": {"x": 1.0}, "b": {"y": 1.0}})
    with pytest.raises(ValueError, match=">= 0"):
        performance_ratios({"a": {"x": -1.0}})


def _run(seed: int, steps: int | None, setting: float = 0.0) -> dict:
    return {"seed": seed, "learning_rate": setting, "steps_to_validation_target": steps}


def test_median_over_seeds_of_the_fastest_setting():
    runs = [_run(0, 300, 1e-3), _run(0, 100, 1e-2), _run(1, None, 1e-3), _run(1, 200, 1e-2), _run(2, None),
            _run(2, 500, 1e-2)]
    assert seed_times(runs) == {0: 100.0, 1: 200.0, 2: 500.0}
    assert median_time(runs) == 200.0
    # Even count: the mean of the middle two; infinite when one of them is (half the seeds never got there).
    assert median_time([_run(0, 100), _run(1, 300), _run(2, 50), _run(3, None)]) == 200.0
    assert median_time([_run(0, 100), _run(1, None), _run(2, 50), _run(3, None)]) == INF
    assert median_time([_run(0, 100), _run(1, None), _run(2, None)]) == INF


def _record(task: str, optimizer: str, seed: int, steps: int | None, target: float | None = 0.9) -> dict:
    return {"task": task, "optimizer": optimizer, "seed": seed, "validation_metric": "accuracy",
            "validation_target": target, "steps_to_validation_target": steps,
            "seconds_to_validation_target": None if steps is None else steps * 0.01}


def test_report_scores_the_tasks_with_a_target_and_leaves_the_others_out():
    records = [
        *(_record("a", "x", seed, 100) for seed in range(3)),
        *(_record("a", "y", seed, 300 if seed else None) for seed in range(3)),
        *(_record("b", "x", seed, None) for seed in range(3)),  # x never reaches b's target.
        *(_record("b", "y", seed, 50) for seed in range(3)),
        *(_record("c", name, seed, 10, target=None) for name in "xy" for seed in range(3)),
    ]
    tables, findings, payload = algoperf_report(records, ["a", "b", "c"], ["x", "y"])
    assert set(payload["targets"]) == {"a", "b"} and "left out: c" in findings[0]
    assert payload["times"]["steps"] == {"a": {"x": 100.0, "y": 300.0}, "b": {"x": None, "y": 50.0}}
    assert payload["scores"]["steps"] == pytest.approx({"x": 0.5, "y": (1 + 1 / 3) / 2})
    assert len(tables) == 2 and "coarse" in findings[0]
    assert algoperf_report(records, ["c"], ["x", "y"])[2] == {}


def _reference_run(rate: float, seed: int, accuracy: list[float], diverged: bool = False) -> dict:
    return {"learning_rate": rate, "seed": seed, "steps": 100, "diverged": diverged, "collapsed": False,
            "curves": {"eval_steps": [0, 25, 50, 75, 100], "validation_accuracy": accuracy,
                       "validation_loss": [2.0 - a for a in accuracy]}}


def test_reference_target_is_the_median_best_within_three_quarters_of_the_run():
    runs = [
        _reference_run(1e-3, 0, [0.1, 0.5, 0.8, 0.912, 0.99]),  # The last checkpoint is past 3/4: not counted.
        _reference_run(1e-3, 1, [0.1, 0.6, 0.934, 0.90, 0.99]),  # The best, not the last, within 3/4.
        _reference_run(1e-3, 2, [0.1, 0.7, 0.85, 0.86, 0.87]),
        _reference_run(1e-2, 0, [0.1, 0.95, 0.96, 0.97, 0.97], diverged=True),  # A failed run reached nothing.
        _reference_run(1e-2, 1, [0.1, 0.5, 0.6, 0.7, 0.99]),
        _reference_run(1e-2, 2, [0.1, 0.5, 0.6, 0.95, 0.99]),
    ]
    # Medians: lr 1e-3 of (0.912, 0.934, 0.86) = 0.912; lr 1e-2 of (-inf, 0.7, 0.95) = 0.7. Rounded down: 0.91.
    assert reference_target(runs) == 0.91
    assert reference_target(runs, decimals=3) == 0.912
    # On the loss (2 - accuracy): the lowest median, 1.088, rounded up.
    assert reference_target(runs, "loss") == 1.09
    with pytest.raises(ValueError, match="metric must be"):
        reference_target(runs, "error")


def test_trials_are_drawn_from_the_documented_space_and_the_same_for_every_optimizer():
    trials = sample_trials(2000, (1e-3, 3e-2, 1e-1), seed=7)
    assert trials["learning_rate"].min() >= 1e-3 and trials["learning_rate"].max() <= 1e-1
    assert trials["b1"].min() >= 0.5 and trials["b1"].max() <= 0.98
    assert trials["b2"].min() >= 0.9 and trials["b2"].max() <= 0.999
    assert trials["weight_decay"].min() >= 5e-3 and trials["weight_decay"].max() <= 1.0
    # Log-uniform: the median of log(1 - b1) is the midpoint of log 0.02 and log 0.5 (within sampling error).
    assert np.median(np.log(1 - trials["b1"])) == pytest.approx(0.5 * (np.log(0.02) + np.log(0.5)), abs=0.15)
    again = sample_trials(2000, (1e-3, 1e-1), seed=7)
    assert all(np.array_equal(trials[key], again[key]) for key in trials)
    assert not np.array_equal(sample_trials(3, (1e-3, 1e-1), seed=8)["b1"], again["b1"][:3])


@pytest.mark.parametrize(
    "name, tuned",
    [("adam", ("b1", "b2")), ("adamw", ("b1", "b2", "weight_decay")), ("lamb", ("b1", "b2", "weight_decay")),
     ("sgd", ()), ("sgd_momentum", ("momentum",)), ("schedule_free_sgd", ("b1",)), ("muon", ("weight_decay",))],
)
def test_each_optimizer_searches_the_hyperparameters_it_has(name, tuned):
    assert tuned_hyperparameters(name)[1] == tuned


def test_check_task_validates_the_validation_target():
    base = Task(name="t", init_params=lambda key: jnp.zeros(2), loss=lambda w, b: jnp.sum(w * b),
                sample_batch=lambda key, n: jnp.ones(2), validation=jnp.ones(2))
    with pytest.raises(ValueError, match="validation_metric must be one of"):
        check_task(base._replace(validation_metric="error"))
    with pytest.raises(ValueError, match="needs an accuracy function"):
        check_task(base._replace(validation_target=0.9))
    assert check_task(base._replace(validation_target=0.5, validation_metric="loss")).validation_target == 0.5


USER_TASKS = Path(__file__).with_name("_user_tasks.py")  # a user's file.py:function module


@pytest.mark.parametrize(
    "argv, message",
    [
        (("--trials", "0"), "--trials: must be a positive integer"),
        (("--trials-seed", "3"), "--trials-seed needs --trials N"),
        (("--trials", "2", "--experiment", "amsgrad"), "--trials applies to the comparison"),
        (("--validation-target", "-1"), "--validation-target: must be a positive finite number"),
    ],
)
def test_bad_trials_arguments_exit_2(argv, message, capsys, tmp_path):
    assert main(["compare", *argv, "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert message in " ".join(error.split()) and "Traceback" not in error


def test_a_validation_target_on_accuracy_needs_an_accuracy(tmp_path, capsys):
    argv = ["compare", "--task", f"{USER_TASKS}:without_accuracy", "--validation-target", "0.5", "--out", str(tmp_path)]
    assert main(argv) == 2
    assert "task 'regression' has no accuracy" in capsys.readouterr().err


def test_tiny_trials_run_writes_the_profile(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["compare", "--task", f"{USER_TASKS}:regression_to_target", "--optimizers", "adam,sgd_momentum", "--trials", "3",
            "--trials-seed", "5", "--seeds", "3", "--out", str(out)]
    assert main(argv) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "Performance profile by wall time over 1 task(s)" in printed and "val loss <= 8" in printed
    results = json.loads((out / "results.json").read_text())
    trials = sample_trials(3, (1e-2, 1e-1), seed=5)
    runs = results["runs"]
    assert len(runs) == 2 * 3 * 3
    for run in runs:  # The same trial points for both optimizers; each uses the coordinates it has.
        assert run["learning_rate"] == pytest.approx(trials["learning_rate"][run["trial"]])
        momentum = run["b1"] if run["optimizer"] == "adam" else run["momentum"]
        assert momentum == pytest.approx(trials["b1"][run["trial"]])
        assert ("b2" in run) == (run["optimizer"] == "adam") and "weight_decay" not in run
    algoperf = results["config"]["algoperf"]
    assert set(algoperf["scores"]["steps"]) == {"adam", "sgd_momentum"}
    expected = {name: median_time([r for r in runs if r["optimizer"] == name]) for name in ("adam", "sgd_momentum")}
    assert algoperf["times"]["steps"]["regression"] == {k: (None if v == INF else v) for k, v in expected.items()}
    assert math.isfinite(expected["adam"])  # The target is within reach: the times are not vacuous.
    assert results["config"]["trials"]["count"] == 3
    assert (out / "performance_profile.png").stat().st_size > 10_000
