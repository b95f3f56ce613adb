"""The ``--experiment`` registry: name -> the claim it tests and the function that runs it."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Callable, Mapping, NamedTuple

from rich.console import Console

from ._errors import UsageError
from ._outcome import Options, Outcome
from .experiments import (
    _adamw_vs_l2, _amsgrad, _amsgrad_counterexample, _cautious, _large_batch, _lookahead, _lr_robustness,
    _schedule_free, _warmup,
)

__all__ = ["EXPERIMENTS", "Experiment", "run_experiment"]


class Experiment(NamedTuple):
    """A published claim re-run at laptop scale.

    Attributes:
      claim: the claim, with its reference.
      run: ``(options, progress console, output directory) -> Outcome``.
    """

    claim: str
    run: Callable[[Options, Console, Path], Outcome]


EXPERIMENTS: Mapping[str, Experiment] = MappingProxyType(
    {
        "lr-robustness": Experiment(_lr_robustness.CLAIM, _lr_robustness.run),
        "warmup": Experiment(_warmup.CLAIM, _warmup.run),
        "adamw-vs-l2": Experiment(_adamw_vs_l2.CLAIM, _adamw_vs_l2.run),
        "amsgrad": Experiment(_amsgrad.CLAIM, _amsgrad.run),
        "amsgrad-counterexample": Experiment(_amsgrad_counterexample.CLAIM, _amsgrad_counterexample.run),
        "lookahead": Experiment(_lookahead.CLAIM, _lookahead.run),
        "large-batch": Experiment(_large_batch.CLAIM, _large_batch.run),
        "schedule-free": Experiment(_schedule_free.CLAIM, _schedule_free.run),
        "cautious": Experiment(_cautious.CLAIM, _cautious.run),
    }
)


def run_experiment(name: str, options: Options, console: Console, out: Path) -> Outcome:
    """Runs the experiment ``name`` with the user's overrides in ``options``."""
    if name not in EXPERIMENTS:
        raise UsageError(f"unknown experiment {name!r}. Valid names: {', '.join(EXPERIMENTS)}.")
    return EXPERIMENTS[name].run(options, console, out)
