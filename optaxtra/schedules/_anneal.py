"""Interpolation between two values, shared by the schedules.

Written in terms of the fraction of the interval *remaining*, so that values
near the end of a decay (where a learning rate approaches a floor thousands of
times smaller than its peak) keep float32's relative precision:
``(1 + cos(pi * p)) / 2`` loses all digits as ``p -> 1``; the identical
``sin(pi * (1 - p) / 2) ** 2`` does not.
"""

from __future__ import annotations

from typing import Literal, Union

import jax
import jax.numpy as jnp

AnnealStrategy = Literal["cos", "linear"]
ANNEAL_STRATEGIES = ("cos", "linear")
Scalar = Union[float, jax.Array]
"""A number, or a scalar array (traced ones included)."""


def anneal(start: jax.Array, end: jax.Array, remaining: jax.Array, strategy: AnnealStrategy) -> jax.Array:
    """The value ``1 - remaining`` of the way from ``start`` to ``end``.

    Args:
      start: value when ``remaining == 1``.
      end: value when ``remaining == 0``.
      remaining: fraction of the interval still ahead, clipped to [0, 1].
      strategy: ``"cos"`` (half a cosine, as PyTorch's ``OneCycleLR`` and
        ``SWALR``) or ``"linear"``.

    Returns:
      A float32 array.
    """
    remaining = jnp.clip(jnp.asarray(remaining, jnp.float32), 0.0, 1.0)
    if strategy == "cos":
        shape = jnp.sin((0.5 * jnp.pi) * remaining) ** 2
    else:
        shape = remaining
    start = jnp.asarray(start, jnp.float32)
    end = jnp.asarray(end, jnp.float32)
    return end + (start - end) * shape


def remaining_fraction(step: jax.Array, begin: jax.Array, finish: jax.Array) -> jax.Array:
    """``(finish - step) / (finish - begin)``; 0 (done) for an empty interval."""
    span = jnp.asarray(finish, jnp.float32) - jnp.asarray(begin, jnp.float32)
    ahead = jnp.asarray(finish, jnp.float32) - jnp.asarray(step, jnp.float32)
    return jnp.where(span > 0, ahead / jnp.where(span > 0, span, 1.0), 0.0)
