"""Lookahead around any optimizer."""

from __future__ import annotations

import optax

from ..transforms._lookahead import lookahead_state

__all__ = ["lookahead"]


def lookahead(
    inner: optax.GradientTransformation, sync_period: int = 5, slow_step_size: float = 0.5
) -> optax.GradientTransformation:
    r"""Lookahead (Zhang et al. 2019) around ``inner``, with plain params.

    The optimizer's name for ``lookahead_state(inner, sync_period,
    slow_step_size)``: ``k = 5`` fast steps, then the slow weights move
    ``alpha = 0.5`` of the way to the fast ones and the fast weights reset to
    them. The paper's Algorithm 1 semantics; see ``lookahead_state``.

    Args:
      inner: the fast optimizer, e.g. ``optaxtra.adam(1e-3)``.
      sync_period: ``k``, an integer >= 1.
      slow_step_size: ``alpha`` in [0, 1] (see ``lookahead_state``).

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      SGD with ``lr=1`` moves the fast weights by ``-g`` a step; every second
      step the slow weights move halfway to them and the params jump onto the
      slow weights.

      >>> import jax.numpy as jnp, optax, optaxtra
      >>> tx = optaxtra.lookahead(optaxtra.sgd(1.0), sync_period=2)
      >>> params = jnp.zeros(2)
      >>> state = tx.init(params)
      >>> for step in range(1, 5):
      ...     updates, state = tx.update(jnp.array([1.0, 2.0]), state, params)
      ...     params = optax.apply_updates(params, updates)
      ...     print(step, params, optaxtra.slow_params(state))
      1 [-1. -2.] [0. 0.]
      2 [-1. -2.] [-1. -2.]
      3 [-2. -4.] [-1. -2.]
      4 [-2. -4.] [-2. -4.]

    References:
      Zhang, Lucas, Hinton & Ba, "Lookahead Optimizer: k steps forward, 1 step
      back", NeurIPS 2019. https://arxiv.org/abs/1907.08610
    """
    return lookahead_state(inner, sync_period, slow_step_size)
