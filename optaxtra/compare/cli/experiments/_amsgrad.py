"""``amsgrad``: does AMSGrad's non-decreasing second moment train better than Adam?

Reddi et al. build a convex problem where Adam fails to converge and AMSGrad
does, and report AMSGrad at least as good on real networks; later studies
mostly found no difference in practice. Here: Adam and AMSGrad (PyTorch's
convention: the maximum of the raw ``v``) at several learning rates, judged
seed by seed at each learning rate and at each one's best.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from optaxtra import OPTIMIZERS

from .._outcome import Options, Outcome
from .._records import cells
from .._runner import Job, optimizer_sweep, run_jobs
from ._common import best_by, by_key, combine, judge_all, lr_sweep_outcome, primary_metric, setup

__all__ = ["CLAIM", "run"]

CLAIM = "AMSGrad trains at least as well as Adam, and better somewhere (Reddi, Kale & Kumar 2018)."


def run(options: Options, console: Console, out: Path) -> Outcome:
    """Runs the experiment (defaults: mnist1d_mlp, lr 1e-3 to 3e-2, 5 seeds, 2,000 steps)."""
    config = setup(
        "amsgrad", options, task="mnist1d_mlp", learning_rates=(1e-3, 3e-3, 1e-2, 3e-2), seeds=5, steps=2000
    )
    jobs = [
        Job(
            config.task,
            optimizer_sweep(name, OPTIMIZERS[name], config.learning_rates, config.warmup),
            config.steps,
            config.batch_size,
            {"warmup": config.warmup},
        )
        for name in ("adam", "amsgrad")
    ]
    records = run_jobs(jobs, config.seeds, console=console, target_loss=options.target_loss)
    metric = primary_metric(config.task)
    grid_cells = cells(records, by=("optimizer", "learning_rate"))
    grid = by_key(grid_cells)
    findings = [f"Claim: {CLAIM}"]
    best = best_by(grid_cells, metric)
    requests = [
        ("amsgrad", grid[("amsgrad", rate)], "adam", grid[("adam", rate)], f" at lr {rate:g}")
        for rate in config.learning_rates
    ] + [("amsgrad", best["amsgrad"], "adam", best["adam"], " (each at its best lr)")]
    judged = judge_all(requests, metric)
    findings += [sentence for _, sentence in judged]
    supports = [comparison.verdict == "a" for comparison, _ in judged[:-1]]
    contradicts = [comparison.verdict == "b" for comparison, _ in judged]
    too_few = all(comparison.verdict == "few" for comparison, _ in judged)
    verdict = combine(supports, contradicts, too_few)
    findings.append(f"Verdict: {verdict}.")
    rows = [((name, f"{rate:g}"), cell, best[name] is cell) for (name, rate), cell in grid.items()]
    return lr_sweep_outcome(
        "amsgrad", config, records, (config.title("amsgrad", "* = best lr"), rows), findings, verdict,
        plot=(out / "amsgrad.png", f"amsgrad vs adam on {config.task.name} ({config.steps} steps)"),
        metrics=("final_train_loss", "final_validation_loss"),
    )
