"""``lr-robustness``: is RAdam usable over a wider range of learning rates than Adam?

The RAdam paper (Fig. 6) trains with learning rates over two decades and
finds Adam's accuracy falling apart at the larger ones while RAdam's holds.
Here: Adam, RAdam and SGD with momentum over half-decade steps from 1e-4 to
~3. A learning rate is *usable* when no seed failed and the mean validation
accuracy is within ``TOLERANCE`` points of the best of the whole grid (for a
task without accuracy: mean validation loss within ``LOSS_TOLERANCE`` times
the best). The claim holds when RAdam's usable window is wider than Adam's
and, at a learning rate only RAdam can use, the paired difference is
significant (paired t-tests, Holm-corrected over those learning rates).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.console import Console

from optaxtra import OPTIMIZERS

from .._outcome import Options, Outcome
from .._records import cells
from .._runner import Job, optimizer_sweep, run_jobs
from ._common import (
    by_key, combine, format_settings, judge_all, lr_sweep_outcome, primary_metric, setup,
)

__all__ = ["CLAIM", "run"]

CLAIM = "RAdam's usable learning-rate window is wider than Adam's (Liu et al. 2020, Fig. 6)."
OPTIMIZERS_RUN = ("adam", "radam", "sgd_momentum")
TOLERANCE = 2.0
LOSS_TOLERANCE = 1.2


def _usable(cell, metric, best: float) -> bool:
    if cell.failed:
        return False
    mean = cell.mean(metric.field)
    if metric.higher_is_better:
        return bool(mean * metric.scale >= best * metric.scale - TOLERANCE)
    return bool(mean <= best * LOSS_TOLERANCE)


def run(options: Options, console: Console, out: Path) -> Outcome:
    """Runs the experiment (defaults: charlm, 10 learning rates, 3 seeds, 200 steps)."""
    grid = tuple(float(f"{rate:.3g}") for rate in np.logspace(-4, 0.5, 10))
    config = setup("lr-robustness", options, task="charlm", learning_rates=grid, seeds=3)
    jobs = [
        Job(
            config.task,
            optimizer_sweep(name, OPTIMIZERS[name], config.learning_rates, config.warmup),
            config.steps,
            config.batch_size,
            {"warmup": config.warmup},
        )
        for name in OPTIMIZERS_RUN
    ]
    records = run_jobs(jobs, config.seeds, console=console, target_loss=options.target_loss)
    metric = primary_metric(config.task)
    grid_cells = by_key(cells(records, by=("optimizer", "learning_rate")))
    means = [cell.mean(metric.field) for cell in grid_cells.values() if not cell.failed]
    finite = [mean for mean in means if np.isfinite(mean)]
    best = (max(finite) if metric.higher_is_better else min(finite)) if finite else np.nan
    windows = {
        name: [rate for rate in config.learning_rates if _usable(grid_cells[(name, rate)], metric, best)]
        for name in OPTIMIZERS_RUN
    }
    findings = [f"Claim: {CLAIM}"]
    for name, window in windows.items():
        findings.append(
            f"{name}: usable at {len(window)} learning rates ({format_settings(window) or 'none'})."
        )
    supports, contradicts = [], []
    differing = [
        rate for rate in config.learning_rates if (rate in windows["radam"]) != (rate in windows["adam"])
    ]
    judged = judge_all(
        [
            ("radam", grid_cells[("radam", rate)], "adam", grid_cells[("adam", rate)], f" at lr {rate:g}")
            for rate in differing
        ],
        metric,
    )
    for rate, (comparison, sentence) in zip(differing, judged):
        in_radam, in_adam = rate in windows["radam"], rate in windows["adam"]
        findings.append(sentence + f" (usable by {'radam' if in_radam else 'adam'} only)")
        supports.append(in_radam and comparison.verdict == "a")
        contradicts.append(in_adam and comparison.verdict == "b")
    if len(windows["radam"]) == len(windows["adam"]) and not any(supports + contradicts):
        findings.append("The windows have the same width.")
    verdict = combine(
        supports, contradicts, bool(judged) and all(comparison.verdict == "few" for comparison, _ in judged)
    )
    rule = (
        f"within {TOLERANCE:g} points of the best accuracy"
        if metric.higher_is_better
        else f"at most {LOSS_TOLERANCE:g} x the best loss"
    )
    findings.append(f"Verdict: {verdict} (usable = mean {rule}, no seed diverged or collapsed).")
    rows = [
        ((name, f"{rate:g}"), grid_cells[(name, rate)], rate in windows[name])
        for name in OPTIMIZERS_RUN
        for rate in config.learning_rates
    ]
    return lr_sweep_outcome(
        "lr-robustness", config, records, (config.title("lr-robustness", "* = usable"), rows),
        findings, verdict,
        plot=(out / "lr_robustness.png", f"lr-robustness on {config.task.name} ({config.steps} steps)"),
        windows=windows,
    )
