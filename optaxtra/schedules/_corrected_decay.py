"""``corrected_weight_decay``: AdamC's decay, which shrinks with the learning rate (Defazio 2025)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from .._hyperparams import ScalarOrSchedule, resolve
from .._validation import check_real

__all__ = ["corrected_weight_decay"]


def corrected_weight_decay(
    weight_decay: ScalarOrSchedule,
    learning_rate: ScalarOrSchedule,
    max_lr: float | jax.Array | None = None,
) -> optax.Schedule:
    r"""The decay schedule ``lambda_t = weight_decay_t * lr_t / max_lr`` for ``add_decayed_weights``.

    Placed before ``scale_by_learning_rate(learning_rate)``, the decay applied
    at update ``t`` is ``lr_t * lambda_t = weight_decay * lr_t**2 / max_lr``:
    Defazio's corrected weight decay (AdamC), which keeps the steady-state
    norm of normalised layers' weights constant as the learning rate is
    annealed. ``lr_t`` is the learning rate of the same update (both are read
    at the step count), as pytorch-optimizer 4.1's ``AdamC`` and timm's
    ``corrected_weight_decay`` read ``group["lr"]`` when stepping; their
    ``max_lr`` is the learning rate the optimizer was constructed with, which
    is this ``max_lr``'s default for a number or an array. A schedule needs
    ``max_lr`` (its peak), as does ``optax.inject_hyperparams`` (which would
    otherwise rebuild ``max_lr`` from the current rate).

    Args:
      weight_decay: ``weight_decay`` >= 0: a number, array or schedule.
      learning_rate: the chain's learning rate: a number, array or schedule.
      max_lr: the peak learning rate, > 0; None: ``learning_rate`` itself
        (a number or array only).

    Returns:
      A schedule ``count -> float32 lambda_t``.

    Raises:
      ValueError: ``max_lr`` is None and ``learning_rate`` is a schedule.

    Example:
      At half the peak rate the decay per unit of rate is halved, so the
      decay applied (``lr_t * lambda_t``) is a quarter of the peak's.

      >>> import jax.numpy as jnp, optax, optaxtra
      >>> lr = optax.linear_schedule(1e-2, 5e-3, 10)
      >>> schedule = optaxtra.corrected_weight_decay(0.1, lr, max_lr=1e-2)
      >>> print(f"{float(schedule(jnp.int32(0))):.4f} {float(schedule(jnp.int32(10))):.4f}")
      0.1000 0.0500
    """
    check_real("weight_decay", weight_decay, 0.0)
    check_real("learning_rate", learning_rate, 0.0)
    if max_lr is None:
        if callable(learning_rate):
            raise ValueError(
                "corrected_weight_decay needs max_lr (the peak learning rate) when learning_rate "
                "is a schedule: the decay is weight_decay * lr_t**2 / max_lr."
            )
        max_lr = learning_rate
    check_real("max_lr", max_lr, 0.0, low_open=True, allow_schedule=False)

    def schedule(count: jax.Array) -> jax.Array:
        ratio = resolve(learning_rate, count) / jnp.asarray(max_lr, jnp.float32)
        return resolve(weight_decay, count) * ratio

    return schedule
