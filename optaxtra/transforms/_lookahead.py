"""``lookahead_state``: Lookahead with the slow weights kept in the optimizer state."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .._diagnostics import register_diagnostics
from .._trees import find_states
from .._tree_checks import check_state_type, check_tree_matches
from .._validation import check_bool, check_int, check_real
from .._xla import increment, overwrite
from ._lookahead_sync import sync

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
    weights; the inner state is kept unless ``reset_inner_state``. Writing
    the slow weights runs under ``lax.cond``, on sync steps only; off-sync
    steps cost one inner step and one read of the slow weights, with no
    param-sized temporary (see ``_lookahead_sync``).

    Unlike ``optax.lookahead``, the params need not be wrapped in
    ``LookaheadParams``, so this drops into ``flax.training.train_state.TrainState``
    and ``flax.nnx.Optimizer`` unchanged. torch-optimizer's ``Lookahead``
    differs: its slow weights start at the params after the first inner step
    and it syncs at steps 1, k + 1, 2k + 1, ... (to reproduce it, take one
    inner step, then start from a ``LookaheadState`` whose slow weights are the
    new params and whose inner state is the one after that step).

    Args:
      inner: the fast optimizer.
      sync_period: ``k``, inner steps per synchronisation, an integer >= 1
        (or an integer array, as ``optax.inject_hyperparams`` passes it).
      slow_step_size: ``alpha``, in [0, 1], a number or an array. 1 recovers
        the inner optimizer (Lookahead off, the state unchanged). 0 is
        accepted, as optax's ``lookahead`` accepts it, with optax's meaning:
        the slow weights never move and every sync returns the params to them.
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
    check_int("sync_period", sync_period, 1, allow_array=True)
    check_real("slow_step_size", slow_step_size, 0.0, 1.0, allow_schedule=False)
    check_bool("reset_inner_state", reset_inner_state)

    def init_fn(params):
        return LookaheadState(
            count=jnp.zeros([], jnp.int32),
            # A copy: the caller may donate the params and the state together.
            slow=jax.tree.map(lambda p: jnp.array(p, copy=True), params),
            inner=inner.init(params),
            synced=jnp.zeros([], bool),
        )

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("lookahead_state needs the params: call update(updates, state, params).")
        check_state_type(state, LookaheadState, "lookahead_state")
        check_tree_matches(updates, state.slow, piece="lookahead_state", against="the slow weights")
        check_tree_matches(
            params, state.slow, piece="lookahead_state", what="the params", against="the slow weights"
        )
        inner_updates, inner_state = inner.update(updates, state.inner, params)
        count = increment(state.count)
        synced = count % sync_period == 0

        reinit = inner.init if reset_inner_state else None
        new_updates, slow, inner_state = sync(
            synced, params, inner_updates, state.slow, inner_state, slow_step_size, reinit
        )
        return new_updates, LookaheadState(count, slow, inner_state, overwrite(state.synced, synced))

    return optax.GradientTransformation(init_fn, update_fn)


def slow_params(opt_state: Any) -> Any:
    """The slow weights of the (first) ``LookaheadState`` found in ``opt_state``.

    Args:
      opt_state: any optimizer state containing a ``lookahead_state``.

    Returns:
      The slow weights, a pytree like the params.

    Raises:
      ValueError: if ``opt_state`` holds no ``LookaheadState``.

    Example:
      The Lookahead may sit anywhere in a chain. Between syncs the params are
      the fast weights and the slow weights wait:

      >>> import jax.numpy as jnp, optax, optaxtra
      >>> tx = optax.chain(optax.clip(1.0), optaxtra.lookahead(optax.sgd(1.0), sync_period=2))
      >>> params = jnp.zeros(2)
      >>> state = tx.init(params)
      >>> updates, state = tx.update(jnp.array([3.0, 0.5]), state, params)  # clipped to [1, 0.5]
      >>> print(optax.apply_updates(params, updates), optaxtra.slow_params(state))
      [-1.  -0.5] [0. 0.]
    """
    found = find_states(opt_state, LookaheadState)
    if not found:
        raise ValueError("opt_state holds no LookaheadState: the optimizer has no lookahead.")
    return found[0][1].slow


register_diagnostics(LookaheadState, lambda s: {"lookahead/synced": s.synced, "lookahead/step": s.count})
