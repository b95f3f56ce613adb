"""``averaged_params``: the averaged weights an optimizer state keeps, for evaluation."""

from __future__ import annotations

from typing import Any

from .._trees import find_states

from ._ema import EmaAveragingState
from ._swa import SwaAveragingState

__all__ = ["averaged_params"]

_AVERAGING_STATES = (EmaAveragingState, SwaAveragingState)


def averaged_params(opt_state: Any) -> Any:
    """The averaged weights of the outermost ``ema_averaging``/``swa_averaging`` in a state.

    Searches any pytree: an optimizer state (also when the averaging wraps
    ``lookahead_state``/``ranger``, sits inside an ``optax.chain`` or inside
    Lookahead's inner optimizer), or a whole Flax ``TrainState``. Jittable.
    Of two averages side by side (``optax.chain(ema, swa)``), the first in
    tree order; of nested ones, the outer.

    Args:
      opt_state: an optimizer state, or a pytree holding one.

    Returns:
      The averaged weights, a pytree like the params (float32 for
      half-precision leaves).

    Raises:
      ValueError: if ``opt_state`` holds no averaging state.

    Example:
      >>> import jax.numpy as jnp, optaxtra
      >>> from flax.training.train_state import TrainState
      >>> tx = optaxtra.ema_averaging(optaxtra.ranger(0.1), decay=0.9)
      >>> state = TrainState.create(apply_fn=None, params={"w": jnp.zeros(2)}, tx=tx)
      >>> state = state.apply_gradients(grads={"w": jnp.ones(2)})
      >>> state.params["w"], optaxtra.averaged_params(state)["w"]  # params stay plain
      (Array([-0.1, -0.1], dtype=float32), Array([-0.1, -0.1], dtype=float32))
    """
    found = find_states(opt_state, _AVERAGING_STATES)
    if found:
        return found[0][1].average
    raise ValueError(
        "opt_state holds no averaged weights: wrap the optimizer in "
        "optaxtra.ema_averaging or optaxtra.swa_averaging."
    )
