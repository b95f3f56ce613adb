"""Stochastic gradient descent with (Nesterov) momentum and L2."""

from __future__ import annotations

from typing import Any

import jax
import optax

from .._hyperparams import ScalarOrSchedule
from ..transforms._learning_rate import scale_by_learning_rate
from ..transforms._masking import Mask
from ..transforms._momentum import trace
from ..transforms._weight_decay import add_decayed_weights

__all__ = ["sgd"]


def sgd(
    learning_rate: ScalarOrSchedule,
    momentum: float | jax.Array | None = None,
    nesterov: bool = False,
    accumulator_dtype: Any = None,
    *,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Mask | None = None,
) -> optax.GradientTransformation:
    r"""SGD with momentum, as PyTorch's ``SGD`` (dampening 0).

    .. math::
      g \leftarrow g + \lambda p,\quad b_t = \mu b_{t-1} + g \;(b_1 = g),\quad
      p \leftarrow p - \eta_t \,(g + \mu b_t \text{ if nesterov else } b_t)

    Args:
      learning_rate: ``eta``, a number, array or schedule.
      momentum: ``mu`` in [0, 1), a number or an array; None (the default,
        as optax's ``sgd``) for plain SGD, without a momentum buffer. A
        momentum of 0 keeps the buffer, so ``optax.inject_hyperparams`` can
        make it an array and sweep it.
      nesterov: Nesterov momentum (needs a momentum).
      accumulator_dtype: storage dtype of the momentum buffer; None for the
        params' dtype (float32 for float16 params).
      weight_decay: L2 coefficient ``lambda`` >= 0.
      mask: which params get the L2 term.

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      As PyTorch, the momentum buffer starts at the first gradient (no
      dampening): the steps are ``-lr * g``, then ``-lr * (0.9 g + g)``.

      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.sgd(0.1, momentum=0.9)
      >>> params = jnp.zeros(2)
      >>> state = tx.init(params)
      >>> for _ in range(2):
      ...     updates, state = tx.update(jnp.array([1.0, 2.0]), state, params)
      ...     print(jnp.round(updates, 6))
      [-0.1 -0.2]
      [-0.19 -0.38]

    References:
      Sutskever et al., "On the importance of initialization and momentum in
      deep learning", ICML 2013. http://proceedings.mlr.press/v28/sutskever13.html
    """
    return optax.chain(
        add_decayed_weights(weight_decay, mask=mask),
        trace(momentum, nesterov, accumulator_dtype=accumulator_dtype),
        scale_by_learning_rate(learning_rate),
    )
