"""What the experiments share: their settings, the metric they judge by, and how verdicts read."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np

from ...tasks._interface import Task
from .._errors import UsageError
from .._loading import resolve_task
from .._outcome import Options, Outcome
from .._plots import plot_versus
from .._records import Cell
from .._report import sweep_table
from .._stats import (
    METHOD, Comparison, compare, format_difference, format_interval, format_p, holm, too_few_text,
)

__all__ = [
    "VALIDATION_ACCURACY",
    "VALIDATION_LOSS",
    "Metric",
    "Setup",
    "best_by",
    "by_key",
    "combine",
    "format_settings",
    "judge",
    "judge_all",
    "lr_sweep_outcome",
    "primary_metric",
    "setup",
]

VALIDATION_METRICS = ("final_validation_loss", "final_validation_accuracy")
SweepRow = tuple[Sequence[str], Cell, bool]  # setting labels, the cell, whether it is marked


class Metric(NamedTuple):
    """A record field experiments judge by, and how to print it."""

    field: str
    higher_is_better: bool
    scale: float
    digits: int
    label: str


VALIDATION_ACCURACY = Metric("final_validation_accuracy", True, 100.0, 1, "val acc (points)")
VALIDATION_LOSS = Metric("final_validation_loss", False, 1.0, 3, "val loss")


def primary_metric(task: Task) -> Metric:
    """Validation accuracy where the task has one, else validation loss."""
    return VALIDATION_ACCURACY if task.accuracy is not None else VALIDATION_LOSS


class Setup(NamedTuple):
    """An experiment's effective settings: its defaults, overridden by the options given."""

    task: Task
    learning_rates: tuple[float, ...]
    seeds: tuple[int, ...]
    steps: int
    batch_size: int
    warmup: int

    def title(self, experiment: str, note: str = "") -> str:
        """The heading of the experiment's table: what ran, then ``note``."""
        ran = (
            f"{experiment} on {self.task.name}: {self.steps} steps, batch {self.batch_size}, "
            f"{len(self.seeds)} seeds"
        )
        return f"{ran}; {note}" if note else ran

    def described(self, **extra: Any) -> dict[str, Any]:
        """What ran, for ``results.json``: task, learning rates, seeds, steps, batch size, ``extra``."""
        return {
            "task": self.task.name,
            "learning_rates": list(self.learning_rates),
            "seeds": list(self.seeds),
            "steps": self.steps,
            "batch_size": self.batch_size,
            "statistics": METHOD,
            **extra,
        }


def setup(
    name: str,
    options: Options,
    *,
    task: str,
    learning_rates: Sequence[float],
    seeds: int,
    steps: int | None = None,
    batch_size: int | None = None,
    warmup: int = 0,
) -> Setup:
    """The experiment's defaults with the user's ``--task/--lrs/--seeds/--steps/--batch-size/--warmup``."""
    if options.optimizers is not None:
        raise UsageError(
            f"--optimizers cannot be combined with --experiment {name}: it fixes its optimizers."
        )
    if options.tasks is not None and len(options.tasks) != 1:
        raise UsageError(f"--experiment {name} runs on one task; got --task {','.join(options.tasks)}.")
    chosen = resolve_task(options.tasks[0] if options.tasks else task)
    run_steps = options.steps or steps or chosen.steps
    run_warmup = warmup if options.warmup is None else options.warmup
    if run_warmup > run_steps:
        raise UsageError(f"--warmup ({run_warmup}) is longer than the run ({run_steps} steps).")
    return Setup(
        task=chosen,
        learning_rates=tuple(options.learning_rates or learning_rates),
        seeds=tuple(options.seeds or range(seeds)),
        steps=run_steps,
        batch_size=options.batch_size or batch_size or chosen.batch_size,
        warmup=run_warmup,
    )


def judge_all(
    requests: Sequence[tuple[str, Cell, str, Cell, str]], metric: Metric
) -> list[tuple[Comparison, str]]:
    """Compares each ``(a_name, a, b_name, b, where)`` seed by seed, Holm-corrected as one family.

    Returns:
      One ``(comparison, sentence)`` per request, in order.
    """
    raw = [
        compare(a.values(metric.field), b.values(metric.field), higher_is_better=metric.higher_is_better)
        for _, a, _, b, _ in requests
    ]
    corrected = holm(raw, higher_is_better=metric.higher_is_better)
    results = []
    for (a_name, _, b_name, _, where), comparison in zip(requests, corrected):
        outcome = {
            "a": f"{a_name} better",
            "b": f"{b_name} better",
            "tie": "not distinguishable",
            "few": too_few_text(),
        }[comparison.verdict]
        if comparison.distinguishable and np.isnan(comparison.low):
            outcome += " (the other side's runs failed)"
        tested = (
            f", 95% CI {format_interval(comparison, metric.scale)}, p {format_p(comparison.p_value)} "
            f"(Holm {format_p(comparison.p_adjusted)}, sign-flip {format_p(comparison.p_permutation)})"
            if np.isfinite(comparison.low)
            else ""
        )
        results.append(
            (
                comparison,
                f"{a_name} − {b_name}{where}: {metric.label} "
                f"{format_difference(comparison, metric.scale)}{tested} → {outcome}.",
            )
        )
    return results


def judge(
    a_name: str, a: Cell, b_name: str, b: Cell, metric: Metric, where: str = ""
) -> tuple[Comparison, str]:
    """``judge_all`` of one comparison (a family of one)."""
    return judge_all([(a_name, a, b_name, b, where)], metric)[0]


def combine(supports: Sequence[bool], contradicts: Sequence[bool], too_few: bool = False) -> str:
    """The verdict of a claim from the comparisons that support or contradict it.

    ``too_few``: the comparisons had too few seeds to test; with no evidence
    either way the verdict is then "too few seeds (need N)".
    """
    if any(supports) and not any(contradicts):
        return "held"
    if any(contradicts) and not any(supports):
        return "did not hold"
    if any(supports) and any(contradicts):
        return "mixed"
    return too_few_text() if too_few else "not distinguishable"


def format_settings(values: Sequence[float]) -> str:
    """``"1e-3, 3e-3"``-style list of numbers."""
    return ", ".join(f"{value:g}" for value in values)


def by_key(cells: Sequence[Cell]) -> dict[tuple[Any, ...], Cell]:
    """Cells indexed by their key."""
    return {cell.key: cell for cell in cells}


def best_by(grid: Sequence[Cell], metric: Metric) -> dict[Any, Cell]:
    """The best cell per ``cell.key[0]`` (the optimizer): fewest failed seeds, then the best mean."""
    sign = -1.0 if metric.higher_is_better else 1.0

    def score(cell: Cell) -> tuple[int, float]:
        mean = cell.mean(metric.field)
        return cell.failed, sign * mean if np.isfinite(mean) else np.inf

    best: dict[Any, Cell] = {}
    for cell in grid:
        if cell.key[0] not in best or score(cell) < score(best[cell.key[0]]):
            best[cell.key[0]] = cell
    return best


def lr_sweep_outcome(
    name: str,
    config: Setup,
    records: list[dict[str, Any]],
    table: tuple[str, Sequence[SweepRow]],
    findings: list[str],
    verdict: str,
    *,
    plot: tuple[Path, str],
    metrics: Sequence[str] = VALIDATION_METRICS,
    other_plots: Sequence[str] = (),
    **described: Any,
) -> Outcome:
    """How a learning-rate sweep of optimizers ends: its plot, its table and its outcome.

    Args:
      name: the experiment's name.
      config: its settings.
      records: one dict per run.
      table: the table's title and rows (keyed by optimizer and learning rate).
      findings: the sentences to print after the table.
      verdict: the claim's verdict.
      plot: the path of the PNG of final ``metrics`` against the learning rate
        (one line per optimizer), and its title.
      metrics: the record fields plotted, one panel each.
      other_plots: file names of plots the experiment wrote itself, listed first.
      **described: extra settings recorded next to ``config.described()``.
    """
    path, title = plot
    plot_versus(path, title, records, x="learning_rate", series="optimizer", metrics=metrics)
    table_title, rows = table
    return Outcome(
        name,
        records,
        [sweep_table(table_title, ("optimizer", "lr"), rows)],
        findings,
        verdict,
        [*other_plots, path.name],
        config.described(**described),
    )
