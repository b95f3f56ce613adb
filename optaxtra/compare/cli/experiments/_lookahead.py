"""``lookahead``: do Lookahead(Adam) and Ranger vary less across seeds than their inner optimizers?

Zhang et al. report that Lookahead lowers the variance of its inner optimizer
and makes it more robust to its hyperparameters; Ranger is Lookahead around
RAdam. Each wrapper is compared with its own inner optimizer: Lookahead(Adam)
with Adam, Ranger with RAdam at Ranger's inner settings (``b1=0.95,
eps=1e-5``), at several learning rates and eight seeds. The seed variances
of the final validation loss are compared with a one-sided F-test at the 5%
level, Bonferroni-corrected for the number of settings tested (loss, not
accuracy: accuracy moves in steps of one example, 0.1 points on
``mnist1d_mlp`` and 0.28 on ``digits``, coarse for the variance of a few
seeds), the means seed by seed. The claim holds if some
variance is lower, none higher, and no mean worse.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.console import Console
from scipy.stats import f as f_distribution

from optaxtra import adam, lookahead, radam, ranger

from .._outcome import Options, Outcome
from .._records import Cell, cells
from .._runner import Job, optimizer_sweep, run_jobs
from ._common import (
    VALIDATION_ACCURACY, VALIDATION_LOSS, by_key, combine, judge_all, lr_sweep_outcome, setup,
)

__all__ = ["CLAIM", "run"]

CLAIM = (
    "Lookahead lowers the seed-to-seed variance of its inner optimizer without hurting it "
    "(Zhang et al. 2019)."
)
LEVEL = 0.05
PAIRS = (("lookahead_adam", "adam"), ("ranger", "radam (b1=.95, eps=1e-5)"))
FACTORIES = {
    "adam": adam,
    "lookahead_adam": lambda rate: lookahead(adam(rate)),
    "radam (b1=.95, eps=1e-5)": lambda rate: radam(rate, b1=0.95, eps=1e-5),
    "ranger": ranger,
}


def _std(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.std(finite, ddof=1)) if finite.size > 1 else float("nan")


def _variance_test(wrapped: Cell, inner: Cell, field: str, level: float) -> str:
    """``"a"`` (wrapped varies less), ``"b"`` or ``"tie"``: a one-sided F-test at ``level`` per direction.

    Needs every seed finished on both sides; a diverged seed makes it a tie
    here (the paired comparison of the means counts it instead).
    """
    a, b = wrapped.values(field), inner.values(field)
    if not (np.isfinite(a).all() and np.isfinite(b).all()) or a.size < 2 or b.size < 2:
        return "tie"
    var_a, var_b = np.var(a, ddof=1), np.var(b, ddof=1)
    if var_a == var_b:
        return "tie"
    if var_a == 0.0 or var_b / var_a > f_distribution.ppf(1.0 - level, b.size - 1, a.size - 1):
        return "a"
    if var_b == 0.0 or var_a / var_b > f_distribution.ppf(1.0 - level, a.size - 1, b.size - 1):
        return "b"
    return "tie"


def run(options: Options, console: Console, out: Path) -> Outcome:
    """Runs the experiment (defaults: mnist1d_mlp, lr 1e-3/3e-3/1e-2, 8 seeds, 2,000 steps)."""
    config = setup(
        "lookahead", options, task="mnist1d_mlp", learning_rates=(1e-3, 3e-3, 1e-2), seeds=8, steps=2000
    )
    jobs = [
        Job(
            config.task,
            optimizer_sweep(name, factory, config.learning_rates, config.warmup),
            config.steps,
            config.batch_size,
            {"warmup": config.warmup},
        )
        for name, factory in FACTORIES.items()
    ]
    records = run_jobs(jobs, config.seeds, console=console, target_loss=options.target_loss)
    metric, accuracy = VALIDATION_LOSS, VALIDATION_ACCURACY
    grid = by_key(cells(records, by=("optimizer", "learning_rate")))
    findings = [f"Claim: {CLAIM}"]
    lower, higher, worse = [], [], []
    settings = [(wrapped, inner, rate) for wrapped, inner in PAIRS for rate in config.learning_rates]
    judged = judge_all(
        [(w, grid[(w, rate)], i, grid[(i, rate)], f" at lr {rate:g}") for w, i, rate in settings], metric
    )
    for (wrapped, inner, rate), (comparison, sentence) in zip(settings, judged):
        pair = (grid[(wrapped, rate)], grid[(inner, rate)])
        verdict = _variance_test(*pair, metric.field, LEVEL / len(settings))
        outcome = {
            "a": f"{wrapped} varies less",
            "b": f"{inner} varies less",
            "tie": "not distinguishable",
        }
        spreads = [
            f"{_std(cell.values(field.field)) * field.scale:.{field.digits + 1}f}"
            for field in (metric, accuracy)
            for cell in reversed(pair)
        ]
        findings.append(
            f"{wrapped} vs {inner} at lr {rate:g}: seed std of val loss {spreads[0]} → {spreads[1]}, "
            f"of val acc (points) {spreads[2]} → {spreads[3]} → {outcome[verdict]}."
        )
        findings.append("  " + sentence)
        lower.append(verdict == "a")
        higher.append(verdict == "b")
        worse.append(comparison.verdict == "b")
    findings.append(
        f"Lower seed variance in {sum(lower)} of {len(lower)} settings, higher in {sum(higher)}; "
        f"worse mean in {sum(worse)}."
    )
    verdict = combine(lower, [h or w for h, w in zip(higher, worse)])
    findings.append(
        f"Verdict: {verdict} (one-sided F-tests on the seed variances at 5% over {len(lower)} settings, "
        "Bonferroni-corrected; means by paired t-tests, Holm-corrected)."
    )
    rows = [((name, f"{rate:g}"), cell, False) for (name, rate), cell in grid.items()]
    return lr_sweep_outcome(
        "lookahead", config, records, (config.title("lookahead"), rows), findings, verdict,
        plot=(out / "lookahead.png", f"lookahead on {config.task.name}: every seed is a dot"),
    )
