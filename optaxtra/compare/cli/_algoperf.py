"""The AlgoPerf-style report: time to a validation target per task, a performance profile across tasks.

Each task names a validation target (``Task.validation_target`` on
``Task.validation_metric``). A run's time to it is the first validation
checkpoint that reaches it (``_time_to_target``), so its resolution is the
checkpoint spacing (1/20 of the run by default); failed runs (diverged,
collapsed) never reach it. Per task and optimizer, AlgoPerf's
external-tuning rule with the learning rates (or the ``--trials``) as the
tuning trials and the seeds as the studies: per seed, the fastest setting;
the optimizer's time is the **median over the seeds**, ``inf`` unless more
than half got there (with an even count, the mean of the two middle times,
``inf`` if either is). AlgoPerf draws other trials in each study; here every
seed runs the same settings, its own initialisation and batches.

Wall time is steps times the measured seconds per step of the optimizer's
compiled program: all runs of a sweep are lanes of one program, so one run's
own time is not observable. It compares optimizers fairly only between sweeps
of the same size (the same settings and seeds: the default) measured on the
same machine at the same load; steps do not depend on the machine.

References:
  Dahl et al., "Benchmarking Neural Network Training Algorithms", 2023.
  https://arxiv.org/abs/2306.07179 (MLCommons AlgoPerf rules: the external
  tuning ruleset and the scoring with performance profiles).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from rich import box
from rich.table import Table

from ._profile import R_MAX, TAUS, performance_ratios, profile, profile_score

__all__ = ["MEASURES", "algoperf_report", "median_time", "seed_times"]

MEASURES = {"seconds": "seconds_to_validation_target", "steps": "steps_to_validation_target"}
"""The two times-to-target: wall time (AlgoPerf's) and steps (independent of the machine)."""


def seed_times(runs: Sequence[dict[str, Any]], field: str = "steps_to_validation_target") -> dict[int, float]:
    """Per seed, the fastest of its runs (any setting) to the target; ``inf`` if none got there."""
    times: dict[int, float] = {}
    for run in runs:
        value = np.inf if run.get(field) is None else float(run[field])
        times[run["seed"]] = min(times.get(run["seed"], np.inf), value)
    return times


def median_time(runs: Sequence[dict[str, Any]], field: str = "steps_to_validation_target") -> float:
    """The median over seeds of ``seed_times`` (``inf`` unless more than half the seeds got there)."""
    values = sorted(seed_times(runs, field).values())
    if not values:
        return np.inf
    middle = len(values) // 2
    if len(values) % 2:
        return float(values[middle])
    low, high = values[middle - 1], values[middle]
    return float((low + high) / 2) if np.isfinite(high) else np.inf


def _json(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _target_text(run: dict[str, Any]) -> str:
    sign = ">=" if run["validation_metric"] == "accuracy" else "<="
    return f"val {run['validation_metric']} {sign} {run['validation_target']:g}"


def algoperf_report(
    records: Sequence[dict[str, Any]], tasks: Sequence[str], optimizers: Sequence[str]
) -> tuple[list[Table], list[str], dict[str, Any]]:
    """The time-to-target table, the profile table, findings and the ``results.json`` entry.

    Args:
      records: every run (with ``steps_to_validation_target`` etc.).
      tasks: the task names, in order; those without a target are left out.
      optimizers: the optimizer labels, in order.

    Returns:
      ``(tables, findings, payload)``; the payload holds the times, ratios,
      profiles (on a log grid of ``tau``) and scores by wall time and by steps.
    """
    by_task = {task: [r for r in records if r["task"] == task] for task in tasks}
    targeted = [task for task in tasks if by_task[task] and by_task[task][0].get("validation_target") is not None]
    if not targeted:
        return [], ["AlgoPerf-style report: no task has a validation target (Task.validation_target)."], {}
    times = {
        measure: {
            task: {name: median_time([r for r in by_task[task] if r["optimizer"] == name], field)
                   for name in optimizers}
            for task in targeted
        }
        for measure, field in MEASURES.items()
    }
    ratios = {measure: performance_ratios(times[measure]) for measure in MEASURES}
    scores = {measure: profile_score(ratios[measure]) for measure in MEASURES}
    finite = [r for per in ratios.values() for task in per.values() for r in task.values() if np.isfinite(r)]
    taus = np.geomspace(1.0, max(R_MAX, 1.05 * max(finite, default=1.0)), 200)
    timing = Table(
        title="Time to validation target (AlgoPerf-style): median over seeds of the fastest setting",
        caption="steps · wall time (steps x the program's seconds per step) (seeds that got there)",
        box=box.SIMPLE_HEAD,
        title_justify="left",
    )
    timing.add_column("optimizer")
    for task in targeted:
        timing.add_column(f"{task}: {_target_text(by_task[task][0])}", justify="right")
    for name in optimizers:
        cells = []
        for task in targeted:
            steps, seconds = times["steps"][task][name], times["seconds"][task][name]
            got = sum(np.isfinite(t) for t in seed_times([r for r in by_task[task] if r["optimizer"] == name]).values())
            seeds = len({r["seed"] for r in by_task[task]})
            text = f"{steps:.0f} · {seconds:.2f} s" if np.isfinite(steps) else "not reached"
            cells.append(f"{text} ({got}/{seeds})")
        timing.add_row(name, *cells)
    at = {measure: profile(ratios[measure], TAUS) for measure in MEASURES}
    table = Table(
        title=f"Performance profile by wall time over {len(targeted)} task(s)",
        caption=(
            f"rho(tau): fraction of tasks within tau x the fastest; score: area under rho from 1 to {R_MAX:g}, "
            f"/ {R_MAX - 1:g} (AlgoPerf)"
        ),
        box=box.SIMPLE_HEAD,
        title_justify="left",
    )
    for header in ("optimizer", *(f"rho({tau:g})" for tau in TAUS), "score", "score by steps"):
        table.add_column(header, justify="left" if header == "optimizer" else "right")
    for name in optimizers:
        table.add_row(name, *(f"{value:.2f}" for value in at["seconds"][name]),
                      f"{scores['seconds'][name]:.3f}", f"{scores['steps'][name]:.3f}")
    top = {measure: max(scores[measure].values()) for measure in MEASURES}
    best = {measure: ", ".join(name for name, score in scores[measure].items() if score == top[measure])
            for measure in MEASURES}
    findings = [
        f"AlgoPerf-style: highest profile score by wall time {best['seconds']} ({top['seconds']:.3f}), "
        f"by steps {best['steps']} ({top['steps']:.3f}) over {len(targeted)} task(s)" + (
            f"; with {len(targeted)} tasks rho moves in steps of {1 / len(targeted):.2g}: a coarse profile."
            if len(targeted) < 5 else "."
        )
    ]
    left_out = [task for task in tasks if task not in targeted]
    if left_out:
        findings[-1] += f" Without a validation target, left out: {', '.join(left_out)}."
    payload = {
        "targets": {task: {"metric": by_task[task][0]["validation_metric"],
                           "target": by_task[task][0]["validation_target"]} for task in targeted},
        "rule": "per seed the fastest setting; median over seeds; failed or never: infinite",
        "times": {m: {t: {o: _json(v) for o, v in per.items()} for t, per in times[m].items()} for m in MEASURES},
        "ratios": {m: {t: {o: _json(v) for o, v in per.items()} for t, per in ratios[m].items()} for m in MEASURES},
        "profile": {"tau": [float(t) for t in taus], **{m: profile(ratios[m], taus) for m in MEASURES}},
        "scores": scores,
        "r_max": R_MAX,
    }
    return [timing, table], findings, payload
