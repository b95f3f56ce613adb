"""Host dispatch of one Adam call, with one scalar recorded in the state in different ways.

Run from the repository root (on a GPU, where a call over GPT-2 small's 146
leaves is bound by the host)::

    python benchmarks/dispatch_probe.py          # gpt2_124m
    python benchmarks/dispatch_probe.py 32       # a tiny GPT-2, for a try on the CPU

``optax.adam`` alone, optaxtra's ``adam``, each half of one with the other's
learning-rate piece, and ``optax.adam`` chained with a piece that records a
float32 scalar: as a constant (XLA copies it into a fresh buffer), computed into
a fresh buffer, or written over its donated old value (``optaxtra._xla``);
and 146 per-leaf scalars, fresh or written over the old ones. Each is timed as in
``kernels.py`` (calls waited on alone, and back-to-back dispatch), in rounds
whose order rotates. Its output on an H200 is in
``gpu_logs/2026-11-26b_h200_dispatch_probe.txt``.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

import optaxtra
from optaxtra._xla import overwrite

sys.path.insert(0, str(Path(__file__).resolve().parent))
import equivalents  # noqa: E402
import kernels  # noqa: E402
import measure  # noqa: E402
import trees  # noqa: E402

LEARNING_RATE = 1e-3


class Recorded(NamedTuple):
    """State of ``recorder``: a step count and the recorded scalar."""

    count: jax.Array
    value: jax.Array


def recorder(how: str) -> optax.GradientTransformation:
    """Passes updates through and records the learning rate, written ``how``."""

    def init(params):
        return Recorded(jnp.zeros([], jnp.int32), jnp.zeros([], jnp.float32))

    def update(updates, state, params=None):
        rate = jnp.float32(LEARNING_RATE)
        value = {
            "copy": lambda: rate,
            "fresh": lambda: jnp.where(state.count >= 0, rate, 0.0),
            "in_place": lambda: overwrite(state.value, rate),
        }[how]()
        return updates, Recorded(state.count + 1, value)

    return optax.GradientTransformation(init, update)


class PerLeaf(NamedTuple):
    """State of ``per_leaf_recorder``: one recorded scalar per leaf."""

    values: Any


def per_leaf_recorder(in_place: bool) -> optax.GradientTransformation:
    """Passes updates through and records one scalar per leaf (as trust ratios are)."""

    def init(params):
        return PerLeaf(jax.tree.map(lambda p: jnp.ones([], jnp.float32), params))

    def update(updates, state, params=None):
        values = jax.tree.map(lambda u: u.reshape(-1)[0], updates)
        if in_place:
            values = jax.tree.map(overwrite, state.values, values)
        return updates, PerLeaf(values)

    return optax.GradientTransformation(init, update)


VARIANTS = {
    "optax": lambda: optax.adam(LEARNING_RATE),
    "optaxtra": lambda: optaxtra.adam(LEARNING_RATE),
    "optaxtra core + optax lr": lambda: optax.chain(
        optaxtra.scale_by_adam(), optax.scale_by_learning_rate(LEARNING_RATE)),
    "optax core + optaxtra lr": lambda: optax.chain(
        optax.scale_by_adam(), optaxtra.scale_by_learning_rate(LEARNING_RATE)),
    "+ copied": lambda: optax.chain(optax.adam(LEARNING_RATE), recorder("copy")),
    "+ fresh": lambda: optax.chain(optax.adam(LEARNING_RATE), recorder("fresh")),
    "+ in place": lambda: optax.chain(optax.adam(LEARNING_RATE), recorder("in_place")),
    "+ 146 fresh": lambda: optax.chain(optax.adam(LEARNING_RATE), per_leaf_recorder(False)),
    "+ 146 in place": lambda: optax.chain(optax.adam(LEARNING_RATE), per_leaf_recorder(True)),
}


def main(width: int = 768, calls: int = 120, rounds: int = 5) -> None:
    shapes = trees.gpt2(width, vocab=50257 if width == 768 else 128)
    params = jax.tree.map(jnp.asarray, trees.build(shapes, seed=0))
    grads = jax.tree.map(jnp.asarray, trees.build(shapes, seed=1))
    compiled, buffers = {}, {}
    for name, make in VARIANTS.items():
        entry = equivalents.optaxtra_entry(make(), params)
        compiled[name] = jax.jit(entry.step, donate_argnums=(0, 1)).lower(
            entry.params, entry.state, grads).compile()
        buffers[name] = (entry.params, entry.state)
        counts = kernels.census(compiled[name].as_text())
        print(f"{name:26s} launches {counts['launches']:4d}  outputs "
              f"{len(jax.tree.leaves(buffers[name])):4d} (aliased {counts['aliased']:4d})", flush=True)
    walls, dispatches = measure.time_calls_in_rounds(compiled, buffers, grads, calls, rounds)
    ratio = lambda xs, ys: statistics.median(a / b for a, b in zip(xs, ys))
    for name in VARIANTS:
        print(f"{name:26s} call {statistics.median(walls[name]):8.1f} µs  dispatch "
              f"{statistics.median(dispatches[name]):8.1f} µs  call/optax "
              f"{ratio(walls[name], walls['optax']):.3f}  dispatch/optax "
              f"{ratio(dispatches[name], dispatches['optax']):.3f}", flush=True)


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:2]))
