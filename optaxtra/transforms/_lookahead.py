"""``lookahead_state``: Lookahead with the slow weights kept in the optimizer state."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .._validation import check_bool, check_int, check_real

__all__ = ["LookaheadState", "lookahead_state", "slow_params"]


class LookaheadState(NamedTuple):
    """State of ``lookahead_state``.

    Attributes:
      count: number of inner steps taken (int32).
      slow: the slow weights, a pytree like the params.
      inner: the inner optimizer's state.
      synced: whether the last update was a synchronisation step (bool scalar).
    """

    count: jax.Array
    slow: Any
    inner: Any
    synced: jax.Array


def lookahead_state(
    inner: optax.GradientTransformation,
    sync_period: int = 5,
    slow_step_size: float = 0.5,
    *,
    reset_inner_state: bool = False,
) -> optax.GradientTransformation:
    r"""Lookahead around any optimizer, with plain params.

    The params the user holds are the fast weights; the slow weights live in
    the state. Every update applies one inner step; after every
    ``sync_period``-th inner step (steps k, 2k, ...):

    .. math::
      \phi \leftarrow \phi + \alpha (\theta - \phi), \qquad \theta \leftarrow \phi

    where ``theta`` are the fast weights after the inner step, ``phi`` the slow
    weights (initialised to the params given to ``init``, as in the paper's
    Algorithm 1, pytorch_ranger and optax) and ``alpha = slow_step_size``. On
    a sync step the update returned moves the params onto the new slow
    weights; the inner state is kept unless ``reset_inner_state``. The sync
    branch runs under ``lax.cond``, so off-sync steps cost one inner step.

    Unlike ``optax.lookahead``, the params need not be wrapped in
    ``LookaheadParams``, so this drops into ``flax.training.train_state.TrainState``
    and ``flax.nnx.Optimizer`` unchanged. torch-optimizer's ``Lookahead``
    differs: its slow weights start at the params after the first inner step
    and it syncs at steps 1, k + 1, 2k + 1, ...

    Args:
      inner: the fast optimizer.
      sync_period: ``k``, inner steps per synchronisation, an integer >= 1.
      slow_step_size: ``alpha``, in (0, 1]; 1 recovers the inner optimizer.
      reset_inner_state: re-initialise the inner state at every sync.

    Returns:
      An ``optax.GradientTransformation`` with state ``LookaheadState``; its
      ``update`` needs ``params``.

    Example:
      >>> import jax.numpy as jnp, optax, optaxtra
      >>> tx = optaxtra.lookahead_state(optax.sgd(1.0), sync_period=2, slow_step_size=0.5)
      >>> params = jnp.zeros(1)
      >>> state = tx.init(params)
      >>> for _ in range(2):
      ...     updates, state = tx.update(jnp.ones(1), state, params)
      ...     params = params + updates
      >>> params  # fast went to -2, slow moved halfway
      Array([-1.], dtype=float32)

    References:
      Zhang, Lucas, Hinton & Ba, "Lookahead Optimizer: k steps forward, 1 step
      back", NeurIPS 2019. https://arxiv.org/abs/1907.08610
    """
    if not isinstance(inner, optax.GradientTransformation):
        raise TypeError(f"inner must be an optax.GradientTransformation, got {type(inner).__name__}.")
    check_int("sync_period", sync_period, 1)
    check_real("slow_step_size", slow_step_size, 0.0, 1.0, low_open=True, allow_schedule=False)
    check_bool("reset_inner_state", reset_inner_state)

    def init_fn(params):
        return LookaheadState(
            count=jnp.zeros([], jnp.int32),
            slow=jax.tree.map(jnp.asarray, params),
            inner=inner.init(params),
            synced=jnp.zeros([], bool),
        )

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("lookahead_state needs the params: call update(updates, state, params).")
        inner_updates, inner_state = inner.update(updates, state.inner, params)
        count = state.count + 1
        synced = count % sync_period == 0

        def sync(_):
            fast = optax.apply_updates(params, inner_updates)
            slow = jax.tree.map(
                lambda s, f: (s + slow_step_size * (f - s)).astype(s.dtype), state.slow, fast
            )
            moved = jax.tree.map(lambda s, p: (s - p).astype(p.dtype), slow, params)
            new_inner = inner.init(slow) if reset_inner_state else inner_state
            return moved, slow, new_inner

        def keep(_):
            return inner_updates, state.slow, inner_state

        new_updates, slow, inner_state = jax.lax.cond(synced, sync, keep, None)
        return new_updates, LookaheadState(count, slow, inner_state, synced)

    return optax.GradientTransformation(init_fn, update_fn)


def slow_params(opt_state: Any) -> Any:
    """The slow weights of the (first) ``LookaheadState`` found in ``opt_state``.

    Args:
      opt_state: any optimizer state containing a ``lookahead_state``.

    Returns:
      The slow weights, a pytree like the params.

    Raises:
      ValueError: if ``opt_state`` holds no ``LookaheadState``.
    """
    found = [
        leaf
        for leaf in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, LookaheadState))
        if isinstance(leaf, LookaheadState)
    ]
    if not found:
        raise ValueError("opt_state holds no LookaheadState: the optimizer has no lookahead.")
    return found[0].slow
