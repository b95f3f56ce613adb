"""How the pieces treat each kind of leaf, and the dtype their state is kept in.

* **Trainable leaves** are inexact arrays (floating or complex). **Frozen
  leaves** are integer and boolean arrays kept in the params (step counters,
  lookup tables, masks): every piece returns a zero update for them, in the
  param's dtype, so ``optax.apply_updates`` leaves them as they were. Their
  gradient may be zeros of their dtype or ``float0`` (what
  ``jax.grad(..., allow_int=True)`` returns). The state kept for a frozen leaf
  is a zero array of the param's shape and dtype, so that every state tree
  still has the params' structure.
* **Storage dtypes.** Optimizer state is never kept in a half-precision dtype
  that cannot hold it. The second moment ``v ~ g**2`` overflows float16 once
  ``|g| > 256`` (256**2 > 65504, float16's largest value) and flushes to zero
  below ``|g| < 2.4e-4``; in bfloat16, ``0.999 * v`` rounds back to ``v``. It
  is kept in at least float32. A momentum sum is up to ``1 / (1 - momentum)``
  times the gradient: for float16 leaves it is kept in float32. First moments
  (averages of gradients, no larger than the largest one) follow ``mu_dtype``
  or the params' dtype.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._hyperparams import compute_dtype

__all__ = [
    "accumulator_dtype",
    "first_moment_dtype",
    "frozen_update",
    "is_trainable",
    "leaf_dtype",
    "second_moment_dtype",
]

_FLOAT0 = np.dtype(jax.dtypes.float0)


def leaf_dtype(leaf: Any) -> np.dtype:
    """The dtype JAX computes a leaf in (numpy float64 is float32 without x64)."""
    dtype = getattr(leaf, "dtype", None)
    if dtype is None:
        return jnp.result_type(leaf)
    if dtype == _FLOAT0:
        return _FLOAT0
    return jax.dtypes.canonicalize_dtype(dtype)


def is_trainable(leaf: Any) -> bool:
    """Whether an optimizer moves this leaf: True for floating and complex arrays."""
    return bool(jnp.issubdtype(leaf_dtype(leaf), jnp.inexact))


def frozen_update(update: Any, like: Any = None) -> Any:
    """The update of a frozen leaf: zeros shaped like ``update``.

    Args:
      update: the incoming update (zeros, integers or ``float0``).
      like: the param or state leaf whose dtype the zeros take; None keeps
        ``update``'s dtype.

    Returns:
      Zeros in ``like``'s dtype, or ``update`` itself when it is ``float0`` and
      no dtype is known (``float0`` arrays support no arithmetic).
    """
    dtype = leaf_dtype(update if like is None else like)
    if dtype == _FLOAT0:
        return update
    return jnp.zeros(np.shape(update), dtype)


def first_moment_dtype(dtype: Any, mu_dtype: Any = None) -> np.dtype:
    """Storage dtype of a first moment (an average of gradients) for a leaf of ``dtype``.

    ``mu_dtype`` when given, matched to the leaf's kind: its complex counterpart
    for complex leaves (an average of complex gradients is complex; optax
    instead casts it to the real ``mu_dtype`` and drops the imaginary part), its
    real counterpart for real leaves (so one ``mu_dtype=jnp.complex64`` serves a
    tree of real and complex params, as optax's does). Else the leaf's own
    dtype; frozen leaves keep theirs. An average of gradients is no larger than
    the largest gradient, so float16 can hold it.
    """
    dtype = jnp.dtype(dtype)
    if mu_dtype is None or not jnp.issubdtype(dtype, jnp.inexact):
        return dtype
    requested = jnp.dtype(mu_dtype)
    real = jnp.dtype(jnp.finfo(requested).dtype)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return jnp.dtype(jnp.complex128 if real.itemsize > 4 else jnp.complex64)
    return real


def second_moment_dtype(dtype: Any, mu_dtype: Any = None, nu_dtype: Any = None) -> np.dtype:
    """Storage dtype of a second moment (an average of ``|g|**2``): real, at least float32 by default.

    ``nu_dtype`` when given (its real counterpart); else the compute dtype of
    the leaf (float32 for bfloat16 and float16 leaves), widened to
    ``mu_dtype`` if that is wider; never narrower. Stored in bfloat16 by plain
    rounding, ``b2 * v`` with ``b2 = 0.999`` rounds back to ``v`` and after a
    gradient spike ``v`` would never decay: a ``nu_dtype`` of bfloat16 is
    therefore stored with stochastic rounding (``_stochastic_rounding``). In
    float16, ``g**2`` overflows for ``|g| > 256`` (``check_nu_dtype`` refuses
    it). Frozen leaves keep their dtype.
    """
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.inexact):
        return dtype
    if nu_dtype is not None:
        return jnp.dtype(jnp.finfo(nu_dtype).dtype)
    real = jnp.dtype(jnp.finfo(compute_dtype(dtype)).dtype)
    requested = None if mu_dtype is None else jnp.dtype(jnp.finfo(mu_dtype).dtype)
    return requested if requested is not None and requested.itemsize > real.itemsize else real


def accumulator_dtype(dtype: Any, requested: Any = None) -> np.dtype:
    """Storage dtype of a momentum sum: ``requested`` or the leaf's dtype, never float16."""
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.inexact):
        return dtype
    stored = first_moment_dtype(dtype, requested)
    return jnp.dtype(jnp.float32) if stored == jnp.float16 else stored
