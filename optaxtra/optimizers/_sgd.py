"""Stochastic gradient descent with (Nesterov) momentum and L2."""

from __future__ import annotations

import jax
import optax

from .._hyperparams import ScalarOrSchedule
from ..transforms._learning_rate import scale_by_learning_rate
from ..transforms._masking import Mask
from ..transforms._weight_decay import add_decayed_weights
from ._chain import optional_momentum, unless_zero

__all__ = ["sgd"]


def sgd(
    learning_rate: ScalarOrSchedule,
    momentum: float | jax.Array = 0.0,
    nesterov: bool = False,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Mask | None = None,
) -> optax.GradientTransformation:
    r"""SGD with momentum, as PyTorch's ``SGD`` (dampening 0).

    .. math::
      g \leftarrow g + \lambda p,\quad b_t = \mu b_{t-1} + g \;(b_1 = g),\quad
      p \leftarrow p - \eta_t \,(g + \mu b_t \text{ if nesterov else } b_t)

    Args:
      learning_rate: ``eta``, a number, array or schedule.
      momentum: ``mu`` in [0, 1), a number or an array; 0 (the number) for
        plain SGD, without a momentum buffer.
      nesterov: Nesterov momentum (needs ``momentum > 0``).
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
        unless_zero(weight_decay, lambda: add_decayed_weights(weight_decay, mask=mask)),
        optional_momentum(momentum, nesterov),
        scale_by_learning_rate(learning_rate),
    )
