"""Which weights an average follows, and the arithmetic of one averaging step.

By default the params the user holds after each update (what PyTorch's
``AveragedModel.update_parameters(model)`` and TF-Addons' ``MovingAverage``
average). Around Lookahead (``lookahead_state``, ``ranger``) those are the fast
weights; ``average_slow_weights=True`` averages Lookahead's slow weights
instead, the ones Lookahead itself evaluates with.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from .._hyperparams import compute_dtype
from .._trees import find_states
from ..transforms._lookahead import LookaheadState, slow_params


def check_source(name: str, inner_state: Any, average_slow_weights: bool) -> None:
    """Raises if slow weights are asked of an optimizer without Lookahead."""
    if average_slow_weights and not find_states(inner_state, LookaheadState):
        raise ValueError(
            f"{name}(average_slow_weights=True) needs an inner optimizer with Lookahead "
            "(lookahead_state, lookahead, ranger); its state holds no LookaheadState."
        )


def weights_after(updates: Any, params: Any, inner_state: Any, average_slow_weights: bool) -> Any:
    """The weights to average after an update: the new params, or the slow weights."""
    if average_slow_weights:
        return slow_params(inner_state)
    return optax.apply_updates(params, updates)


def init_average(params: Any) -> Any:
    """A copy of the params, in float32 for half-precision leaves.

    An average moves by ``(1 - decay) * (p - average)`` per step, which
    bfloat16's 8-bit mantissa rounds away for ``decay = 0.999`` unless the
    difference exceeds 1/4 of the average.
    """
    # A copy also where the dtype is kept: the state must not hold the params' own buffers, or a
    # step that donates both params and state would donate one buffer twice.
    return jax.tree.map(
        lambda p: jnp.array(p, dtype=compute_dtype(jnp.asarray(p).dtype), copy=True), params
    )


def update_average(
    average: Any, weights: Any, include: jax.Array, move: Callable[[jax.Array, jax.Array], jax.Array]
) -> Any:
    """``move(average, w)`` leaf by leaf where ``include``, else ``average``.

    ``w`` is cast to the average's dtype first. Integer and boolean leaves are
    not averaged: they follow the weights.
    """

    def leaf(a, w):
        w = jnp.asarray(w).astype(a.dtype)
        if not jnp.issubdtype(a.dtype, jnp.inexact):
            return w
        return jnp.where(include, move(a, w), a)

    return jax.tree.map(leaf, average, weights)
