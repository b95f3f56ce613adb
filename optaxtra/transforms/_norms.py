"""The two squared norms a trust ratio needs, ``||p||**2`` and ``||u||**2``, per layer.

Both norms are taken with ``jnp.sum``, which XLA:CPU lowers to a vectorised,
blockwise reduction. A faster form for many small layers was measured — both
norms in one variadic ``lax.reduce`` — but XLA lowers that to a single
sequential accumulation, whose float32 rounding error grows with the layer
size (up to ~n * 6e-8 relative) and which moved LARS off optax's trajectory
by 0.2% after 463 steps in ``tests/test_parity_optax.py``. Accuracy and parity
come first; see ``benchmarks/README.md`` for the numbers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._hyperparams import compute_dtype
from ._second_moment import abs_squared

__all__ = ["squared_norms"]


def _squared_sum(x: jax.Array) -> jax.Array:
    return jnp.sum(abs_squared(x.astype(compute_dtype(x.dtype)))).astype(jnp.float32)


def squared_norms(
    params: jax.Array, updates: jax.Array, axes: tuple[str, ...] = ()
) -> tuple[jax.Array, jax.Array]:
    """``(||params||**2, ||updates||**2)`` as float32 scalars, summed over mapped ``axes``."""
    sums = (_squared_sum(params), _squared_sum(updates))
    return tuple(jax.lax.psum(s, axes) for s in sums) if axes else sums
