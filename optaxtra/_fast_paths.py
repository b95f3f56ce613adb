"""A switch between the fast and the plain implementation of the pieces that have both.

Some pieces are written twice: plainly, as the algorithm reads, and in a form
arranged for what XLA compiles well (no parameter-sized temporaries, no
buffers routed through ``lax.cond``). The fast form is the default; inside
``plain_paths()`` pieces are traced with the plain form instead. Both give the
same numbers up to float rounding, which ``tests/test_fast_paths.py`` checks
for every optimizer. The switch is read while tracing, so it decides how a
function is compiled, not how an already compiled one runs.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

__all__ = ["fast_paths_enabled", "plain_paths"]

_local = threading.local()


def fast_paths_enabled() -> bool:
    """Whether pieces traced now use their fast implementation (the default)."""
    return not getattr(_local, "plain", False)


@contextlib.contextmanager
def plain_paths() -> Iterator[None]:
    """Traces optimizers with their plain (reference) implementations inside this block.

    For checking a result or timing the difference: functions traced (first
    called under ``jax.jit``) inside the block use the plain forms. Already
    compiled functions are not affected.

    Example:
      >>> import jax, jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.lookahead(optaxtra.adam(0.1), sync_period=2)
      >>> params = jnp.ones(3)
      >>> with optaxtra.plain_paths():
      ...     updates, state = tx.update(jnp.ones(3), tx.init(params), params)
      >>> updates
      Array([-0.1, -0.1, -0.1], dtype=float32)
    """
    previous = getattr(_local, "plain", False)
    _local.plain = True
    try:
        yield
    finally:
        _local.plain = previous
