"""``optaxtra`` (and ``python -m optaxtra``): the command line.

Exit codes: 0 done (diverged runs are results, not failures), 2 bad input
(unknown names, non-positive numbers, an unwritable ``--out``), 130
interrupted. Bad input never prints a traceback.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Sequence

from rich.console import Console

from optaxtra import OPTIMIZERS, __version__

from ._compare import run_compare
from ._devices import configure_cpu_devices
from ._errors import UsageError
from ._experiments import EXPERIMENTS, run_experiment
from ._loading import TASKS
from ._outcome import Options, save_outcome

__all__ = ["build_parser", "main"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text!r}")
    return value


def _items(text: str) -> list[str]:
    """The comma-separated items of ``text``; an empty item (``1e-3,,1e-2``) is refused."""
    parts = [part.strip() for part in text.split(",")]
    if any(not part for part in parts):
        raise argparse.ArgumentTypeError(f"empty item in {text!r}: separate items with single commas")
    return parts


def _learning_rates(text: str) -> tuple[float, ...]:
    rates = tuple(_positive_float(part) for part in _items(text))
    if not rates:
        raise argparse.ArgumentTypeError("give at least one learning rate, e.g. 1e-3,3e-3")
    return tuple(sorted(set(rates)))


def _seeds(text: str) -> tuple[int, ...]:
    """``3`` means seeds 0, 1, 2; ``0,5,7`` means those seeds."""
    if "," not in text:
        return tuple(range(_positive_int(text)))
    seeds = tuple(_non_negative_int(part) for part in _items(text))
    if len(set(seeds)) != len(seeds) or not seeds:
        raise argparse.ArgumentTypeError(f"seeds must be distinct integers >= 0, got {text!r}")
    return seeds


def _names(text: str) -> tuple[str, ...]:
    names = tuple(_items(text))
    if not names:
        raise argparse.ArgumentTypeError("give at least one name")
    return names


def build_parser() -> argparse.ArgumentParser:
    """The ``optaxtra`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="optaxtra", description="Composable Adam-family optimizers for JAX."
    )
    parser.add_argument("--version", action="version", version=f"optaxtra {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    compare = commands.add_parser(
        "compare",
        help="optimizer shoot-out on bundled data (or your task)",
        description=(
            "Trains each optimizer at each learning rate and seed on each task (one compiled program per "
            "optimizer and task), prints the results and writes results.json, results.csv, summary.txt and "
            "PNG plots to --out."
        ),
        epilog=(
            f"optimizers: {', '.join(sorted(OPTIMIZERS))}. tasks: {', '.join(TASKS)}. "
            f"experiments: {', '.join(EXPERIMENTS)}. Your own optimizer: module:function or file.py:function "
            "taking the learning rate and returning an optax.GradientTransformation; your own task: "
            "module:function returning an optaxtra.compare.Task."
        ),
    )
    compare.add_argument(
        "--task", type=_names, metavar="NAMES", help="comma-separated tasks (default: digits,mnist1d_mlp)"
    )
    compare.add_argument("--optimizers", type=_names, metavar="NAMES", help="comma-separated optimizers")
    compare.add_argument("--lrs", type=_learning_rates, metavar="LRS", help="comma-separated learning rates")
    compare.add_argument("--seeds", type=_seeds, metavar="N|LIST", help="a count (3 = seeds 0,1,2) or a list")
    compare.add_argument("--steps", type=_positive_int, metavar="N", help="optimizer steps per run")
    compare.add_argument("--batch-size", type=_positive_int, metavar="N", help="examples per step")
    compare.add_argument(
        "--warmup", type=_non_negative_int, metavar="N", help="linear warm-up steps (default 0)"
    )
    compare.add_argument(
        "--target-loss", type=_positive_float, metavar="X", help="loss for 'steps to target'"
    )
    compare.add_argument(
        "--validation-target", type=_positive_float, metavar="X",
        help="validation target of the AlgoPerf-style report, on each task's metric (default: per task)",
    )
    compare.add_argument(
        "--trials", type=_positive_int, metavar="N",
        help="N random-search trials per optimizer (lr, b1, b2, weight decay) instead of the lr grid",
    )
    compare.add_argument(
        "--trials-seed", type=_non_negative_int, metavar="S", help="seed of the --trials draw (default 0)"
    )
    compare.add_argument(
        "--experiment", metavar="NAME", help="re-run a paper's claim: " + ", ".join(EXPERIMENTS)
    )
    compare.add_argument(
        "--cpu-devices", type=_positive_int, metavar="N",
        help="host devices each sweep's runs are split over, on the CPU (default: one per core)",
    )
    compare.add_argument(
        "--out", type=Path, default=Path("optaxtra-compare"), metavar="DIR", help="output directory"
    )
    return parser


def _prepare_out(out: Path) -> None:
    """Creates ``out`` and checks that it is writable, before any training."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".optaxtra-write-test"
        probe.write_text("", encoding="utf-8")
        probe.unlink()
    except OSError as error:
        raise UsageError(
            f"--out {str(out)!r} is not a writable directory ({error.strerror or error})."
        ) from None


def _compare(args: argparse.Namespace, argv: Sequence[str]) -> int:
    options = Options(
        tasks=args.task,
        optimizers=args.optimizers,
        learning_rates=args.lrs,
        seeds=args.seeds,
        steps=args.steps,
        batch_size=args.batch_size,
        warmup=args.warmup,
        target_loss=args.target_loss,
        out=args.out,
        trials=args.trials,
        trials_seed=0 if args.trials_seed is None else args.trials_seed,
        validation_target=args.validation_target,
    )
    if args.experiment is not None and args.experiment not in EXPERIMENTS:
        raise UsageError(f"unknown experiment {args.experiment!r}. Valid names: {', '.join(EXPERIMENTS)}.")
    if args.trials_seed is not None and args.trials is None:
        raise UsageError("--trials-seed needs --trials N.")
    if args.experiment is not None and args.trials is not None:
        raise UsageError("--trials applies to the comparison; an --experiment runs its own settings.")
    _prepare_out(args.out)
    configure_cpu_devices(args.cpu_devices)
    output = Console(width=None if sys.stdout.isatty() else 160, highlight=False)
    progress = Console(stderr=True)
    started = time.perf_counter()
    if args.experiment is None:
        outcome = run_compare(options, progress, args.out)
    else:
        outcome = run_experiment(args.experiment, options, progress, args.out)
    save_outcome(outcome, args.out, output, argv, time.perf_counter() - started)
    return 0


VALUE_OPTIONS = frozenset(
    ("--task", "--optimizers", "--lrs", "--seeds", "--steps", "--batch-size", "--warmup", "--target-loss",
     "--experiment", "--out", "--validation-target", "--trials", "--trials-seed", "--cpu-devices")
)


def _attach_values(argv: Sequence[str]) -> list[str]:
    """``--lrs -1e-3`` as ``--lrs=-1e-3``: argparse takes a value starting with ``-`` for an option
    (it knows only ``-1`` and ``-.5`` as numbers), so such a value would never reach its check."""
    joined: list[str] = []
    index = 0
    while index < len(argv):
        if argv[index] in VALUE_OPTIONS and index + 1 < len(argv) and argv[index + 1][:1] == "-" \
                and argv[index + 1][:2] != "--":
            joined.append(f"{argv[index]}={argv[index + 1]}")
            index += 2
        else:
            joined.append(argv[index])
            index += 1
    return joined


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit code.

    Args:
      argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
      0 on success, 2 on bad input, 130 if interrupted.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(_attach_values(argv))
    except SystemExit as exit_:  # argparse has printed its message; keep its code (2, or 0 for --help).
        return int(exit_.code or 0)
    try:
        return _compare(args, argv)
    except UsageError as error:
        print(f"optaxtra {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("optaxtra: interrupted", file=sys.stderr)
        return 130
