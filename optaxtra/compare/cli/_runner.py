"""Running a list of sweeps under one progress bar, and the sweeps the command builds.

Warm-up is linear from 0 to the learning rate over the first ``warmup``
steps (``optaxtra.linear_warmup``), then constant: the schedule of the RAdam
paper's "Adam with warm-up" baseline.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import optax
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from optaxtra import linear_warmup

from ..tasks._interface import Task
from ._engine import Sweep, initial_params, run_sweep
from ._records import records_from

__all__ = ["Job", "optimizer_sweep", "run_jobs", "with_warmup"]

Factory = Callable[[Any], optax.GradientTransformation]


class Job(NamedTuple):
    """One sweep to run: the task, the optimizer sweep, and how long and how big.

    Attributes:
      task: the problem.
      sweep: the optimizer and its settings.
      steps: optimizer steps per run.
      batch_size: examples per step.
      tags: extra fields copied into every record (e.g. ``{"warmup": 30}``).
    """

    task: Task
    sweep: Sweep
    steps: int
    batch_size: int
    tags: dict[str, Any] = {}


def with_warmup(learning_rate: Any, warmup: int) -> Any:
    """``learning_rate``, ramped linearly from 0 over the first ``warmup`` steps if ``warmup > 0``."""
    return linear_warmup(learning_rate, warmup) if warmup > 0 else learning_rate


def optimizer_sweep(label: str, factory: Factory, learning_rates: Sequence[float], warmup: int = 0) -> Sweep:
    """The sweep of ``factory`` over ``learning_rates``, each with ``warmup`` steps of warm-up."""
    return Sweep(
        label,
        lambda hyperparams: factory(with_warmup(hyperparams["learning_rate"], warmup)),
        {"learning_rate": tuple(learning_rates)},
    )


def run_jobs(
    jobs: Sequence[Job],
    seeds: Sequence[int],
    *,
    console: Console,
    target_loss: float | None = None,
    evaluations: int = 20,
    validation_target: float | None = None,
) -> list[dict[str, Any]]:
    """Runs every job over ``seeds`` and returns all run records.

    Args:
      jobs: the sweeps, run in order.
      seeds: the seeds, shared by every job (so runs are paired across jobs).
      console: where the progress bar is drawn.
      target_loss: overrides each task's ``target_loss`` for steps-to-target.
      evaluations: validation checkpoints per run (20: time to a validation
        target is resolved to 1/20 of the run).
      validation_target: overrides each task's ``validation_target``.

    Returns:
      One record per run (see ``records_from``).
    """
    records: list[dict[str, Any]] = []
    initial: dict[int, Any] = {}  # Per task: the parameters every sweep starts from.
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        overall = progress.add_task("all sweeps", total=len(jobs), status="")
        current = progress.add_task("", total=1, status="")
        for job in jobs:
            label = f"{job.task.name} · {job.sweep.optimizer}"
            progress.update(current, description=label, total=job.steps, completed=0, status="compiling")
            if id(job.task) not in initial:
                initial[id(job.task)] = initial_params(job.task, seeds)

            def on_step(step: Any, job: Job = job) -> None:
                progress.update(current, completed=int(step), status=f"step {int(step)}/{job.steps}")

            result = run_sweep(
                job.task,
                job.sweep,
                seeds,
                steps=job.steps,
                batch_size=job.batch_size,
                evaluations=evaluations,
                initial=initial[id(job.task)],
                on_compiled=lambda: progress.update(current, status="running"),
                on_step=on_step,
            )
            progress.update(current, completed=job.steps, status=f"{result.run_seconds:.1f} s")
            progress.advance(overall)
            target = job.task.target_loss if target_loss is None else target_loss
            timing = {
                "compile_seconds": round(result.compile_seconds, 2),
                "run_seconds": round(result.run_seconds, 2),
                "devices": result.devices,
            }
            records.extend(
                records_from(
                    result,
                    target_loss=target,
                    tags={**job.tags, **timing},
                    baseline_loss=job.task.baseline_loss,
                    baseline_accuracy=job.task.baseline_accuracy,
                    validation_target=job.task.validation_target if validation_target is None else validation_target,
                    validation_metric=job.task.validation_metric,
                )
            )
    return records
