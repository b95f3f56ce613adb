"""Schedule-Free AdamW, SGD and RAdam: ``schedule_free`` around a momentum-free direction."""

from __future__ import annotations

from typing import Any

import jax
import optax

from .._hyperparams import ScalarOrSchedule
from ..schedules._rectified_warmup import rectified_warmup
from ..transforms._adam import scale_by_adam
from ..transforms._masking import Mask
from ..transforms._schedule_free import schedule_free
from ..transforms._weight_decay import add_decayed_weights

__all__ = ["schedule_free_adamw", "schedule_free_radam", "schedule_free_sgd"]


def schedule_free_adamw(
    learning_rate: ScalarOrSchedule = 0.0025,
    b1: float | jax.Array = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Mask | None = None,
    *,
    warmup_steps: int = 0,
    r: float = 0.0,
    weight_lr_power: float = 2.0,
    z_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""Schedule-Free AdamW (the authors' ``AdamWScheduleFree``).

    .. math::
      d_t = g_t / (\sqrt{\hat v_t} + \epsilon) + \lambda y_t

    (the gradient and the decay both taken at ``y``, the params), then
    ``schedule_free``'s interpolation and averaging with ``b1``. Defaults
    are the authors': ``learning_rate=0.0025``, no decay, no warm-up,
    ``r=0``, ``weight_lr_power=2``. Evaluate at
    ``optaxtra.schedule_free_eval_params(state, params)``.

    Args:
      learning_rate: ``gamma``, a number, array or schedule.
      b1: the interpolation weight in (0, 1) (the authors' ``betas[0]``).
      b2: second-moment decay in [0, 1).
      eps: added to ``sqrt(v_hat)``.
      weight_decay: ``lambda`` >= 0, added to the direction at ``y``.
      mask: which params decay.
      warmup_steps: linear LR warm-up steps (it scales the averaging weights too).
      r: the power of ``t`` in the averaging weights.
      weight_lr_power: the power of the largest LR in the averaging weights.
      z_dtype: storage dtype of ``z``.

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.schedule_free_adamw(0.1)
      >>> params = jnp.array([1.0, -2.0])
      >>> updates, state = tx.update(jnp.array([3.0, -1.0]), tx.init(params), params)
      >>> print(jnp.round(updates, 6))  # c_1 = 1: y_1 = z_1 = y_0 - lr * sign(g)
      [-0.1  0.1]

    References:
      Defazio et al., "The Road Less Scheduled", NeurIPS 2024.
      https://arxiv.org/abs/2405.15682
    """
    return schedule_free(
        optax.chain(scale_by_adam(0.0, b2, eps), add_decayed_weights(weight_decay, mask=mask)),
        learning_rate, b1, warmup_steps=warmup_steps, r=r, weight_lr_power=weight_lr_power, z_dtype=z_dtype,
    )


def schedule_free_sgd(
    learning_rate: ScalarOrSchedule = 1.0,
    b1: float | jax.Array = 0.9,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Mask | None = None,
    *,
    warmup_steps: int = 0,
    r: float = 0.0,
    weight_lr_power: float = 2.0,
    z_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""Schedule-Free SGD (the authors' ``SGDScheduleFree``): ``d_t = g_t + \lambda y_t``.

    Args:
      learning_rate: ``gamma`` (the authors' default 1.0), a number, array or schedule.
      b1: the interpolation weight in (0, 1) (the authors' ``momentum``).
      weight_decay: ``lambda`` >= 0 (L2, at ``y``).
      mask: which params decay.
      warmup_steps: linear LR warm-up steps.
      r: the power of ``t`` in the averaging weights.
      weight_lr_power: the power of the largest LR in the averaging weights.
      z_dtype: storage dtype of ``z``.

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.schedule_free_sgd(0.5)
      >>> params = jnp.array([1.0, -2.0])
      >>> updates, state = tx.update(jnp.array([3.0, -1.0]), tx.init(params), params)
      >>> updates  # c_1 = 1: y_1 = z_1 = y_0 - lr * g
      Array([-1.5,  0.5], dtype=float32)

    References:
      Defazio et al., "The Road Less Scheduled", NeurIPS 2024.
      https://arxiv.org/abs/2405.15682
    """
    return schedule_free(
        add_decayed_weights(weight_decay, mask=mask),
        learning_rate, b1, warmup_steps=warmup_steps, r=r, weight_lr_power=weight_lr_power, z_dtype=z_dtype,
    )


def schedule_free_radam(
    learning_rate: ScalarOrSchedule = 0.0025,
    b1: float | jax.Array = 0.9,
    b2: float = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Mask | None = None,
    *,
    r: float = 0.0,
    weight_lr_power: float = 2.0,
    z_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""Schedule-Free RAdam (the authors' ``RAdamScheduleFree``): Schedule-Free AdamW at a rectified LR.

    The learning rate is ``rectified_warmup(learning_rate, b2)``: RAdam's
    ``r_t``, 0 while ``rho_t <= 4`` (the authors' default
    ``silent_sgd_phase=True``; their ``False``, an SGD step in those first
    steps, is not offered). No other warm-up is needed.

    Args:
      learning_rate: ``gamma``, a number, array or schedule.
      b1: the interpolation weight in (0, 1).
      b2: second-moment decay in [0, 1), a number (``r_t`` is computed from it).
      eps: added to ``sqrt(v_hat)``.
      weight_decay: ``lambda`` >= 0, added to the direction at ``y``.
      mask: which params decay.
      r: the power of ``t`` in the averaging weights.
      weight_lr_power: the power of the largest LR in the averaging weights.
      z_dtype: storage dtype of ``z``.

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      The first four steps (``rho_t <= 4``) move nothing:

      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.schedule_free_radam(0.1)
      >>> params = jnp.array([1.0, -2.0])
      >>> updates, state = tx.update(jnp.array([3.0, -1.0]), tx.init(params), params)
      >>> updates
      Array([0., 0.], dtype=float32)

    References:
      Defazio et al., "The Road Less Scheduled", NeurIPS 2024.
      https://arxiv.org/abs/2405.15682
    """
    return schedule_free(
        optax.chain(scale_by_adam(0.0, b2, eps), add_decayed_weights(weight_decay, mask=mask)),
        rectified_warmup(learning_rate, b2), b1, r=r, weight_lr_power=weight_lr_power, z_dtype=z_dtype,
    )
