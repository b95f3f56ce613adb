"""``warmup``: does a Transformer need warm-up with Adam, and do RAdam, Adam-2k and Adam-eps replace it?

The RAdam paper (section 3) argues that Adam's adaptive learning rate has a
huge variance in the first steps, which warm-up tames; RAdam rectifies it
instead, Adam-2k updates only ``v`` for the first steps, Adam-eps bounds it
with a large ``eps``. Here, on ``charlm``: Adam without warm-up, Adam with
linear warm-up, RAdam, Adam-2k and Adam-eps, at a few learning rates.
At this scale Adam-2k freezes the parameters for as many steps as the
warm-up lasts (the paper's 2,000 would be the whole run), so it trains that
many fewer steps.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from optaxtra import adam, adam_2k, adam_eps, radam

from .._engine import Sweep
from .._outcome import Options, Outcome
from .._plots import plot_curves
from .._records import cells
from .._runner import Job, optimizer_sweep, run_jobs, with_warmup
from ._common import VALIDATION_LOSS, best_by, by_key, combine, judge_all, lr_sweep_outcome, setup

__all__ = ["CLAIM", "run"]

CLAIM = (
    "Adam without warm-up trains a Transformer worse than Adam with warm-up, and RAdam closes the gap "
    "without a schedule (Liu et al. 2020, Figs. 1 and 3); Adam-2k and Adam-eps are reported alongside."
)


def _sweeps(rates: tuple[float, ...], warmup: int) -> list[Sweep]:
    def lr(hyperparams):
        return hyperparams["learning_rate"]

    return [
        optimizer_sweep("adam", adam, rates),
        Sweep("adam+warmup", lambda h: adam(with_warmup(lr(h), warmup)), {"learning_rate": rates}),
        optimizer_sweep("radam", radam, rates),
        Sweep("adam_2k", lambda h: adam_2k(lr(h), freeze_steps=warmup), {"learning_rate": rates}),
        optimizer_sweep("adam_eps", adam_eps, rates),
    ]


def run(options: Options, console: Console, out: Path) -> Outcome:
    """Runs the experiment (defaults: charlm, 300 steps, lr 1e-3 to 3e-2, 3 seeds, warm-up of 10%)."""
    config = setup(
        "warmup", options, task="charlm", learning_rates=(1e-3, 3e-3, 1e-2, 3e-2), seeds=3, steps=300
    )
    warmup = config.warmup or max(1, config.steps // 10)
    jobs = [
        Job(config.task, sweep, config.steps, config.batch_size, {"warmup": warmup})
        for sweep in _sweeps(config.learning_rates, warmup)
    ]
    records = run_jobs(jobs, config.seeds, console=console, target_loss=options.target_loss)
    metric = VALIDATION_LOSS
    grid = by_key(cells(records, by=("optimizer", "learning_rate")))
    findings = [f"Claim: {CLAIM}", f"Warm-up: linear over the first {warmup} of {config.steps} steps."]
    best = best_by(list(grid.values()), metric)
    challengers = ("radam", "adam_2k", "adam_eps")
    requests = [
        ("adam+warmup", grid[("adam+warmup", rate)], "adam", grid[("adam", rate)], f" at lr {rate:g}")
        for rate in config.learning_rates
    ] + [
        (name, best[name], "adam+warmup", best["adam+warmup"], " (each at its best lr)")
        for name in challengers
    ]
    judged = judge_all(requests, metric)  # One Holm family: the comparisons the verdict rests on.
    per_rate = judge_all(  # A second family, shown for information only.
        [
            (name, grid[(name, rate)], "adam", grid[("adam", rate)], f" at lr {rate:g}")
            for name in challengers
            for rate in config.learning_rates
        ],
        metric,
    )
    rates = len(config.learning_rates)
    findings += [sentence for _, sentence in judged[:rates]]
    supports = [comparison.verdict == "a" for comparison, _ in judged[:rates]]
    contradicts = [comparison.verdict == "b" for comparison, _ in judged[:rates]]
    too_few = all(comparison.verdict == "few" for comparison, _ in judged)
    helps = combine(supports, contradicts, too_few)
    findings.append(f"Warm-up helps Adam: {helps}.")
    closes = {}
    for index, name in enumerate(challengers):
        comparison, sentence = judged[rates + index]
        findings.append(
            sentence + f" Best lr: {name} {best[name].key[1]:g}, "
            f"adam+warmup {best['adam+warmup'].key[1]:g}."
        )
        closes[name] = comparison.verdict not in ("b", "few")
        findings += ["  " + sentence for _, sentence in per_rate[index * rates : (index + 1) * rates]]
    findings.append(
        "RAdam without warm-up is at least as good as Adam with warm-up (at the best lr of each): "
        f"{'yes' if closes['radam'] else 'no'}."
    )
    verdict = helps if helps != "held" else ("held" if closes["radam"] else "mixed")
    findings.append(
        f"Verdict: {verdict} (held = warm-up helps Adam somewhere, never hurts, and RAdam matches it)."
    )
    rows = [((name, f"{rate:g}"), cell, False) for (name, rate), cell in grid.items()]
    title = config.title("warmup", f"warm-up / Adam-2k freeze {warmup} steps")
    top = max(config.learning_rates)
    plot_curves(
        out / "warmup_curves.png",
        f"warmup on {config.task.name}: loss at lr {top:g}",
        [(name, grid[(name, top)]) for name in dict.fromkeys(name for name, _ in grid)],
    )
    return lr_sweep_outcome(
        "warmup", config, records, (title, rows), findings, verdict,
        plot=(out / "warmup_lr.png", f"warmup on {config.task.name}: final loss vs learning rate"),
        metrics=("final_train_loss", "final_validation_loss"),
        other_plots=["warmup_curves.png"],
        warmup=warmup,
    )
