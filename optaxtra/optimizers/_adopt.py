"""ADOPT (Taniguchi et al. 2024): Adam normalising by the previous second moment."""

from __future__ import annotations

from typing import Any

import jax
import optax

from .._hyperparams import ScalarOrSchedule
from .._validation import check_bool, check_real
from ..schedules._delayed import delayed
from ..transforms._adopt import ClipStep, scale_by_adopt
from ..transforms._learning_rate import scale_by_learning_rate
from ..transforms._masking import Mask
from ..transforms._weight_decay import add_decayed_weights

__all__ = ["adopt"]


def adopt(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.9999,
    eps: ScalarOrSchedule = 1e-6,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Mask | None = None,
    *,
    decouple: bool = False,
    decay_first_update: bool = False,
    clip_exponent: float | jax.Array | None = 0.25,
    clip_step: ClipStep = "previous",
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""ADOPT: the momentum of gradients normalised by the previous second moment.

    .. math::
      \tilde g_t = \mathrm{clip}(g_t / \max(\sqrt{v_{t-1}}, \epsilon),\ (t-1)^{1/4}),\quad
      m_t = b_1 m_{t-1} + (1 - b_1) \tilde g_t,\quad
      v_t = b_2 v_{t-1} + (1 - b_2) g_t^2,\\
      p \leftarrow p - \eta_t\, (m_t + \lambda_d\, p)

    The first update only sets ``v_1 = g_1**2`` and moves nothing (see
    ``scale_by_adopt``). Defaults follow the authors' torch-adopt 0.1.0:
    ``weight_decay`` is L2 (added to the gradient, ``decouple=False``); with
    ``decouple=True`` it is decoupled and multiplied by the learning rate
    (``lambda_d``), and skipped on the first update
    (``decay_first_update=False``; pytorch-optimizer 4.1's ``ADOPT`` decays
    there too: ``decay_first_update=True``, ``clip_step="current"``). timm's
    ``Adopt`` is ``clip_exponent=0.333``. ``optax.contrib.adopt`` has no decay
    and equals the default.

    Args:
      learning_rate: ``eta``, a number, array or schedule.
      b1: momentum decay in [0, 1).
      b2: second-moment decay in [0, 1).
      eps: lower bound of ``sqrt(v_{t-1})``, >= 0.
      weight_decay: ``lambda`` >= 0, a number, array or schedule.
      mask: which params decay.
      decouple: decoupled decay (multiplied by the LR) instead of L2.
      decay_first_update: whether decoupled decay applies on the first update.
      clip_exponent: the clip is ``s ** clip_exponent``; None: no clip.
      clip_step: ``"previous"`` (``s = t - 1``) or ``"current"`` (``s = t``).
      mu_dtype: storage dtype of the momentum (``v`` is at least float32).

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      The first step moves nothing; the second is ``-lr * (1 - b1) * clip(g / |g_1|)``.

      >>> import jax.numpy as jnp, optax, optaxtra
      >>> tx = optaxtra.adopt(0.1)
      >>> params = jnp.array([1.0, 2.0])
      >>> state = tx.init(params)
      >>> for g in ([2.0, -2.0], [1.0, -4.0]):
      ...     updates, state = tx.update(jnp.array(g), state, params)
      ...     params = optax.apply_updates(params, updates)
      ...     print(params)
      [1. 2.]
      [0.995 2.01 ]

    References:
      Taniguchi et al., "ADOPT: Modified Adam Can Converge with Any beta2
      with the Optimal Rate", NeurIPS 2024. https://arxiv.org/abs/2411.02853
    """
    check_real("weight_decay", weight_decay, 0.0)
    check_bool("decouple", decouple)
    check_bool("decay_first_update", decay_first_update)
    decoupled = weight_decay if decay_first_update else delayed(weight_decay)
    return optax.chain(
        add_decayed_weights(0.0 if decouple else weight_decay, mask=mask),
        scale_by_adopt(b1, b2, eps, clip_exponent=clip_exponent, clip_step=clip_step, mu_dtype=mu_dtype),
        add_decayed_weights(decoupled if decouple else 0.0, mask=mask),
        scale_by_learning_rate(learning_rate),
    )
