"""What a comparison or an experiment hands back, and how it is printed and saved."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple, Sequence

from rich.console import Console
from rich.table import Table

from ._report import machine, write_csv, write_json

__all__ = ["Options", "Outcome", "save_outcome"]


class Options(NamedTuple):
    """The command-line options, ``None`` where the user gave none (the defaults then apply).

    Attributes:
      tasks: task names or ``module:function`` specs.
      optimizers: optimizer names or ``module:function`` specs.
      learning_rates: the learning-rate grid.
      seeds: the seeds.
      steps: optimizer steps per run.
      batch_size: examples per step.
      warmup: linear warm-up steps.
      target_loss: the training loss "steps to target" counts to.
      out: the output directory.
      trials: random-search trials per optimizer (``--trials``), instead of
        the learning-rate grid; ``None``: the grid.
      trials_seed: the seed the trials are drawn from.
      validation_target: overrides every task's ``validation_target``.
    """

    tasks: tuple[str, ...] | None = None
    optimizers: tuple[str, ...] | None = None
    learning_rates: tuple[float, ...] | None = None
    seeds: tuple[int, ...] | None = None
    steps: int | None = None
    batch_size: int | None = None
    warmup: int | None = None
    target_loss: float | None = None
    out: Path = Path("optaxtra-compare")
    trials: int | None = None
    trials_seed: int = 0
    validation_target: float | None = None


class Outcome(NamedTuple):
    """A finished comparison or experiment.

    Attributes:
      name: ``"compare"`` or the experiment's name.
      records: one dict per run.
      tables: rich tables, printed and saved in ``summary.txt``.
      findings: sentences printed after the tables (the claim and its verdict).
      verdict: ``"held"``, ``"did not hold"``, ``"not distinguishable"``,
        ``"mixed"``, ``"too few seeds (need 3)"``, or ``""`` for a plain comparison.
      plots: the PNG files written into the output directory.
      config: what was run (tasks, grids, steps, seeds, ...).
    """

    name: str
    records: list[dict[str, Any]]
    tables: list[Table]
    findings: list[str]
    verdict: str
    plots: list[str]
    config: dict[str, Any]


def save_outcome(outcome: Outcome, out: Path, console: Console, argv: Sequence[str], seconds: float) -> None:
    """Prints the tables and findings, then writes ``results.json``, ``results.csv``, ``summary.txt``."""
    report = Console(record=True, width=console.width, file=console.file, force_terminal=console.is_terminal)
    for table in outcome.tables:
        report.print(table)
    for finding in outcome.findings:
        report.print(finding, markup=False, highlight=False)
    where = machine()
    report.print(
        f"\n{where['date']} · {where['cpu']} ({where['machine']}, {where['cpu_count']} cores) · "
        f"jax {where['jax']} · {seconds:.0f} s · files in {out}/",
        highlight=False,
    )
    (out / "summary.txt").write_text(report.export_text(styles=False), encoding="utf-8")
    write_json(
        out / "results.json",
        {
            "name": outcome.name,
            "command": ["optaxtra", *argv],
            "machine": where,
            "seconds": round(seconds, 1),
            "config": outcome.config,
            "verdict": outcome.verdict,
            "findings": outcome.findings,
            "plots": outcome.plots,
            "runs": outcome.records,
        },
    )
    write_csv(out / "results.csv", outcome.records)
