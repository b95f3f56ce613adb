"""``amsgrad-counterexample``: the theory side of ``amsgrad``, on Reddi et al.'s online problem.

Adam, AMSGrad and ADOPT on the two instances of ``_online_convex`` (Theorem 1
and the Section 5 experiment), at the moment decays the paper gives for each,
and ADOPT at every ``b2`` of a grid. AMSGrad is the paper's: no bias
correction (``optaxtra.amsgrad(bias_correction=False)``); ADOPT is the
paper's Algorithm 1, without the clip (``clip_exponent=None``); the
authors' code clips the normalised gradient at ``(t - 1) ** 0.25``
(``optaxtra.adopt``'s default), which is reported beside it, not judged: on
the Section 5 instance at a small ``b2`` the normalised large gradient is
``1010 / 10 = 101``, and the clip caps it below that until ``t > 101**4``,
about 1e8 steps.

This experiment is deterministic: no seeds, no statistical test. It checks
three facts about the last iterate ``x_T`` (the optimum is ``-1``): Adam at
the paper's ``(b1, b2)`` ends at ``x_T > 0.9`` on both instances, AMSGrad at
the same decays ends at ``x_T < -0.9``, and ADOPT ends at ``x_T < -0.9`` at
every ``b2`` of the grid. Held = all three; did not hold = none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from rich import box
from rich.console import Console
from rich.table import Table

from optaxtra import adam, adopt, amsgrad

from .._errors import UsageError
from .._outcome import Options, Outcome
from .._plots import style
from ._online_convex import SECTION_5, THEOREM_1, Trajectory, simulate

__all__ = ["B2_GRID", "CLAIM", "OPTIMIZERS", "PROBLEMS", "run"]

CLAIM = (
    "On Reddi et al.'s online convex problem Adam ends at the wrong end of [-1, 1] and AMSGrad converges "
    "(Reddi, Kale & Kumar 2018, Sections 3 and 5); ADOPT converges for any b2 (Taniguchi et al. 2024)."
)
B2_GRID = (0.1, 0.5, 0.9, 0.99, 0.999, 0.9999)
OPTIMIZERS = {
    "adam": lambda lr, b1, b2: adam(lr, b1=b1, b2=b2),
    "amsgrad": lambda lr, b1, b2: amsgrad(lr, b1=b1, b2=b2, bias_correction=False),
    "adopt": lambda lr, b1, b2: adopt(lr, b1=b1, b2=b2, clip_exponent=None),
    "adopt (clipped)": lambda lr, b1, b2: adopt(lr, b1=b1, b2=b2),
}
PROBLEMS = (THEOREM_1, SECTION_5)
CONVERGED, WRONG_END = -0.9, 0.9
STEPS, ALPHAS = 10**6, (0.5,)


def _settings(options: Options) -> tuple[int, tuple[float, ...]]:
    given = {"--optimizers": options.optimizers, "--task": options.tasks,
             "--batch-size": options.batch_size, "--warmup": options.warmup}
    for flag, value in given.items():
        if value is not None:
            raise UsageError(f"{flag} cannot be combined with --experiment amsgrad-counterexample: "
                             "it runs its own one-dimensional problem.")
    return options.steps or STEPS, tuple(options.learning_rates or ALPHAS)


def _records(name: str, alpha: float, path: Trajectory) -> list[dict[str, Any]]:
    lanes = [(problem, b2) for problem in PROBLEMS for b2 in B2_GRID]  # simulate's row order.
    return [
        {
            "problem": problem.name, "optimizer": name, "alpha": alpha, "b1": problem.b1, "b2": b2,
            "paper_b2": b2 == problem.b2, "steps": int(path.steps[-1]), "final_x": float(path.x[row, -1]),
            "average_regret": float(path.average_regret[row, -1]),
            "curves": {"steps": path.steps.tolist(), "x": path.x[row].tolist(),
                       "average_regret": path.average_regret[row].tolist()},
        }
        for row, (problem, b2) in enumerate(lanes)
    ]


def _plot(out: Path, records: list[dict[str, Any]], alpha: float) -> str:
    """``x_t`` and ``R_t / t`` against ``t`` at the paper's decays, one column per instance."""
    figure, panels = plt.subplots(2, 2, figsize=(11, 7), squeeze=False)
    for column, problem in enumerate(PROBLEMS):
        chosen = [
            r for r in records if r["problem"] == problem.name and r["alpha"] == alpha and r["paper_b2"]
        ]
        for index, record in enumerate(chosen):
            for row, key in enumerate(("x", "average_regret")):
                panels[row][column].plot(record["curves"]["steps"], record["curves"][key],
                                         label=record["optimizer"], markevery=6, markersize=4, **style(index))
        title = f"{problem.name}: b1 {problem.b1:g}, b2 {problem.b2:g}, step {alpha:g}/sqrt(t)"
        panels[0][column].set_title(title)
        panels[0][column].set_ylabel("x_t (optimum -1)")
        panels[1][column].set_ylabel("average regret R_t / t")
        panels[1][column].set_yscale("symlog", linthresh=1e-3)
        for row in (0, 1):
            panels[row][column].set_xscale("log")
            panels[row][column].set_xlabel("step t")
            panels[row][column].grid(True, which="both", alpha=0.3)
    panels[0][0].legend(fontsize="small")
    figure.tight_layout()
    name = f"amsgrad_counterexample_alpha{alpha:g}.png"
    figure.savefig(out / name, dpi=110)
    plt.close(figure)
    return name


def _table(records: list[dict[str, Any]], steps: int) -> Table:
    title = (
        f"amsgrad-counterexample: {steps} steps from x = 0, step alpha/sqrt(t), optimum -1; "
        "* = the paper's b2"
    )
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    for header in ("problem", "optimizer", "alpha", "b1", "b2", "x_T", "R_T / T"):
        table.add_column(header, justify="left" if header in ("problem", "optimizer") else "right")
    for r in records:
        b2 = f"{r['b2']:g}" + (" *" if r["paper_b2"] else "")
        table.add_row(r["problem"], r["optimizer"], f"{r['alpha']:g}", f"{r['b1']:g}", b2,
                      f"{r['final_x']:+.3f}", f"{r['average_regret']:.3g}")
    return table


def _judged(record: dict[str, Any]) -> tuple[bool, str] | None:
    """Whether a judged record (Adam, AMSGrad at the paper's b2; ADOPT at all) did as claimed, and says so."""
    name = record["optimizer"]
    if name == "adopt (clipped)" or (name != "adopt" and not record["paper_b2"]):
        return None
    good = record["final_x"] > WRONG_END if name == "adam" else record["final_x"] < CONVERGED
    if name == "adam":
        outcome = "ends at the wrong end" if good else "does not end near +1"
    else:
        outcome = "near -1" if good else "not near -1"
    where = f"{record['problem']}, alpha {record['alpha']:g}, b1 {record['b1']:g}, b2 {record['b2']:g}"
    ended = f"x_T = {record['final_x']:+.3f}, R_T/T = {record['average_regret']:.3g}"
    return good, f"{name} at {where}: {ended} → {outcome}."


def _listed(records: list[dict[str, Any]], name: str, where: str) -> str:
    """Where ``name``'s ``x_T`` is not below ``CONVERGED``, for the unjudged rows."""
    missed = [r for r in records if r["optimizer"] == name and r["final_x"] >= CONVERGED]
    listed = "; ".join(f"{r['problem']} b2 {r['b2']:g} (x_T {r['final_x']:+.3f})" for r in missed)
    return f"{name} ({where}): not near -1 at {listed or 'no setting'}."


def run(options: Options, console: Console, out: Path) -> Outcome:
    """Runs the experiment (defaults: 1,000,000 steps, alpha 0.5; ``--steps`` and ``--lrs`` set them)."""
    steps, alphas = _settings(options)
    records: list[dict[str, Any]] = []
    for alpha in alphas:
        for name, make in OPTIMIZERS.items():
            console.print(f"{name} · alpha {alpha:g} · {steps} steps", highlight=False)
            records += _records(name, alpha, simulate(PROBLEMS, make, alpha, B2_GRID, steps))
    findings = [f"Claim: {CLAIM}", "Deterministic (no seeds, no statistical test); --seeds is ignored."]
    checks: dict[str, list[bool]] = {"adam": [], "amsgrad": [], "adopt": []}
    for record in records:
        judged = _judged(record)
        if judged is not None:
            checks[record["optimizer"]].append(judged[0])
            findings.append(judged[1])
    findings.append(_listed(records, "adam", "every b2, reported, not judged"))
    findings.append(_listed(records, "adopt (clipped)", "the default clip, reported, not judged"))
    held = [all(values) for values in checks.values()]
    yes = lambda value: "yes" if value else "no"
    findings.append(
        f"Adam at the paper's decays ends at x_T > {WRONG_END:g}: {yes(held[0])}; AMSGrad there ends at "
        f"x_T < {CONVERGED:g}: {yes(held[1])}; ADOPT ends at x_T < {CONVERGED:g} at every b2: {yes(held[2])}."
    )
    verdict = "held" if all(held) else "mixed" if any(held) else "did not hold"
    findings.append(f"Verdict: {verdict} (facts about x_T after {steps} steps, checked, not tested).")
    plots = [_plot(out, records, alpha) for alpha in alphas]
    config = {
        "steps": steps, "alphas": list(alphas), "b2_grid": list(B2_GRID), "converged_below": CONVERGED,
        "wrong_end_above": WRONG_END, "statistics": "none: deterministic",
        "problems": [problem._asdict() for problem in PROBLEMS],
    }
    table = _table(records, steps)
    return Outcome("amsgrad-counterexample", records, [table], findings, verdict, plots, config)
