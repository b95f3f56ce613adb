"""Combining one value per leaf into one, in a kernel of its own.

A sum or a conjunction of per-leaf scalars (SWATS's dot products,
``skip_nonfinite``'s finiteness checks) is elementwise arithmetic on scalars,
and XLA fuses it: with the reductions that produce the scalars, into one kernel
taking an operand or two per leaf, or into every kernel that reads the result.
XLA:CPU's compile time for such kernels grows faster than the leaf count
(2026-11-26: SWATS 177 s on 2,000 leaves, ``skip_nonfinite(adam)`` 30 s on 100
and over ten minutes on 400; benchmarks/README.md). Optimization barriers and
chunked or stacked sums did not prevent it. A ``lax.cond`` is a boundary XLA
does not fuse across: the combination runs in a branch of its own, and its
readers read one scalar.
"""

from __future__ import annotations

from typing import Any, Callable

import jax

__all__ = ["combine_apart"]


def combine_apart(combine: Callable[[Any], Any], terms: Any, *, unless: jax.Array, otherwise: Any) -> Any:
    """``combine(terms)``, or ``otherwise`` where ``unless`` holds, behind a ``lax.cond``.

    Args:
      combine: ``terms -> result``, e.g. a sum of per-leaf scalars.
      terms: the per-leaf values (a pytree of arrays).
      unless: a traced boolean scalar. A predicate the compiler can fold would
        remove the cond, and the boundary with it.
      otherwise: the result where ``unless`` holds, shaped like ``combine``'s.

    Returns:
      ``combine(terms)`` where ``unless`` is false, else ``otherwise``.
    """
    return jax.lax.cond(unless, lambda _: otherwise, combine, terms)
