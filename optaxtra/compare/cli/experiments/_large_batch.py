"""``large-batch``: does LAMB hold its accuracy better than AdamW as the batch grows?

You et al. scale BERT's batch to 32k with LAMB where AdamW degrades. Here the
number of epochs is fixed, so a batch ``k`` times larger takes ``k`` times
fewer steps; the learning rate follows the square-root rule
``lr = base * sqrt(batch / smallest batch)``, each optimizer at its best of a
few base rates per batch size. Both use decay 0.01 (``OPTIMIZERS``'
``adamw`` and ``lamb``). The claim holds if LAMB is significantly ahead
(paired t-tests, Holm-corrected over the batch sizes) at the largest batch and
its lead is significantly larger there than at the smallest (a paired t-test
on the per-seed leads); it did not hold if AdamW is significantly ahead at any
larger batch.
"""

from __future__ import annotations

import math
from pathlib import Path

import jax
import numpy as np
from rich.console import Console

from optaxtra import OPTIMIZERS, sqrt_batch_scaling

from .._engine import Sweep
from .._outcome import Options, Outcome
from .._plots import plot_versus
from .._records import cells
from .._report import sweep_table
from .._runner import Job, run_jobs, with_warmup
from .._stats import METHOD, compare
from ._common import best_by, combine, judge_all, primary_metric, setup

__all__ = ["BATCH_SIZES", "CLAIM", "run"]

CLAIM = "LAMB keeps its accuracy as the batch grows better than AdamW (You et al. 2020)."
BATCH_SIZES = (16, 64, 256, 1024)
EPOCHS = 20


def _sweep(name: str, base_rates: tuple[float, ...], batch: int, smallest: int, warmup: int) -> Sweep:
    factory = OPTIMIZERS[name]
    return Sweep(
        name,
        lambda h: factory(with_warmup(h["learning_rate"], warmup)),
        {"learning_rate": [sqrt_batch_scaling(rate, batch, smallest) for rate in base_rates]},
    )


def run(options: Options, console: Console, out: Path) -> Outcome:
    """Runs the experiment (defaults: mnist1d_mlp, batch 16 to 1,024, 20 epochs, base lr 1e-3 to 1e-2, 5 seeds)."""
    config = setup(
        "large-batch",
        options,
        task="mnist1d_mlp",
        learning_rates=(1e-3, 3e-3, 1e-2),
        seeds=5,
        batch_size=BATCH_SIZES[0],
    )
    smallest = config.batch_size
    batches = tuple(smallest * 4**power for power in range(len(BATCH_SIZES)))
    train_eval = jax.tree.leaves(config.task.train_eval)
    examples = (
        train_eval[0].shape[0] if train_eval else 1000 * smallest
    )  # Without a size, "epochs" of 1,000 steps.
    base_steps = options.steps or max(1, round(EPOCHS * examples / smallest))
    jobs = []
    for batch in batches:
        steps = max(1, round(base_steps * smallest / batch))
        scale = math.sqrt(batch / smallest)
        for name in ("adamw", "lamb"):
            jobs.append(
                Job(
                    config.task,
                    _sweep(name, config.learning_rates, batch, smallest, config.warmup),
                    steps,
                    batch,
                    {"warmup": config.warmup, "lr_scale": scale},
                )
            )
    records = run_jobs(jobs, config.seeds, console=console, target_loss=options.target_loss)
    for record in records:
        record["base_learning_rate"] = float(f"{record['learning_rate'] / record['lr_scale']:.6g}")
    metric = primary_metric(config.task)
    findings = [f"Claim: {CLAIM}"]
    gains, best_rows, chosen, requests = {}, [], [], []
    for batch in batches:
        batch_cells = cells(
            [r for r in records if r["batch_size"] == batch], by=("optimizer", "base_learning_rate")
        )
        best = best_by(batch_cells, metric)
        requests.append(("lamb", best["lamb"], "adamw", best["adamw"], f" at batch {batch}"))
        best_rows += [
            ((name, str(batch), f"{cell.key[1]:g}", str(cell.runs[0]["steps"])), cell, False)
            for name, cell in best.items()
        ]
        chosen += [run for cell in best.values() for run in cell.runs]
    for batch, request, (comparison, sentence) in zip(batches, requests, judge_all(requests, metric)):
        findings.append(sentence + f" (best base lr: lamb {request[1].key[1]:g}, adamw {request[3].key[1]:g})")
        gains[batch] = comparison
    first, last = gains[batches[0]], gains[batches[-1]]
    if np.isfinite(last.differences).all() and np.isfinite(first.differences).all():
        growing = (
            compare(last.differences, first.differences, higher_is_better=metric.higher_is_better).verdict
            == "a"
        )
    else:  # A side diverged: the lead "grows" only if it is won at the largest batch and not at the smallest.
        growing = last.verdict == "a" and first.verdict != "a"
    adamw_ahead = [batch for batch in batches[1:] if gains[batch].verdict == "b"]
    verdict = combine(
        [last.verdict == "a" and growing],
        [bool(adamw_ahead)],
        all(gain.verdict == "few" for gain in gains.values()),
    )
    if adamw_ahead:
        findings.append(f"AdamW significantly ahead at batch {', '.join(map(str, adamw_ahead))}.")
    findings.append(
        f"LAMB's lead grows significantly from batch {batches[0]} to {batches[-1]}: {growing}."
    )
    findings.append(f"Verdict: {verdict}.")
    title = (
        f"large-batch on {config.task.name}: {EPOCHS if options.steps is None else 'fixed'} epochs, "
        f"lr = base x sqrt(batch/{smallest}), {len(config.seeds)} seeds; best base lr per batch"
    )
    plot_versus(
        out / "large_batch.png",
        f"large-batch on {config.task.name}: each at its best base lr",
        chosen,
        x="batch_size",
        series="optimizer",
        metrics=("final_validation_loss", "final_validation_accuracy"),
    )
    return Outcome(
        "large-batch",
        records,
        [sweep_table(title, ("optimizer", "batch", "base lr", "steps"), best_rows)],
        findings,
        verdict,
        ["large_batch.png"],
        {
            "task": config.task.name,
            "base_learning_rates": list(config.learning_rates),
            "seeds": list(config.seeds),
            "batch_sizes": list(batches),
            "steps_at_smallest_batch": base_steps,
            "statistics": METHOD,
        },
    )
