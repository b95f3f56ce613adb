"""``schedule-free``: does Schedule-Free AdamW need to know the run length?

Defazio et al. report that Schedule-Free AdamW, which has no schedule and so
no use for the run length ``T``, matches or beats AdamW with a cosine
schedule tuned for ``T``. Here, at three run lengths: AdamW with a cosine
decay to 0 over the run (``optax.cosine_decay_schedule``) and AdamW with a
warmup-stable-decay schedule whose last 20% decays linearly to 0
(``optaxtra.warmup_stable_decay``, Hägele et al.'s recipe), each at its best
learning rate *for each length*; Schedule-Free AdamW at *one* learning rate
for every length, the one with the best validation loss averaged over the
lengths (it is tuned once, not per length). All three use decoupled decay
0.01 multiplied by the learning rate and the same ``--warmup`` (default 0).
Schedule-Free is evaluated at its averaged point ``x``, as the authors'
``optimizer.eval()`` does (the compare engine does so for every
Schedule-Free state); the others at their params.

The tuned schedules are picked on the same validation loss they are judged
by, which favours them. Per length, Schedule-Free is compared with each
tuned schedule seed by seed (paired t-tests, Holm-corrected over the six
comparisons). The claim held if Schedule-Free is significantly better
somewhere and worse nowhere; it did not hold if it is significantly worse
somewhere and better nowhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optax
from rich.console import Console

from optaxtra import adamw, schedule_free_adamw, warmup_stable_decay

from .._engine import Sweep
from .._outcome import Options, Outcome
from .._plots import plot_versus
from .._records import Cell, cells
from .._report import sweep_table
from .._runner import Job, run_jobs
from .._stats import comparison_record
from ._common import VALIDATION_LOSS, best_by, by_key, combine, judge_all, setup

__all__ = ["CLAIM", "LENGTHS", "run"]

CLAIM = (
    "Schedule-Free AdamW at one learning rate for every run length matches or beats AdamW with a cosine or "
    "a warmup-stable-decay schedule tuned for each length (Defazio et al. 2024)."
)
LENGTHS = (100, 200, 400)
WEIGHT_DECAY = 0.01
DECAY_FRACTION = 0.2
SCHEDULE_FREE = "schedule_free_adamw"


def _cosine(peak: Any, steps: int, warmup: int) -> optax.Schedule:
    if warmup == 0:
        return optax.cosine_decay_schedule(peak, steps)
    return optax.warmup_cosine_decay_schedule(0.0, peak, warmup, steps)


def _wsd(peak: Any, steps: int, warmup: int) -> optax.Schedule:
    decay = max(1, round(DECAY_FRACTION * steps))
    return warmup_stable_decay(peak, steps, min(warmup, steps - decay), decay)


def _sweeps(rates: tuple[float, ...], sf_rates: tuple[float, ...], steps: int, warmup: int) -> list[Sweep]:
    cosine = lambda h: adamw(_cosine(h["learning_rate"], steps, warmup), weight_decay=WEIGHT_DECAY)
    wsd = lambda h: adamw(_wsd(h["learning_rate"], steps, warmup), weight_decay=WEIGHT_DECAY)
    free = lambda h: schedule_free_adamw(h["learning_rate"], weight_decay=WEIGHT_DECAY, warmup_steps=warmup)
    return [
        Sweep("adamw+cosine", cosine, {"learning_rate": rates}),
        Sweep("adamw+wsd", wsd, {"learning_rate": rates}),
        Sweep(SCHEDULE_FREE, free, {"learning_rate": sf_rates}),
    ]


def _one_rate(grid: list[Cell], lengths: tuple[int, ...]) -> float:
    """Schedule-Free's single learning rate: fewest failed runs, then the best mean loss over the lengths."""
    rates = sorted({cell.key[2] for cell in grid if cell.key[1] == SCHEDULE_FREE})
    chosen = by_key(grid)

    def score(rate: float) -> tuple[int, float]:
        picked = [chosen[(length, SCHEDULE_FREE, rate)] for length in lengths]
        means = [cell.mean(VALIDATION_LOSS.field) for cell in picked]
        mean = float(np.mean(means)) if np.all(np.isfinite(means)) else np.inf
        return sum(cell.failed for cell in picked), mean

    return min(rates, key=score)


def run(options: Options, console: Console, out: Path) -> Outcome:
    """Runs the experiment (defaults: charlm, 100/200/400 steps, 3 learning rates each, 3 seeds).

    ``--steps N`` runs the lengths N/4, N/2 and N; ``--lrs`` sets every grid
    (by default AdamW 1e-3/3e-3/1e-2 and Schedule-Free three times higher,
    as its authors advise).
    """
    config = setup(
        "schedule-free", options, task="charlm", learning_rates=(1e-3, 3e-3, 1e-2), seeds=3, steps=LENGTHS[-1]
    )
    lengths = LENGTHS
    if options.steps is not None:
        lengths = tuple(sorted({max(1, config.steps // k) for k in (4, 2, 1)}))
    sf_rates = config.learning_rates
    if not options.learning_rates:
        sf_rates = tuple(3 * rate for rate in config.learning_rates)
    jobs = [
        Job(config.task, sweep, length, config.batch_size,
            {"length": length, "warmup": config.warmup, "series": f"{sweep.optimizer}, {length} steps"})
        for length in lengths
        for sweep in _sweeps(config.learning_rates, sf_rates, length, config.warmup)
    ]
    records = run_jobs(jobs, config.seeds, console=console, target_loss=options.target_loss)
    metric = VALIDATION_LOSS
    grid = cells(records, by=("length", "optimizer", "learning_rate"))
    rate = _one_rate(grid, lengths)
    chosen = by_key(grid)
    findings = [f"Claim: {CLAIM}", f"{SCHEDULE_FREE}: one learning rate for every length, {rate:g}."]
    requests, marked = [], set()
    for length in lengths:
        best = best_by([cell._replace(key=cell.key[1:]) for cell in grid if cell.key[0] == length], metric)
        free = chosen[(length, SCHEDULE_FREE, rate)]
        marked.add(free.key)
        findings.append(
            f"{length} steps: best lr adamw+cosine {best['adamw+cosine'].key[1]:g}, adamw+wsd "
            f"{best['adamw+wsd'].key[1]:g}; {SCHEDULE_FREE} would pick {best[SCHEDULE_FREE].key[1]:g}."
        )
        for name in ("adamw+cosine", "adamw+wsd"):
            marked.add((length, *best[name].key))
            where = f" at {length} steps (best lr {best[name].key[1]:g})"
            requests.append((SCHEDULE_FREE, free, name, best[name], where))
    judged = judge_all(requests, metric)
    findings += [sentence for _, sentence in judged]
    supports = [comparison.verdict == "a" for comparison, _ in judged]
    contradicts = [comparison.verdict == "b" for comparison, _ in judged]
    verdict = combine(supports, contradicts, all(comparison.verdict == "few" for comparison, _ in judged))
    findings.append(f"Verdict: {verdict}.")
    rows = [((str(cell.key[0]), cell.key[1], f"{cell.key[2]:g}"), cell, cell.key in marked) for cell in grid]
    title = config.title("schedule-free", f"lengths {', '.join(map(str, lengths))}; * = compared")
    plot_versus(out / "schedule_free.png", f"schedule-free on {config.task.name}: final validation loss",
                records, x="learning_rate", series="series", metrics=("final_validation_loss",))
    described = config.described(
        lengths=list(lengths), schedule_free_learning_rates=list(sf_rates), schedule_free_learning_rate=rate,
        weight_decay=WEIGHT_DECAY, wsd_decay_fraction=DECAY_FRACTION, metric=metric.field,
        warmup=config.warmup,
        comparisons=[comparison_record(comparison) for comparison, _ in judged],
    )
    table = sweep_table(title, ("steps", "optimizer", "lr"), rows)
    return Outcome("schedule-free", records, [table], findings, verdict, ["schedule_free.png"], described)
