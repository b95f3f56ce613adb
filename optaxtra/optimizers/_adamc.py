"""AdamC (Defazio 2025): AdamW whose decay follows the learning-rate schedule squared."""

from __future__ import annotations

from typing import Any

import jax
import optax

from .._hyperparams import ScalarOrSchedule
from ..schedules._corrected_decay import corrected_weight_decay
from ..transforms._adam import scale_by_adam
from ..transforms._learning_rate import scale_by_learning_rate
from ..transforms._masking import Mask
from ..transforms._moments import EpsPlacement
from ..transforms._weight_decay import add_decayed_weights

__all__ = ["adamc"]


def adamc(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 0.0,
    weight_decay: ScalarOrSchedule = 1e-2,
    mask: Mask | None = None,
    *,
    max_lr: float | jax.Array | None = None,
    eps_placement: EpsPlacement = "corrected",
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""AdamC: AdamW with corrected weight decay, ``lr_t**2 / max_lr`` instead of ``lr_t``.

    .. math::
      p \leftarrow p - \eta_t\, \hat m_t / (\sqrt{\hat v_t} + \epsilon)
        - \frac{\eta_t^2}{\eta_{max}} \lambda p

    The decay is ``corrected_weight_decay(weight_decay, learning_rate,
    max_lr)`` fed to ``add_decayed_weights`` (see there for which step reads
    which rate). With a constant learning rate it is AdamW. Defazio applies it
    to the layers followed by a normalisation: pass ``mask`` for those (and
    chain a plain decay for the rest if wanted), as pytorch-optimizer's
    ``normalized=True`` groups; timm's ``corrected_weight_decay=True`` applies
    it to a whole group (``mask=None``). pytorch-optimizer's ``AdamC`` adds
    ``eps`` to ``sqrt(v)`` before the bias correction
    (``eps_placement="uncorrected"``; it also adds 1e-15 to ``v`` under the
    root, below float32's resolution of any ``v`` here); timm's, like
    PyTorch's ``AdamW``, after (the default).

    Args:
      learning_rate: ``eta_t``, a number, array or schedule.
      b1: first-moment decay in [0, 1).
      b2: second-moment decay in [0, 1).
      eps: added to ``sqrt(v_hat)``.
      eps_root: added to ``v_hat`` under the square root.
      weight_decay: ``lambda`` >= 0.
      mask: which params decay.
      max_lr: ``eta_max`` > 0; None: ``learning_rate`` (a schedule needs it).
      eps_placement: ``"corrected"`` (on ``sqrt(v_hat)``) or ``"uncorrected"``
        (on ``sqrt(v)``); see ``adam``.
      mu_dtype: storage dtype of the first moment.
      nu_dtype: storage dtype of the second moment (see ``scale_by_adam``).

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      At half the peak rate the decay is ``0.5**2 / 1.0 * 0.5 = 0.125`` of p (AdamW's: 0.25).

      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.adamc(0.5, weight_decay=0.5, max_lr=1.0)
      >>> params = jnp.array([1.0, -2.0])
      >>> updates, _ = tx.update(jnp.zeros(2), tx.init(params), params)
      >>> print(updates)
      [-0.125  0.25 ]

    References:
      Defazio, "Why Gradients Rapidly Increase Near the End of Training", 2025.
      https://arxiv.org/abs/2506.02285
    """
    return optax.chain(
        scale_by_adam(b1, b2, eps, eps_root, eps_placement=eps_placement, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
        add_decayed_weights(corrected_weight_decay(weight_decay, learning_rate, max_lr), mask=mask),
        scale_by_learning_rate(learning_rate),
    )
