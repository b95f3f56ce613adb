"""``skip_nonfinite``: drop a step whose gradient (or update) is NaN or infinite, and count it."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .._xla import combine_apart
from .._diagnostics import register_diagnostics
from .._leaves import is_trainable
from .._tree_checks import check_state_type

__all__ = ["SkipNonfiniteState", "skip_nonfinite"]


class SkipNonfiniteState(NamedTuple):
    """State of ``skip_nonfinite``.

    Attributes:
      inner: the wrapped optimizer's state, as of the last step taken.
      skipped: number of steps skipped so far (int32).
      consecutive: number of steps skipped since the last step taken (int32).
    """

    inner: Any
    skipped: jax.Array
    consecutive: jax.Array


def _finite_flag(updates: Any, new_updates: Any, skipped: jax.Array) -> jax.Array:
    """Whether every leaf of both trees is finite: one check per pair of leaves, combined apart.

    ``skipped < 0`` never holds (a count); ``combine_apart`` only needs a
    predicate unknown to the compiler.
    """
    pairs = zip(jax.tree.leaves(updates), jax.tree.leaves(new_updates), strict=True)
    checks = [jnp.all(jnp.isfinite(g) & jnp.isfinite(u)) for g, u in pairs if is_trainable(g) and is_trainable(u)]
    conjunction = lambda c: functools.reduce(jnp.logical_and, c, jnp.asarray(True))
    return combine_apart(conjunction, checks, unless=skipped < 0, otherwise=jnp.asarray(True))


def skip_nonfinite(inner: optax.GradientTransformation) -> optax.GradientTransformation:
    """Runs ``inner``, unless the gradient or the update it gives is not finite.

    A step is skipped when any gradient entry, or any entry of the update
    ``inner`` computes from it, is NaN or infinite. A skipped step returns
    zero updates and the state ``inner`` had before it: params, moments, step
    counts and schedules are as if the batch had never been seen. Skips are
    counted in the state and reported by ``optaxtra.diagnostics`` as
    ``nonfinite/skipped`` (total) and ``nonfinite/consecutive`` (since the
    last step taken; a value that keeps growing means training has diverged).

    Both outcomes are computed and selected with ``jnp.where``, so the step
    stays one compiled program. Unlike ``optax.apply_if_finite`` it never
    gives up and applies a non-finite update; wrap it in
    ``optax.apply_if_finite`` (or check ``nonfinite/consecutive``) for that.

    Args:
      inner: the optimizer to protect.

    Returns:
      An ``optax.GradientTransformation`` with state ``SkipNonfiniteState``.

    Example:
      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.skip_nonfinite(optaxtra.adam(0.1))
      >>> params = jnp.array([1.0, 2.0])
      >>> state = tx.init(params)
      >>> updates, state = tx.update(jnp.array([1.0, jnp.nan]), state, params)
      >>> updates, int(state.skipped)
      (Array([0., 0.], dtype=float32), 1)
      >>> optaxtra.diagnostics(state)["nonfinite/skipped"]
      Array(1., dtype=float32)

    References:
      Micikevicius et al., "Mixed Precision Training", ICLR 2018 (skipping
      steps whose gradients overflowed). https://arxiv.org/abs/1710.03740
    """
    if not isinstance(inner, optax.GradientTransformation):
        raise TypeError(f"inner must be an optax.GradientTransformation, got {type(inner).__name__}.")

    def init_fn(params):
        zero = lambda: jnp.zeros([], jnp.int32)  # one array per field: each can be donated
        return SkipNonfiniteState(inner.init(params), zero(), zero())

    def update_fn(updates, state, params=None):
        check_state_type(state, SkipNonfiniteState, "skip_nonfinite")
        new_updates, new_inner = inner.update(updates, state.inner, params)
        finite = _finite_flag(updates, new_updates, state.skipped)
        keep = lambda new, old: jnp.where(finite, new, old)
        new_updates = jax.tree.map(
            lambda u: keep(u, jnp.zeros_like(u)) if is_trainable(u) else u, new_updates
        )
        new_inner = jax.tree.map(keep, new_inner, state.inner)
        skipped = (~finite).astype(jnp.int32)
        consecutive = jnp.where(finite, 0, state.consecutive + 1).astype(jnp.int32)
        return new_updates, SkipNonfiniteState(new_inner, state.skipped + skipped, consecutive)

    return optax.GradientTransformation(init_fn, update_fn)


register_diagnostics(
    SkipNonfiniteState,
    lambda s: {"nonfinite/skipped": s.skipped, "nonfinite/consecutive": s.consecutive},
)
register_diagnostics(
    optax.ApplyIfFiniteState,
    lambda s: {"nonfinite/skipped": s.total_notfinite, "nonfinite/consecutive": s.notfinite_count},
)
