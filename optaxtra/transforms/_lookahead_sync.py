"""Lookahead's synchronisation step, arranged so that XLA keeps no param-sized temporary.

On a sync step the fast weights ``f = p + u`` (after the inner step ``u``)
are pulled back towards the slow weights ``s``: the update becomes
``u + back`` with ``back = (1 - alpha)(s - f)``, and the slow weights become
the params the caller ends the step with.

Written plainly, the whole sync sits under one ``lax.cond``; XLA materialises
every array that crosses a conditional, so each step would pay for
param-sized temporaries (``tests/_oracles.py`` keeps that form, and
``tests/test_fast_paths.py`` checks this one against it). Here the update is
computed elementwise, as ``where(synced, u + back, u)``, which XLA fuses into
the caller's ``apply_updates``; the new slow weights are
``optax.apply_updates(params, updates)``, the expression the caller evaluates,
which XLA merges with the caller's (one buffer, the new params). Only copying
them into the slow weights sits under ``lax.cond``, on sync steps only. So the
slow weights after a sync equal the new params bit for bit (when the caller
applies the updates with ``optax.apply_updates``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from .._hyperparams import compute_dtype
from .._leaves import is_trainable

__all__ = ["pulled_back", "sync"]


def pulled_back(slow: Any, params: Any, inner_updates: Any, slow_step_size: float) -> tuple[Any, Any]:
    """Per leaf, ``(f + back, u + back)``: the slow weights and the update of a sync step."""
    fast = optax.apply_updates(params, inner_updates)

    # Written as fast + (1 - alpha)(slow - fast) so that alpha = 1 is the
    # inner optimizer bit for bit.
    def leaf(s, f, u):
        if not is_trainable(s):
            return s, u
        dtype = compute_dtype(s.dtype)
        stay = jnp.asarray(1 - slow_step_size).astype(dtype)
        back = stay * (s.astype(dtype) - f.astype(dtype))
        return (f.astype(dtype) + back).astype(s.dtype), (u.astype(dtype) + back).astype(u.dtype)

    treedef = jax.tree.structure(slow)
    pairs = treedef.flatten_up_to(jax.tree.map(leaf, slow, fast, inner_updates))
    return treedef.unflatten([p[0] for p in pairs]), treedef.unflatten([p[1] for p in pairs])


def sync(
    synced: jax.Array,
    params: Any,
    inner_updates: Any,
    slow: Any,
    inner_state: Any,
    slow_step_size: float,
    reinit: Any,
) -> tuple[Any, Any, Any]:
    """``(updates, slow, inner_state)`` after one inner step; ``reinit`` is None or ``slow -> inner state``."""
    _, moved = pulled_back(slow, params, inner_updates, slow_step_size)
    trainable = jax.tree.map(is_trainable, slow)
    pick = lambda m, u, t: jnp.where(synced, m, u) if t else u
    updates = jax.tree.map(pick, moved, inner_updates, trainable)
    # What the caller computes next; XLA merges the two into one buffer.
    apply = lambda p, u, t: optax.apply_updates(p, u) if t else p
    new_params = jax.tree.map(apply, params, updates, trainable)

    def take_new_params(_):
        take = lambda s, p, t: p.astype(s.dtype) if t else s
        return jax.tree.map(take, slow, new_params, trainable)

    new_slow = jax.lax.cond(synced, take_new_params, lambda _: slow, None)
    if reinit is not None:
        inner_state = jax.lax.cond(synced, lambda _: reinit(new_slow), lambda _: inner_state, None)
    return updates, new_slow, inner_state
