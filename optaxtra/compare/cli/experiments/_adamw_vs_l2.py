"""``adamw-vs-l2``: does decoupled weight decay (AdamW) beat L2 regularisation in Adam?

Loshchilov & Hutter find AdamW's best setting generalises better than Adam +
L2's, and its best decay depends less on the learning rate. The two
coefficients are not on one scale: AdamW (PyTorch convention, as
``optaxtra.adamw``) shrinks the weights by ``lr * wd`` per step, while L2
adds ``wd * p`` to the gradient *before* Adam divides by ``sqrt(v)``, so the
same number is a far stronger regulariser as L2. Each therefore gets its own
grid, four decades wide, from no visible effect to too strong; the claim is
judged on the best setting of each (learning rate x decay), paired by seed,
and a best setting at the edge of its grid is flagged.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from rich.console import Console

from optaxtra import adam, adamw

from .._engine import Sweep
from .._outcome import Options, Outcome
from .._plots import plot_versus
from .._records import cells
from .._report import sweep_table
from .._runner import Job, run_jobs, with_warmup
from ._common import best_by, combine, judge, primary_metric, setup

__all__ = ["CLAIM", "run"]

CLAIM = "AdamW's best setting generalises better than Adam + L2's best (Loshchilov & Hutter 2019, Figs. 2-3)."
ADAMW_DECAYS = (0.0, 0.01, 0.1, 1.0, 10.0)
L2_DECAYS = (0.0, 1e-5, 1e-4, 1e-3, 1e-2)


def _sweep(label: str, make, rates: tuple[float, ...], decays: tuple[float, ...], warmup: int) -> Sweep:
    grid = list(itertools.product(rates, decays))
    return Sweep(
        label,
        lambda h: make(with_warmup(h["learning_rate"], warmup), weight_decay=h["weight_decay"]),
        {"learning_rate": [rate for rate, _ in grid], "weight_decay": [decay for _, decay in grid]},
    )


def run(options: Options, console: Console, out: Path) -> Outcome:
    """Runs the experiment (defaults: mnist1d_mlp, lr 3e-4/1e-3/3e-3, five decays each, 5 seeds, 2,000 steps)."""
    config = setup(
        "adamw-vs-l2", options, task="mnist1d_mlp", learning_rates=(3e-4, 1e-3, 3e-3), seeds=5, steps=2000
    )
    sweeps = [
        _sweep("adamw", adamw, config.learning_rates, ADAMW_DECAYS, config.warmup),
        _sweep("adam+l2", adam, config.learning_rates, L2_DECAYS, config.warmup),
    ]
    jobs = [
        Job(config.task, sweep, config.steps, config.batch_size, {"warmup": config.warmup})
        for sweep in sweeps
    ]
    records = run_jobs(jobs, config.seeds, console=console, target_loss=options.target_loss)
    metric = primary_metric(config.task)
    grid = cells(records, by=("optimizer", "learning_rate", "weight_decay"))
    best = best_by(grid, metric)
    findings = [f"Claim: {CLAIM}"]
    for name, decays in (("adamw", ADAMW_DECAYS), ("adam+l2", L2_DECAYS)):
        cell = best[name]
        edge = (
            " (at the edge of its grid: the optimum may lie outside)"
            if cell.key[2] in (decays[0], decays[-1])
            else ""
        )
        findings.append(f"{name}: best at lr {cell.key[1]:g}, decay {cell.key[2]:g}{edge}.")
        for rate in config.learning_rates:
            row = [c for c in grid if c.key[0] == name and c.key[1] == rate]
            top = best_by(row, metric)[name]
            findings.append(f"  {name} at lr {rate:g}: best decay {top.key[2]:g}.")
    comparison, sentence = judge(
        "adamw", best["adamw"], "adam+l2", best["adam+l2"], metric, " (each at its best)"
    )
    findings.append(sentence)
    verdict = combine([comparison.verdict == "a"], [comparison.verdict == "b"], comparison.verdict == "few")
    findings.append(f"Verdict: {verdict}.")
    rows = [((c.key[0], f"{c.key[1]:g}", f"{c.key[2]:g}"), c, best[c.key[0]] is c) for c in grid]
    title = config.title(
        "adamw-vs-l2", "AdamW decay = lr x wd per step, L2 = wd x p added to the gradient"
    )
    figures = []
    for name in ("adamw", "adam+l2"):
        own = [
            dict(record, lr=f"lr {record['learning_rate']:g}")
            for record in records
            if record["optimizer"] == name
        ]
        for record in own:  # The zero decay has no place on a log axis: drawn at a tenth of the smallest.
            if record["weight_decay"] == 0.0:
                record["weight_decay"] = (
                    min(d for d in (ADAMW_DECAYS if name == "adamw" else L2_DECAYS) if d) / 10
                )
        filename = f"adamw_vs_l2_{name.replace('+', '_')}.png"
        plot_versus(
            out / filename,
            f"{name} on {config.task.name}: final metric vs decay (leftmost point: no decay)",
            own,
            x="weight_decay",
            series="lr",
            metrics=("final_validation_loss", "final_validation_accuracy"),
        )
        figures.append(filename)
    return Outcome(
        "adamw-vs-l2",
        records,
        [sweep_table(title, ("optimizer", "lr", "decay"), rows)],
        findings,
        verdict,
        figures,
        config.described(adamw_decays=list(ADAMW_DECAYS), l2_decays=list(L2_DECAYS)),
    )
