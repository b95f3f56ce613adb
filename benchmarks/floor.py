"""The bandwidth floor: one fused elementwise pass that moves an optimizer step's bytes.

An optimizer step reads the params, the gradients and the state and writes the
params and the state. Whatever the algorithm, it cannot be faster than one
pass that does just that. ``floor_step`` is such a pass for a given state
layout: per param leaf, one fused loop reads ``p``, ``g`` and every state slot
of that leaf and writes ``p`` and the slots. ``slots_like`` finds how many
param-shaped slots (of which dtypes) an optimizer's state holds, so the floor
moves exactly its bytes.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["slot_dtypes", "floor_state", "floor_step", "tree_bytes"]


def tree_bytes(tree: Any) -> int:
    """Bytes held by the array leaves of a pytree."""
    return sum(int(np.prod(np.shape(x))) * jnp.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree))


def slot_dtypes(params: Any, state: Any) -> list[Any]:
    """The dtypes of the param-shaped slots in ``state``, one entry per slot.

    Every non-scalar state leaf is counted against the param leaf it belongs
    to by size; for each dtype, the slots are its bytes divided by the params'
    size in that dtype, rounded down. Scalars (counts, learning rates, trust
    ratios) are ignored: they are not moved per element.
    """
    size = sum(int(np.prod(np.shape(p))) for p in jax.tree.leaves(params))
    elements: Counter = Counter()
    for leaf in jax.tree.leaves(state):
        if np.ndim(leaf):
            elements[jnp.dtype(leaf.dtype)] += int(np.prod(np.shape(leaf)))
    slots = []
    for dtype, count in sorted(elements.items(), key=lambda item: str(item[0])):
        # A state that is not whole slots (muon: a momentum for the matrices, AdamW's two moments
        # for the rest) drops its partial slot: the floor still moves no more than it must.
        slots += [dtype] * (count // size)
    return slots


def floor_state(params: Any, dtypes: list[Any]) -> tuple[Any, ...]:
    """One params-like tree per slot, in that slot's dtype (zeros)."""
    return tuple(jax.tree.map(lambda p: jnp.zeros(p.shape, dtype), params) for dtype in dtypes)


def floor_step(slot_count: int, chained: bool = True) -> Callable[[Any, Any, Any], tuple[Any, Any]]:
    """``(params, slots, grads) -> (params, slots)``: one fused elementwise pass per leaf.

    Every output depends on every input of its leaf, so each is read once and
    written once, and XLA fuses each leaf's work into one loop.
    """

    def step(params, slots, grads):
        def leaf(p, g, *s):
            g = g.astype(jnp.float32)
            new = tuple((0.9 * x.astype(jnp.float32) + g).astype(x.dtype) for x in s)
            total = g
            for x in new if chained else ():
                total = total + x.astype(jnp.float32)
            return (p.astype(jnp.float32) - 1e-3 * total).astype(p.dtype), new

        treedef = jax.tree.structure(params)
        out = treedef.flatten_up_to(jax.tree.map(leaf, params, grads, *slots))
        new_params = treedef.unflatten([o[0] for o in out])
        new_slots = tuple(treedef.unflatten([o[1][i] for o in out]) for i in range(slot_count))
        return new_params, new_slots

    return step
