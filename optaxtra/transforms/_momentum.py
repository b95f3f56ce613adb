"""``trace``: heavy-ball and Nesterov momentum, safe for float16 and integer leaves."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .._hyperparams import compute_dtype
from .._leaves import accumulator_dtype as buffer_dtype
from .._leaves import frozen_update, is_trainable
from .._tree_checks import check_state_type, check_tree_matches
from .._validation import check_bool, check_dtype, check_real

__all__ = ["TraceState", "trace"]


class TraceState(NamedTuple):
    """State of ``trace``.

    Attributes:
      trace: the momentum buffer, a pytree like the params (float32 for
        float16 leaves), or None where ``decay`` is None.
    """

    trace: Any


def trace(
    decay: float | jax.Array | None, nesterov: bool = False, *, accumulator_dtype: Any = None
) -> optax.GradientTransformation:
    r"""Momentum: ``b_t = decay * b_{t-1} + g``, returning ``b_t`` (or ``g + decay * b_t``).

    The maths of ``optax.trace`` (and PyTorch ``SGD`` with dampening 0), which
    this replaces inside optaxtra's aliases because ``optax.trace``

    * keeps the buffer of float16 params in float16, where a sum of up to
      ``1 / (1 - decay)`` gradients overflows to ``inf`` and stays there;
    * fails on integer and boolean leaves (``decay * t`` has no dtype under
      strict promotion; a ``float0`` gradient has no arithmetic at all).

    Here the buffer of float16 leaves is kept in float32 (the update returned
    is cast back to the leaf's dtype), integer and boolean leaves get zero
    updates, and float32 leaves give ``optax.trace``'s results bit for bit.

    ``decay=None`` means no momentum: the updates pass through and no buffer
    is kept (optax's ``sgd(momentum=None)``). A ``decay`` of 0 keeps the
    buffer, as optax does, so that ``optax.inject_hyperparams``, which turns
    the number into an array, builds the same state.

    Args:
      decay: the momentum ``mu`` in [0, 1), a number or an array; or None.
      nesterov: return ``g + decay * b_t`` (Nesterov momentum; needs a
        ``decay``).
      accumulator_dtype: storage dtype of the buffer; None for the params'
        dtype (float32 for float16 leaves).

    Returns:
      An ``optax.GradientTransformation`` with state ``TraceState``.

    Example:
      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.trace(0.5)
      >>> state = tx.init(jnp.zeros(2))
      >>> _, state = tx.update(jnp.array([1.0, 2.0]), state)
      >>> updates, state = tx.update(jnp.array([1.0, 2.0]), state)
      >>> updates  # g + 0.5 * g
      Array([1.5, 3. ], dtype=float32)

    References:
      Polyak, "Some methods of speeding up the convergence of iteration
      methods", 1964. https://doi.org/10.1016/0041-5553(64)90137-5

      Sutskever et al., "On the importance of initialization and momentum in
      deep learning", ICML 2013. http://proceedings.mlr.press/v28/sutskever13.html
    """
    check_bool("nesterov", nesterov)
    check_dtype("accumulator_dtype", accumulator_dtype)
    if decay is None:
        if nesterov:
            raise ValueError("nesterov=True needs a momentum (decay), got None.")
        return optax.GradientTransformation(
            lambda params: TraceState(None), lambda updates, state, params=None: (updates, state)
        )
    check_real("decay (the momentum)", decay, 0.0, 1.0, high_open=True, allow_schedule=False)

    def init_fn(params):
        def zeros(p):
            p = jnp.asarray(p)
            return jnp.zeros_like(p, dtype=buffer_dtype(p.dtype, accumulator_dtype))

        return TraceState(jax.tree.map(zeros, params))

    def update_fn(updates, state, params=None):
        check_state_type(state, TraceState, "trace")
        if params is not None:
            check_tree_matches(updates, params, piece="trace")
        check_tree_matches(
            updates, state.trace, piece="trace", against="the momentum buffer",
            expected_dtype=lambda dtype: buffer_dtype(dtype, accumulator_dtype),
        )

        def leaf(g, t):
            if not is_trainable(t):
                return frozen_update(g, t), t
            dtype = compute_dtype(g.dtype)
            g32, rate = g.astype(dtype), jnp.asarray(decay).astype(dtype)
            new_trace = g32 + rate * t.astype(dtype)
            out = g32 + rate * new_trace if nesterov else new_trace
            return out.astype(g.dtype), new_trace.astype(t.dtype)

        pairs = jax.tree.map(leaf, updates, state.trace)
        treedef = jax.tree.structure(updates)
        per_leaf = treedef.flatten_up_to(pairs)
        new_updates = treedef.unflatten([pair[0] for pair in per_leaf])
        return new_updates, TraceState(treedef.unflatten([pair[1] for pair in per_leaf]))

    return optax.GradientTransformation(init_fn, update_fn)
