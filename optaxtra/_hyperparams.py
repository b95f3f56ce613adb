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

import math
import numbers
from typing import Any, Callable, NamedTuple, Union

import jax
import jax.numpy as jnp

__all__ = ["ScalarOrSchedule", "Decay", "resolve", "resolve_decay", "compute_dtype", "is_exactly_zero"]

#: A hyperparameter value: a Python number, a JAX array (possibly traced, so a
#: ``jax.vmap`` over it sweeps values in one compiled program), or a schedule
#: ``step -> value`` evaluated at the count the transformation keeps in its
#: state (0 on the first update). ``resolve`` evaluates any of them at a step, as
#: a float32 array. A type alias, so it has no runtime docstring; see the
#: module docstring for the details.
ScalarOrSchedule = Union[float, jax.Array, Callable[[jax.Array], jax.Array]]


def is_exactly_zero(value: Any) -> bool:
    """Whether ``value`` is the Python number 0 (not a bool, an array or a schedule).

    Pieces that a zero hyperparameter switches off (a decay, a momentum) are left
    out of the program only for this value. An array, traced or concrete, keeps
    them, so a sweep that includes 0 compiles one program and a traced value
    never meets a Python ``if``.
    """
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and value == 0


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
    if jnp.issubdtype(dtype, jnp.floating) and dtype.itemsize < 4:
        return jnp.dtype(jnp.float32)
    return dtype


class Decay(NamedTuple):
    """An exponential-moving-average decay ``b`` resolved for one step.

    Attributes:
      rate: ``b`` as float32.
      complement: ``1 - b`` as float32. For a static Python ``b`` it is taken
        in float64 first: float32(0.999) is 0.99900001, and ``1 - `` that is
        1.3e-5 away from 0.001, an error PyTorch (which keeps betas as Python
        floats) does not make.
      log: ``log(b)``, likewise from float64 for a static ``b``.
    """

    rate: jax.Array
    complement: jax.Array
    log: jax.Array

    def debias(self, step: jax.Array) -> jax.Array:
        """``1 - b**step``, written ``(1 - b) * expm1(step log b) / expm1(log b)``.

        ``expm1`` keeps it accurate for small steps, and the factoring makes the
        first step's correction exactly ``complement``, so ``m_hat_1 = g_1``
        bit for bit (as in PyTorch).
        """
        step = jnp.asarray(step, jnp.float32)
        return self.complement * (jnp.expm1(step * self.log) / jnp.expm1(self.log))


def resolve_decay(value: ScalarOrSchedule, count: jax.Array) -> Decay:
    """Resolves a decay hyperparameter ``b`` in [0, 1) at step ``count``."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        as_float = float(value)
        log = math.log(as_float) if as_float > 0 else -math.inf
        return Decay(*(jnp.asarray(x, jnp.float32) for x in (as_float, 1.0 - as_float, log)))
    rate = resolve(value, count)
    complement = 1 - rate
    return Decay(rate, complement, jnp.log1p(-complement))
