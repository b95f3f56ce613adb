"""Construction-time checks of hyperparameters.

Every factory in optaxtra validates what it is given before it returns, so a bad
value fails at once with the argument's name, the value and the valid range, not
as a NaN ten thousand steps later. Values that cannot be checked at construction
pass through untouched:

* schedules (callables), which are only evaluated inside ``update``;
* traced arrays (under ``jit``/``vmap``/``optax.inject_hyperparams``), which is
  what lets a sweep over hyperparameters run as one compiled program.

Concrete arrays are checked element-wise.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "check_bool",
    "check_callable",
    "check_registration",
    "check_choice",
    "check_dtype",
    "check_int",
    "check_real",
]


def _is_traced(value: Any) -> bool:
    return isinstance(value, jax.core.Tracer)


def _concrete_values(name: str, value: Any, allow_schedule: bool = True) -> np.ndarray | None:
    """Returns the value as a float64 numpy array, or None if it can't be checked."""
    accepted = "a real number, an array or a schedule (a callable of the step)"
    if not allow_schedule:
        accepted = "a real number or an array (not a schedule)"
    if value is None:
        raise TypeError(f"{name} must be {accepted}, got None.")
    if callable(value) or _is_traced(value):
        return None
    if isinstance(value, bool) or (
        isinstance(value, (np.ndarray, jax.Array)) and np.asarray(value).dtype == bool
    ):
        raise TypeError(f"{name} must be a real number, got the boolean {value!r}.")
    if isinstance(value, numbers.Real):
        return np.asarray(float(value))
    if isinstance(value, (np.ndarray, jax.Array, np.generic)):
        array = np.asarray(value)
        if not jnp.issubdtype(array.dtype, jnp.number) or jnp.issubdtype(array.dtype, jnp.complexfloating):
            raise TypeError(f"{name} must be real-valued, got an array of dtype {array.dtype}.")
        return array.astype(np.float64)
    raise TypeError(f"{name} must be {accepted}, got {type(value).__name__} {value!r}.")


def _interval(low: float, high: float, low_open: bool, high_open: bool) -> str:
    left = "(" if low_open or low == -math.inf else "["
    right = ")" if high_open or high == math.inf else "]"
    low_text = "-inf" if low == -math.inf else f"{low:g}"
    high_text = "inf" if high == math.inf else f"{high:g}"
    return f"{left}{low_text}, {high_text}{right}"


def check_real(
    name: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
    allow_schedule: bool = True,
) -> None:
    """Raises if a concrete real hyperparameter lies outside an interval.

    Args:
      name: the argument's name, used in the message.
      value: a Python number, an array, a schedule or a tracer.
      low: lower end of the valid interval.
      high: upper end of the valid interval.
      low_open: whether ``low`` itself is excluded.
      high_open: whether ``high`` itself is excluded.
      allow_schedule: whether a callable is accepted.

    Raises:
      TypeError: for a value that is not a real number, array or schedule.
      ValueError: for a NaN, an infinity or a value outside the interval.
    """
    if callable(value) and not allow_schedule:
        raise TypeError(f"{name} must be a number, not a schedule; got {value!r}.")
    values = _concrete_values(name, value, allow_schedule)
    if values is None:
        return
    valid_range = _interval(low, high, low_open, high_open)
    if np.isnan(values).any():
        raise ValueError(f"{name} must be a number in {valid_range}, got NaN ({value!r}).")
    if np.isinf(values).any():
        raise ValueError(f"{name} must be a finite number in {valid_range}, got {value!r}.")
    too_low = values <= low if low_open else values < low
    too_high = values >= high if high_open else values > high
    if too_low.any() or too_high.any():
        raise ValueError(f"{name} must be in {valid_range}, got {value!r}.")


def check_int(name: str, value: Any, minimum: int = 0, *, allow_array: bool = False) -> None:
    """Raises unless ``value`` is a Python integer (not a bool) ``>= minimum``.

    With ``allow_array``, an integer scalar array is accepted too (checked when
    concrete; a traced one, as ``optax.inject_hyperparams`` passes, is not).
    """
    if allow_array and isinstance(value, (jax.Array, np.ndarray, np.integer)):
        if np.ndim(value) != 0 or not jnp.issubdtype(jnp.result_type(value), jnp.integer):
            raise TypeError(f"{name} must be an integer >= {minimum}, got an array of dtype "
                            f"{jnp.result_type(value)} and shape {np.shape(value)}.")
        if _is_traced(value) or int(value) >= minimum:
            return
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be an integer >= {minimum}, got {type(value).__name__} {value!r}."
        )
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")


def check_bool(name: str, value: Any) -> None:
    """Raises unless ``value`` is a Python bool."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}.")


def check_callable(name: str, value: Any, signature: str) -> None:
    """Raises unless ``value`` is callable; ``signature`` describes the expected call."""
    if not callable(value):
        raise TypeError(f"{name} must be a callable {signature}, got {type(value).__name__} {value!r}.")


def check_registration(state_type: Any, reader: Any, signature: str) -> None:
    """Raises unless ``state_type`` is a class and ``reader`` a callable (the registries' arguments)."""
    if not isinstance(state_type, type):
        raise TypeError(f"state_type must be a class (a state NamedTuple), got {state_type!r}.")
    check_callable("reader", reader, signature)


def check_choice(name: str, value: Any, choices: tuple[Any, ...]) -> None:
    """Raises unless ``value`` is one of ``choices``."""
    if value not in choices:
        options = ", ".join(repr(choice) for choice in choices)
        raise ValueError(f"{name} must be one of {options}; got {value!r}.")


def check_dtype(name: str, value: Any, *, allow_complex: bool = False) -> None:
    """Raises unless ``value`` is None or names a floating-point (or, if allowed, complex) dtype."""
    if value is None:
        return
    kind = "floating-point or complex" if allow_complex else "floating-point"
    try:
        dtype = np.dtype(value)
    except TypeError:
        raise TypeError(f"{name} must be None or a {kind} dtype (e.g. jnp.float32), got {value!r}.") from None
    if not jax.dtypes.issubdtype(dtype, np.inexact if allow_complex else np.floating):
        raise TypeError(f"{name} must be None or a {kind} dtype (e.g. jnp.float32), got {dtype}.")


def check_nu_dtype(value: Any) -> None:
    """Raises unless ``value`` is None, bfloat16 or a float of 32 bits or more (not float16)."""
    check_dtype("nu_dtype", value)
    if value is not None and np.dtype(value) == np.dtype(jnp.float16):
        raise ValueError(
            "nu_dtype must be None, jnp.bfloat16, jnp.float32 or jnp.float64, got float16: "
            "g**2 overflows float16 for |g| > 256."
        )


