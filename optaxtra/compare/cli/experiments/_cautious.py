"""``cautious``: does C-AdamW reach a validation target in fewer steps than AdamW?

Liang et al. mask the coordinates of the Adam direction whose sign disagrees
with the current gradient and report up to 1.47x fewer steps to a given loss
in LLaMA pre-training. Here: ``OPTIMIZERS``' ``cautious_adamw`` and ``adamw``
(the same Adam moments and decay 0.01) at the same learning rates and seeds,
with the validation loss evaluated at 30 checkpoints. A run's time to target
is the first checkpoint whose validation loss is at most the target
(``_time_to_target``; a run that never gets there, diverges or collapses has
none and loses its pair). Per learning rate: the paired t-test on the steps
(C-AdamW minus AdamW), Holm-corrected over the learning rates, and the
speed-up ``steps(AdamW) / steps(C-AdamW)`` as a geometric mean over the seeds
where both got there, with the 95% t interval of the mean log ratio. The
claim held if C-AdamW needs significantly fewer steps at some learning rate
and more at none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from scipy import stats

from optaxtra import OPTIMIZERS

from .._outcome import Options, Outcome
from .._records import Cell, cells, failed
from .._runner import Job, optimizer_sweep, run_jobs
from .._stats import ALPHA, MIN_SEEDS, comparison_record, compare, format_p, holm
from .._time_to_target import time_to_target
from ._common import by_key, combine, lr_sweep_outcome, setup

__all__ = ["CLAIM", "EVALUATIONS", "run", "speed_up"]

CLAIM = (
    "C-AdamW reaches a validation-loss target in fewer steps than AdamW at the same learning rate "
    "(Liang et al. 2024: up to 1.47x)."
)
EVALUATIONS = 30
OUTCOMES = {
    "a": "cautious_adamw faster",
    "b": "adamw faster",
    "tie": "not distinguishable",
    "few": "too few seeds (need 3)",
}


def _steps(cell: Cell, target: float) -> np.ndarray:
    """Per seed, the first checkpoint reaching ``target`` (NaN if none, or if the run failed)."""

    def one(run: dict[str, Any]) -> float:
        curves = run["curves"]
        reached = time_to_target(
            curves["eval_steps"], curves["validation_loss"], target, higher_is_better=False
        )
        return np.nan if failed(run) or reached is None else float(reached)

    return np.array([one(run) for run in cell.runs])


def speed_up(baseline: np.ndarray, faster: np.ndarray) -> tuple[float, float, float, int]:
    """Geometric mean of ``baseline / faster`` over the seeds where both are finite, its 95% t interval.

    Returns:
      ``(ratio, low, high, pairs)``; the interval is NaN with fewer than
      ``MIN_SEEDS`` pairs, everything NaN with none.
    """
    both = np.isfinite(baseline) & np.isfinite(faster) & (faster > 0) & (baseline > 0)
    logs = np.log(baseline[both] / faster[both])
    if logs.size == 0:
        return np.nan, np.nan, np.nan, 0
    mean = float(np.mean(logs))
    if logs.size < MIN_SEEDS:
        return float(np.exp(mean)), np.nan, np.nan, int(logs.size)
    half = stats.t.ppf(1 - ALPHA / 2, logs.size - 1) * stats.sem(logs) if np.ptp(logs) > 0 else 0.0
    return float(np.exp(mean)), float(np.exp(mean - half)), float(np.exp(mean + half)), int(logs.size)


def _finite(entry: dict[str, Any]) -> dict[str, Any]:
    """``entry`` with NaN numbers as ``None`` (for strict JSON)."""
    return {
        key: None if isinstance(value, float) and not np.isfinite(value) else value for key, value in entry.items()
    }


def _steps_text(values: np.ndarray) -> str:
    return ", ".join("—" if not np.isfinite(value) else f"{value:.0f}" for value in values)


def run(options: Options, console: Console, out: Path) -> Outcome:
    """Runs the experiment (defaults: charlm, 300 steps, lr 1e-3/3e-3/1e-2, 5 seeds, target = the task's)."""
    config = setup(
        "cautious", options, task="charlm", learning_rates=(1e-3, 3e-3, 1e-2), seeds=5, steps=300
    )
    target = options.target_loss or config.task.target_loss
    jobs = [
        Job(config.task, optimizer_sweep(name, OPTIMIZERS[name], config.learning_rates, config.warmup),
            config.steps, config.batch_size, {"warmup": config.warmup})
        for name in ("adamw", "cautious_adamw")
    ]
    records = run_jobs(jobs, config.seeds, console=console, target_loss=target, evaluations=EVALUATIONS)
    grid = by_key(cells(records, by=("optimizer", "learning_rate")))
    every = max(1, config.steps // EVALUATIONS)
    findings = [
        f"Claim: {CLAIM}",
        f"Target: validation loss {target:g}, checked every {every} steps (the resolution of every count below).",
    ]
    pairs = [
        (_steps(grid[("cautious_adamw", rate)], target), _steps(grid[("adamw", rate)], target))
        for rate in config.learning_rates
    ]
    judged = holm([compare(c, a, higher_is_better=False) for c, a in pairs], higher_is_better=False)
    ratios = []
    for rate, (cautious, plain), comparison in zip(config.learning_rates, pairs, judged):
        ratio, low, high, count = speed_up(plain, cautious)
        ratios.append({"learning_rate": rate, "speed_up": ratio, "low": low, "high": high, "pairs": count})
        outcome = OUTCOMES[comparison.verdict]
        interval = f" [{low:.2f}, {high:.2f}]" if np.isfinite(low) else ""
        speed = f"{ratio:.2f}x{interval} over {count} seeds" if count else "none (no seed got there on both)"
        tested = (
            f"p {format_p(comparison.p_value)} (Holm {format_p(comparison.p_adjusted)}, "
            f"sign-flip {format_p(comparison.p_permutation)})"
        )
        findings.append(
            f"lr {rate:g}: steps to target adamw ({_steps_text(plain)}), cautious_adamw "
            f"({_steps_text(cautious)}); speed-up {speed}; cautious_adamw − adamw: {tested} → {outcome}."
        )
    supports = [comparison.verdict == "a" for comparison in judged]
    contradicts = [comparison.verdict == "b" for comparison in judged]
    verdict = combine(supports, contradicts, all(comparison.verdict == "few" for comparison in judged))
    findings.append(f"Verdict: {verdict}.")
    rows = [((name, f"{rate:g}"), cell, False) for (name, rate), cell in grid.items()]
    return lr_sweep_outcome(
        "cautious", config, records, (config.title("cautious"), rows), findings, verdict,
        plot=(out / "cautious.png", f"cautious_adamw vs adamw on {config.task.name} ({config.steps} steps)"),
        metrics=("final_train_loss", "final_validation_loss"), target_validation_loss=target,
        evaluations=EVALUATIONS, speed_ups=[_finite(entry) for entry in ratios],
        comparisons=[comparison_record(comparison) for comparison in judged],
    )
