"""Timing an optimizer step: compile time, step times with donated buffers, page faults.

Steps are timed one by one (``block_until_ready`` after each), so each time
is the step's wall time; or, on an accelerator, ``loop`` steps per call inside
a device loop, so that the host's dispatch is left out. Entries that are
compared (the floor, optaxtra's optimizer, optax's) are timed in interleaved
rounds, so that a change in the machine's load hits all of them alike; ratios
are taken within a round.
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

__all__ = [
    "Timed", "compile_entry", "in_device_loop", "rotated", "time_calls", "time_calls_in_rounds",
    "time_round",
]


@dataclass
class Timed:
    """A compiled step, its live buffers, and what was measured about it."""

    name: str
    compiled: Any
    params: Any
    state: Any
    compile_s: float
    temp_bytes: int = 0
    loop: int = 1
    rounds: list[list[float]] = field(default_factory=list)
    faults: list[float] = field(default_factory=list)

    def medians(self) -> list[float]:
        """Median step time (s) of each round."""
        return [statistics.median(r) for r in self.rounds]

    def means(self) -> list[float]:
        """Mean step time (s) of each round: amortised over the steps of a round."""
        return [statistics.fmean(r) for r in self.rounds]


def in_device_loop(step: Callable, steps: int) -> Callable:
    """``step`` run ``steps`` times inside one compiled call (``lax.fori_loop``).

    On a GPU a call of one step over a tree of a few hundred leaves costs more
    on the host (flattening, dispatch) than its kernels take on the device;
    inside a loop only the kernels are timed. An optimization barrier at the
    top of the loop body makes the gradients depend on the carried params, so
    XLA cannot hoist work on the gradients alone out of the loop.
    """

    def looped(params, state, grads):
        def body(_, carry):
            params, state, grads = jax.lax.optimization_barrier(carry)
            return (*step(params, state, grads), grads)

        params, state, _ = jax.lax.fori_loop(0, steps, body, (params, state, grads))
        return params, state

    return looped


def compile_entry(
    name: str, step: Callable, params: Any, state: Any, grads: Any, compiled: Any = None,
    loop: int = 1,
) -> Timed:
    """Traces, lowers and compiles ``step`` with params and state donated (timed), unless given.

    With ``loop > 1`` a call runs ``loop`` steps on the device (``in_device_loop``)
    and the times recorded are per step.
    """
    start = time.perf_counter()
    if compiled is None:
        if loop > 1:
            step = in_device_loop(step, loop)
        compiled = jax.jit(step, donate_argnums=(0, 1)).lower(params, state, grads).compile()
    elapsed = time.perf_counter() - start
    temp = getattr(compiled.memory_analysis(), "temp_size_in_bytes", 0) or 0
    return Timed(name, compiled, params, state, elapsed, int(temp), loop=loop)


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _distinct(tree: Any) -> Any:
    """``tree`` with leaves that share a device buffer copied apart (they cannot both be donated).

    optaxtra's states never share a buffer (``tests/test_donation.py``); this is for the optax
    states compared with them, and for a device loop returning one buffer for two equal outputs.
    Only scalars were seen shared, so the copies are tiny.
    """
    seen: set[int] = set()

    def leaf(x):
        pointer = x.unsafe_buffer_pointer()
        if pointer in seen:
            return jax.numpy.copy(x)
        seen.add(pointer)
        return x

    return jax.tree.map(leaf, tree)


def time_round(entry: Timed, grads: Any, steps: int, warmup: int) -> None:
    """Runs ``warmup`` untimed then ``steps`` timed steps; appends the round to ``entry``."""
    fix = _distinct if entry.loop > 1 else (lambda tree: tree)
    params, state = fix((entry.params, entry.state))
    for _ in range(warmup):
        params, state = fix(entry.compiled(params, state, grads))
    jax.block_until_ready((params, state))
    times = []
    faults = _minor_faults()
    for _ in range(steps):
        start = time.perf_counter()
        params, state = fix(entry.compiled(params, state, grads))
        jax.block_until_ready((params, state))
        times.append((time.perf_counter() - start) / entry.loop)
    entry.faults.append((_minor_faults() - faults) / (steps * entry.loop))
    entry.params, entry.state = params, state
    entry.rounds.append(times)


def rotated(items: list, index: int) -> list:
    """``items`` in round ``index``'s order: from ``index`` (mod length) on, then the rest.

    Rotating the order between rounds keeps any entry from always running first or
    always following the same one.
    """
    start = index % len(items)
    return items[start:] + items[:start]


def time_calls(
    compiled: Any, params: Any, state: Any, grads: Any, calls: int
) -> tuple[float, float, tuple[Any, Any]]:
    """``calls`` calls waited on one by one, then ``calls`` dispatched back to back.

    Returns:
      The median µs of a call waited on alone, the mean µs to dispatch one call
      (the host's share, unless the device holds the host back), and the new
      ``(params, state)``.
    """
    walls = []
    for _ in range(calls):
        start = time.perf_counter()
        params, state = compiled(params, state, grads)
        jax.block_until_ready((params, state))
        walls.append(time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(calls):
        params, state = compiled(params, state, grads)
    dispatch = (time.perf_counter() - start) / calls
    jax.block_until_ready((params, state))
    return statistics.median(walls) * 1e6, dispatch * 1e6, (params, state)


def time_calls_in_rounds(
    compiled: dict[str, Any], buffers: dict[str, tuple[Any, Any]], grads: Any, calls: int,
    rounds: int,
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """``time_calls`` for each entry, in ``rounds`` rotated rounds after one dropped warm-up round.

    Args:
      compiled: name -> compiled donated step.
      buffers: name -> its ``(params, state)``; replaced by the live buffers.
      grads: the gradients every call takes.
      calls: calls per entry per round.
      rounds: timed rounds.

    Returns:
      ``(walls, dispatches)``: name -> per-round µs, as ``time_calls`` gives them.
    """
    walls: dict[str, list[float]] = {name: [] for name in compiled}
    dispatches: dict[str, list[float]] = {name: [] for name in compiled}
    for index in range(rounds + 1):
        for name in rotated(list(compiled), index):
            wall, dispatch, buffers[name] = time_calls(compiled[name], *buffers[name], grads, calls)
            if index:
                walls[name].append(wall)
                dispatches[name].append(dispatch)
    return walls, dispatches
