"""Arrangements of optimizer code for what XLA compiles well: the one module for them.

The pieces compute the same numbers in any arrangement; these helpers exist
because of four things XLA does, each measured (``benchmarks/README.md``,
"What we tried"):

* **A field the step never reads is not donated.** Some state fields are records
  for ``optaxtra.diagnostics`` (the learning rate applied, RAdam's rho and r,
  each layer's trust ratio, whether Lookahead synced): the update computes them
  but never reads their old value, so a jitted step drops that input, and the
  new value goes to a fresh buffer on every call (on a GPU, a host-bound step
  pays a kernel launch for it). ``overwrite`` writes the new value so that it
  reads the old one, and takes its buffer. ``tests/test_donation.py`` checks
  that every output of each optimizer's donated step reuses a donated buffer.
* **A bare ``count + 1`` is copied into each reader.** Its readers then read the
  old count after the new one has taken its buffer, so XLA copies the count
  first: one more operation per piece. ``increment`` gives the new count as one
  value its readers share.
* **XLA fuses across leaves.** A sum or conjunction of per-leaf scalars (SWATS's
  dot products, ``skip_nonfinite``'s finiteness checks) is fused with the
  reductions that produce them into one kernel with an operand or two per leaf,
  or into every kernel that reads it; XLA:CPU's compile time for such kernels
  grows faster than the leaf count. Optimization barriers and chunked or
  stacked sums do not prevent it; a ``lax.cond`` is a boundary XLA does not
  fuse across, so ``combine_apart`` runs the combination in a branch of its own.
* **Reads and overwrites of a donated buffer are not ordered by themselves.**
  A piece that reads an old moment for one output and writes the new moment
  over it for another (ADOPT: ``m`` from the old ``v``, then the new ``v``)
  gives XLA two fusions it may run in either order, so it copies the donated
  buffer. ``after`` ties a value to another by a select that reads it, which
  orders the two.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["after", "combine_apart", "increment", "overwrite"]


def _lowest(dtype: np.dtype) -> jax.Array:
    """A value no element of ``dtype`` is less than: -inf, the integer minimum, or False."""
    if jnp.issubdtype(dtype, jnp.floating):
        return jnp.asarray(-jnp.inf, dtype)
    if jnp.issubdtype(dtype, jnp.integer):
        return jnp.asarray(jnp.iinfo(dtype).min, dtype)
    if dtype == jnp.bool_:
        return jnp.asarray(False, dtype)
    # Complex numbers have no such value (JAX orders them lexicographically), nor has float0.
    raise TypeError(f"overwrite takes a real, integer or boolean field, got dtype {dtype}.")


def overwrite(previous: jax.Array, value: jax.Array) -> jax.Array:
    """``value`` (in ``previous``'s dtype), computed so that it can take ``previous``'s buffer.

    The result selects ``previous`` where ``previous < lowest`` (-inf for
    floats, the minimum for integers, False for booleans), which no value of
    its dtype is, NaN included, and ``value`` everywhere else. It equals
    ``value`` exactly, but reads ``previous``, which XLA cannot fold away; so
    the field stays an input of the jitted step and its new value is written
    over the donated old one.

    Args:
      previous: the field's value in the state passed to ``update``.
      value: its new value; broadcast to ``previous``'s shape.

    Returns:
      ``value`` as an array of ``previous``'s shape and dtype.

    Raises:
      TypeError: ``previous`` is complex or float0, or ``value`` is a float
        written into an integer or boolean field (it would be truncated).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from optaxtra._xla import overwrite
      >>> step = jax.jit(lambda rate: overwrite(rate, 0.5), donate_argnums=0)
      >>> step(jnp.float32(0.1))
      Array(0.5, dtype=float32)
    """
    previous = jnp.asarray(previous)
    lowest = _lowest(previous.dtype)
    if jnp.issubdtype(jnp.result_type(value), jnp.inexact) and not jnp.issubdtype(
        previous.dtype, jnp.inexact
    ):
        raise TypeError(
            f"overwrite would truncate a {jnp.result_type(value)} value into a "
            f"{previous.dtype} field."
        )
    value = jnp.broadcast_to(jnp.asarray(value, previous.dtype), previous.shape)
    return jnp.where(previous < lowest, previous, value)


def increment(count: jax.Array) -> jax.Array:
    """``count + 1``, saturating at the int32 maximum (as optax's ``safe_int32_increment``).

    Written as a select, which XLA keeps as one value rather than copying into
    each reader as it does a bare add: readers of the new count then read the
    buffer it is written to, and the donated old count needs no copy (see the
    module docstring). Readers of the old count (a schedule evaluated at it)
    still need one, as in optax.

    Args:
      count: an int32 step count.

    Returns:
      ``count + 1``, or ``count`` where it is already the int32 maximum.

    Example:
      >>> import jax.numpy as jnp
      >>> from optaxtra._xla import increment
      >>> increment(jnp.int32(4)), increment(jnp.int32(2**31 - 1))
      (Array(5, dtype=int32), Array(2147483647, dtype=int32))
    """
    count = jnp.asarray(count, jnp.int32)
    return jnp.where(count < jnp.iinfo(jnp.int32).max, count + 1, count)


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


def after(value: jax.Array, other: jax.Array) -> jax.Array:
    """``value``, computed so that it reads ``other`` (a select on ``other < -inf``, never true).

    Args:
      value: the array to return.
      other: the array ``value`` must be computed after (its real part, if complex).

    Returns:
      ``value`` exactly, now a reader of ``other``.

    Example:
      >>> import jax.numpy as jnp
      >>> from optaxtra._xla import after
      >>> after(jnp.array([1.0, 2.0]), jnp.array([jnp.nan, 0.0]))
      Array([1., 2.], dtype=float32)
    """
    other = jnp.real(other) if jnp.iscomplexobj(other) else other
    never = other < jnp.asarray(-jnp.inf, other.dtype)
    return jnp.where(never, jnp.zeros((), value.dtype), value)
