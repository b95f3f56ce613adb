"""Timing an optimizer step: compile time, step times with donated buffers, page faults.

Steps are timed one by one (``block_until_ready`` after each), so each time
is the step's wall time. Entries that are compared (the floor, optaxtra's
optimizer, optax's) are timed in interleaved rounds, so that a change in the
machine's load hits all of them alike; ratios are taken within a round.
Minor page faults are counted per step: on Linux, a temporary buffer of 32 MB
or more is mapped afresh by ``malloc`` on every call and each of its pages
faults once, which is the dominant cost of optimizers that materialise
param-sized temporaries on CPU.
"""

from __future__ import annotations

import resource
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import jax

__all__ = ["Timed", "compile_entry", "time_round"]


@dataclass
class Timed:
    """A compiled step, its live buffers, and what was measured about it."""

    name: str
    compiled: Any
    params: Any
    state: Any
    compile_s: float
    temp_bytes: int = 0
    rounds: list[list[float]] = field(default_factory=list)
    faults: list[float] = field(default_factory=list)

    def medians(self) -> list[float]:
        """Median step time (s) of each round."""
        return [statistics.median(r) for r in self.rounds]

    def means(self) -> list[float]:
        """Mean step time (s) of each round: amortised over the steps of a round."""
        return [statistics.fmean(r) for r in self.rounds]


def compile_entry(
    name: str, step: Callable, params: Any, state: Any, grads: Any, compiled: Any = None
) -> Timed:
    """Traces, lowers and compiles ``step`` with params and state donated (timed), unless given."""
    start = time.perf_counter()
    if compiled is None:
        compiled = jax.jit(step, donate_argnums=(0, 1)).lower(params, state, grads).compile()
    elapsed = time.perf_counter() - start
    temp = getattr(compiled.memory_analysis(), "temp_size_in_bytes", 0) or 0
    return Timed(name, compiled, params, state, elapsed, int(temp))


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def time_round(entry: Timed, grads: Any, steps: int, warmup: int) -> None:
    """Runs ``warmup`` untimed then ``steps`` timed steps; appends the round to ``entry``."""
    params, state = entry.params, entry.state
    for _ in range(warmup):
        params, state = entry.compiled(params, state, grads)
    jax.block_until_ready((params, state))
    times = []
    faults = _minor_faults()
    for _ in range(steps):
        start = time.perf_counter()
        params, state = entry.compiled(params, state, grads)
        jax.block_until_ready((params, state))
        times.append(time.perf_counter() - start)
    entry.faults.append((_minor_faults() - faults) / steps)
    entry.params, entry.state = params, state
    entry.rounds.append(times)
