"""Lion: the sign of an interpolated momentum, with decoupled weight decay."""

from __future__ import annotations

from typing import Any

import optax

from .._hyperparams import ScalarOrSchedule
from ..transforms._learning_rate import scale_by_learning_rate
from ..transforms._lion import scale_by_lion
from ..transforms._masking import Mask
from ..transforms._weight_decay import add_decayed_weights

__all__ = ["lion"]


def lion(
    learning_rate: ScalarOrSchedule = 1e-4,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.99,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Mask | None = None,
    *,
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""Lion (EvoLved Sign Momentum), with decoupled weight decay multiplied by the LR.

    .. math::
      u_t = \operatorname{sign}(b_1 m_{t-1} + (1 - b_1) g_t),\quad
      m_t = b_2 m_{t-1} + (1 - b_2) g_t,\quad
      p \leftarrow p - \eta_t (u_t + \lambda p)

    Defaults follow the authors' code and ``lion-pytorch``: ``learning_rate=1e-4``,
    ``b1=0.9``, ``b2=0.99``, ``weight_decay=0`` (``optax.lion`` defaults to
    1e-3). The decay is multiplied by the learning rate, as in both
    references. ``lion-pytorch``'s ``decoupled_weight_decay=True`` divides the
    decay by the initial learning rate, i.e. a decay independent of the LR:
    ``chain(scale_by_lion(), scale_by_learning_rate(lr), decoupled_weight_decay(wd))``.

    Args:
      learning_rate: ``eta``, a number, array or schedule.
      b1: weight of the momentum in the step, in [0, 1).
      b2: decay of the momentum, in [0, 1).
      weight_decay: ``lambda`` >= 0, a number, array or schedule.
      mask: which params decay.
      mu_dtype: storage dtype of the momentum (None: the params' dtype, but
        float32 for half-precision params; see ``scale_by_lion``).

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.lion(0.1, weight_decay=0.5)
      >>> params = jnp.array([1.0, -2.0])
      >>> updates, _ = tx.update(jnp.array([3.0, 0.0]), tx.init(params), params)
      >>> print([f"{u:.5f}" for u in updates.tolist()])  # -0.1 * (sign(g) + 0.5 * p)
      ['-0.15000', '0.10000']

    References:
      Chen et al., "Symbolic Discovery of Optimization Algorithms", NeurIPS 2023.
      https://arxiv.org/abs/2302.06675
    """
    return optax.chain(
        scale_by_lion(b1, b2, mu_dtype=mu_dtype),
        add_decayed_weights(weight_decay, mask=mask),
        scale_by_learning_rate(learning_rate),
    )
