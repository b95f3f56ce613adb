"""Hyperparameters that may be numbers, arrays or schedules.

optaxtra accepts, for every real hyperparameter that can sensibly change during
training (learning rate, b1, b2, weight decay, ...), one of:

* a Python number;
* a JAX array, possibly traced, so that ``jax.vmap`` over a hyperparameter axis
  sweeps many values in one compiled program and changing a value never
  recompiles;
* a schedule ``step -> value``, evaluated inside ``update`` at the step count
  the transformation keeps in its own state (0 on the first update, as optax).
"""

from __future__ import annotations

from typing import Callable, Union

import jax
import jax.numpy as jnp

__all__ = ["ScalarOrSchedule", "resolve", "compute_dtype"]

ScalarOrSchedule = Union[float, jax.Array, Callable[[jax.Array], jax.Array]]


def resolve(value: ScalarOrSchedule, count: jax.Array) -> jax.Array:
    """Evaluates a hyperparameter at step ``count`` as a float32 scalar array.

    Args:
      value: a number, an array or a schedule.
      count: the step count (int32) at which a schedule is evaluated.

    Returns:
      The value as a float32 array.
    """
    if callable(value):
        value = value(count)
    return jnp.asarray(value, dtype=jnp.float32)


def compute_dtype(dtype: jnp.dtype) -> jnp.dtype:
    """The dtype optimizer maths runs in for leaves of ``dtype``.

    Half-precision leaves (bfloat16, float16) are computed in float32 and cast
    back, so that squares of large float16 gradients do not overflow and small
    bfloat16 updates are not rounded away inside the update rule.
    """
    dtype = jnp.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return jnp.promote_types(dtype, jnp.complex64)
    return jnp.promote_types(dtype, jnp.float32)
