"""``optaxtra compare`` without ``--experiment``: optimizers x learning rates x seeds on tasks.

Answers "which optimizer, at which learning rate, for my kind of problem?":
per task, one table of every (optimizer, learning rate), the best learning
rate of each optimizer marked ``*``, then the optimizers ranked by validation
loss at their best learning rate, each compared seed by seed with the first
(see ``_stats`` for when a difference counts); then the AlgoPerf-style report
(``_algoperf``). With ``--trials N`` the settings are ``N`` random-search
trials (``_trials``) instead of the learning-rate grid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from rich import box
from rich.console import Console
from rich.table import Table

from ._algoperf import algoperf_report
from ._errors import UsageError
from ._loading import resolve_optimizer, resolve_task
from ._outcome import Options, Outcome
from ._plots import plot_curves, plot_versus
from ._profile_plot import plot_profile
from ._records import Cell, cells
from ._report import metric_text, sweep_table
from ._runner import Job, optimizer_sweep, run_jobs
from ._trials import SEARCH_SPACE, TRIAL_COLUMNS, sample_trials, trial_keys, trial_sweep
from ._stats import (
    ALPHA, METHOD, comparison_record, compare, format_interval, format_number, format_p, holm, too_few_text,
)

__all__ = ["DEFAULTS", "best_cells", "run_compare"]

DEFAULTS = Options(
    tasks=("digits", "mnist1d_mlp"),
    optimizers=("adam", "adamw", "radam", "ranger", "lamb", "sgd_momentum"),
    seeds=tuple(range(8)),  # 8: enough for the t-test, and for the sign-flip test to reach α / 5.
    warmup=0,
)


def _score(cell: Cell) -> tuple[int, float]:
    """Fewest failed (diverged or collapsed) seeds first, then the lowest mean validation loss."""
    mean = cell.mean("final_validation_loss")
    return cell.failed, mean if np.isfinite(mean) else np.inf


def best_cells(task_cells: list[Cell]) -> dict[Any, Cell]:
    """The best setting of each optimizer (cells keyed ``(optimizer, ...)``), by ``_score``."""
    best: dict[Any, Cell] = {}
    for cell in task_cells:
        name = cell.key[0]
        if name not in best or _score(cell) < _score(best[name]):
            best[name] = cell
    return best


def _ranking(
    task: str, best: dict[Any, Cell], rates: Sequence[float], setting: str = "lr"
) -> tuple[Table, str, list[dict[str, Any]]]:
    ranked = sorted(best.values(), key=_score)
    top = ranked[0]
    at = "learning rate" if setting == "lr" else setting
    table = Table(
        title=(
            f"{task}: each optimizer at its best {at}, ranked by validation loss; "
            f"Δ paired by seed vs #1 (per seed: results.json), paired t-test, Holm-corrected, α = {ALPHA:g}"
        ),
        box=box.SIMPLE_HEAD,
        title_justify="left",
    )
    headers = (
        "#", "optimizer", setting, "val loss", "val acc %", "Δ val loss (seeds higher)", "95% CI", "p (Holm)",
        "verdict",
    )
    for header in headers:
        table.add_column(header, justify="left" if header in ("optimizer", "verdict") else "right")
    others = ranked[1:]
    comparisons = holm(
        [
            compare(
                cell.values("final_validation_loss"), top.values("final_validation_loss"), higher_is_better=False
            )
            for cell in others
        ],
        higher_is_better=False,
    )
    verdicts = {"tie": "not distinguishable from #1", "few": too_few_text(), "a": "better than #1"}
    groups: dict[str, list[str]] = {"tie": [], "b": [], "few": [], "a": []}
    table.add_row(
        "1", top.key[0], f"{top.key[1]:g}", metric_text(top, "final_validation_loss"),
        metric_text(top, "final_validation_accuracy"), "", "", "", "best",
    )
    tests = []
    for rank, (cell, loss) in enumerate(zip(others, comparisons), 2):
        verdict = "worse than #1" + (" (failed runs)" if loss.p_value == 0 and np.isnan(loss.low) else "")
        verdict = verdict if loss.verdict == "b" else verdicts[loss.verdict]
        groups[loss.verdict].append(cell.key[0])
        tests.append(
            {
                "optimizer": cell.key[0], "versus": top.key[0], "metric": "final_validation_loss",
                **comparison_record(loss), "verdict": verdict,
            }
        )
        table.add_row(
            str(rank),
            cell.key[0],
            f"{cell.key[1]:g}",
            metric_text(cell, "final_validation_loss"),
            metric_text(cell, "final_validation_accuracy"),
            f"{format_number(loss.mean, 1.0, 3)} ({int(np.sum(loss.differences > 0))}/{loss.differences.size})",
            format_interval(loss),
            format_p(loss.p_adjusted),
            verdict,
        )
    finding = (
        f"{task}: best {top.key[0]} at {at} {top.key[1]:g}; "
        f"not distinguishable from it: {', '.join(groups['tie']) or 'none'}; "
        f"worse: {', '.join(groups['b']) or 'none'}."
    )
    if groups["a"]:  # Rare: #1 has the lowest mean, but the seeds both finished can say otherwise.
        finding += f" Better than it, seed by seed: {', '.join(groups['a'])}."
    if groups["few"]:
        finding += f" {too_few_text().capitalize()} to compare: {', '.join(groups['few'])}."
    edge = [cell.key[0] for cell in ranked if len(rates) > 1 and cell.key[1] in (min(rates), max(rates))]
    if edge:
        finding += f" Best lr at the edge of the grid (the optimum may lie outside it): {', '.join(edge)}."
    return table, finding, tests


def _labelled(resolved: list[tuple[str, Any]], specs: Sequence[str]) -> list[tuple[str, Any]]:
    """The optimizers with distinct labels: a ``module:function`` whose name is taken keeps its spec.

    ``adam,optax:adam`` reads ``adam`` and ``optax:adam``; the same optimizer
    twice (``adam,adam`` or ``sgd-momentum,sgd_momentum``) is refused.
    """
    canonical = [label if ":" not in spec else spec.strip() for (label, _), spec in zip(resolved, specs)]
    twice = sorted({name for name in canonical if canonical.count(name) > 1})
    if twice:
        raise UsageError(f"optimizer name(s) given twice: {', '.join(twice)}; each must be distinct.")
    labels = [label for label, _ in resolved]
    return [
        (name if labels.count(label) > 1 else label, factory)
        for (label, factory), name in zip(resolved, canonical)
    ]


def _jobs(options: Options, tasks: Sequence[Any], optimizers: list[tuple[str, Any]], warmup: int) -> list[Job]:
    """One job per task and optimizer: its learning-rate grid, or the task's ``--trials``."""
    specs = options.optimizers or DEFAULTS.optimizers
    jobs = []
    for task in tasks:
        steps = options.steps or task.steps
        if warmup > steps:
            raise UsageError(f"--warmup ({warmup}) is longer than the run ({steps} steps on {task.name}).")
        if options.validation_target is not None and task.validation_metric == "accuracy" and task.accuracy is None:
            raise UsageError(
                f"--validation-target: task {task.name!r} has no accuracy; give it validation_metric='loss'."
            )
        rates = options.learning_rates or task.learning_rates
        trials = sample_trials(options.trials, rates, options.trials_seed) if options.trials else None
        for (label, factory), spec in zip(optimizers, specs):
            if trials is None:
                sweep = optimizer_sweep(label, factory, rates, warmup)
            else:
                name = None if ":" in spec else spec.strip().replace("-", "_")
                sweep = trial_sweep(label, name, factory, trials, warmup)
            jobs.append(Job(task, sweep, steps, options.batch_size or task.batch_size, {"warmup": warmup}))
    return jobs


def run_compare(options: Options, console: Console, out: Path) -> Outcome:
    """Runs the comparison described by ``options`` (defaults filled from ``DEFAULTS``)."""
    tasks = [resolve_task(spec) for spec in options.tasks or DEFAULTS.tasks]
    optimizers = _labelled([resolve_optimizer(spec) for spec in options.optimizers or DEFAULTS.optimizers],
                           options.optimizers or DEFAULTS.optimizers)
    names = [task.name for task in tasks]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise UsageError(f"task name(s) given twice: {', '.join(twice)}; each must be distinct.")
    seeds = options.seeds or DEFAULTS.seeds
    warmup = DEFAULTS.warmup if options.warmup is None else options.warmup
    jobs = _jobs(options, tasks, optimizers, warmup)
    records = run_jobs(
        jobs, seeds, console=console, target_loss=options.target_loss, validation_target=options.validation_target
    )
    setting, key = ("trial", "trial") if options.trials else ("lr", "learning_rate")
    for record in records if options.trials else ():
        record["trial"] = int(record["trial"])
    tables, findings, plots = [], [], []
    tests: dict[str, list[dict[str, Any]]] = {}
    for task in tasks:
        task_records = [record for record in records if record["task"] == task.name]
        task_cells = cells(task_records, by=("optimizer", key))
        best = best_cells(task_cells)
        first = task_records[0]
        described = f"{task.name}: {task.description}" if task.description.strip() else task.name
        title = (
            f"{described}; {first['steps']} steps, batch {first['batch_size']}, "
            f"warm-up {warmup}, seeds {', '.join(map(str, seeds))}; * = best {setting} of each optimizer"
        )
        if options.trials:
            rows = [(trial_keys(cell), cell, best[cell.key[0]] is cell) for cell in task_cells]
            tables.append(sweep_table(title, TRIAL_COLUMNS, rows))
        else:
            rows = [((cell.key[0], f"{cell.key[1]:g}"), cell, best[cell.key[0]] is cell) for cell in task_cells]
            tables.append(sweep_table(title, ("optimizer", "lr"), rows))
        rates = () if options.trials else options.learning_rates or task.learning_rates
        ranking, finding, task_tests = _ranking(task.name, best, rates, setting)
        tables.append(ranking)
        tests[task.name] = task_tests
        findings.append(finding)
        plot_curves(
            out / f"{task.name}_curves.png",
            f"{task.name}: loss at each optimizer's best {'trial' if options.trials else 'learning rate'} "
            "(band: seeds)",
            [(f"{name} ({setting} {cell.key[1]:g})", cell) for name, cell in best.items()],
        )
        plots.append(f"{task.name}_curves.png")
        if not options.trials:  # Random trials differ in more than the learning rate: no line through them.
            plot_versus(
                out / f"{task.name}_lr.png",
                f"{task.name}: final loss vs learning rate ({first['steps']} steps)",
                task_records,
                x="learning_rate",
                series="optimizer",
                metrics=("final_validation_loss", "final_validation_accuracy"),
            )
            plots.append(f"{task.name}_lr.png")
    labels = [label for label, _ in optimizers]
    report, report_findings, algoperf = algoperf_report(records, names, labels)
    tables += report
    findings += report_findings
    if algoperf:
        plot_profile(
            out / "performance_profile.png",
            f"Performance profile: {', '.join(algoperf['targets'])} (time to validation target)",
            {**algoperf["profile"], "scores": algoperf["scores"]},
        )
        plots.append("performance_profile.png")
    config = {
        "tasks": {task.name: task.description for task in tasks},
        "optimizers": labels,
        "learning_rates": {task.name: list(options.learning_rates or task.learning_rates) for task in tasks},
        "seeds": list(seeds),
        "warmup": warmup,
        "statistics": METHOD,
        "comparisons": tests,
        "algoperf": algoperf,
    }
    if options.trials:
        config["trials"] = {"count": options.trials, "seed": options.trials_seed, "search_space": SEARCH_SPACE,
                            "selection": "best trial: fewest failed seeds, then lowest mean final validation loss"}
    return Outcome("compare", records, tables, findings, "", plots, config)
