"""StableAdamW (Wortsman et al. 2023): AdamW with per-tensor update clipping."""

from __future__ import annotations

from typing import Any

import optax

from .._hyperparams import ScalarOrSchedule
from .._validation import check_bool, check_real
from ..transforms._learning_rate import scale_by_learning_rate
from ..transforms._masking import Mask
from ..transforms._stable_adam import scale_by_stable_adam
from ..transforms._update_clipping import clip_by_update_rms
from ..transforms._weight_decay import add_decayed_weights

__all__ = ["stable_adamw"]


def stable_adamw(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.99,
    eps: ScalarOrSchedule = 1e-6,
    weight_decay: ScalarOrSchedule = 1e-2,
    mask: Mask | None = None,
    *,
    decouple: bool = True,
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""StableAdamW: AdamW whose learning rate is divided, per tensor, by ``max(1, RMS_t)``.

    .. math::
      \eta_t' = \frac{\eta_t}{\max(1, \sqrt{\operatorname{mean}(g_t^2 / \max(\hat v_t, \epsilon^2))})},\quad
      p \leftarrow p - \eta_t' \left(\frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon} + \lambda p\right)

    per tensor, with the *current* ``v_hat`` (see ``scale_by_stable_adam`` and
    ``clip_by_update_rms``). The decoupled decay is scaled by the same limited
    rate ``eta_t'`` (the paper, torch-optimi 0.3 and pytorch-optimizer 4.1
    agree). Defaults follow torch-optimi (the paper's code base): ``b2 = 0.99``,
    ``eps = 1e-6``, ``weight_decay = 1e-2``; pytorch-optimizer's ``eps`` is
    1e-8. torch-optimi's ``decouple_lr=True`` ("fully decoupled",
    ``p *= 1 - (eta_t' / max_lr) wd``) is ``weight_decay = wd / max_lr``;
    pytorch-optimizer's ``weight_decouple=False`` (L2, the decay inside the
    RMS) is ``decouple=False``.

    Args:
      learning_rate: ``eta``, a number, array or schedule.
      b1: first-moment decay in [0, 1).
      b2: second-moment decay in [0, 1).
      eps: added to ``sqrt(v_hat)``; ``eps**2`` bounds ``v_hat`` in the RMS.
      weight_decay: ``lambda`` >= 0.
      mask: which params decay.
      decouple: decoupled decay (default) or L2.
      mu_dtype: storage dtype of the first moment.

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      A gradient 10 times the first makes ``RMS_2 = 1.404`` (see
      ``clip_by_update_rms``): Adam's second step, ``0.1 * 0.8053``, is divided by it.

      >>> import jax.numpy as jnp, optax, optaxtra
      >>> tx = optaxtra.stable_adamw(0.1, weight_decay=0.0)
      >>> params = jnp.zeros(2)
      >>> state = tx.init(params)
      >>> for g in ([1.0, 1.0], [10.0, 10.0]):
      ...     updates, state = tx.update(jnp.array(g), state, params)
      ...     print(f"{float(updates[0]):.4f}")
      -0.1000
      -0.0574

    References:
      Wortsman et al., "Stable and low-precision training for large-scale
      vision-language models", NeurIPS 2023, Algorithm 2.
      https://arxiv.org/abs/2304.13013
    """
    check_real("weight_decay", weight_decay, 0.0)
    check_bool("decouple", decouple)
    return optax.chain(
        clip_by_update_rms(optax.chain(
            add_decayed_weights(0.0 if decouple else weight_decay, mask=mask),
            scale_by_stable_adam(b1, b2, eps, mu_dtype=mu_dtype),
            add_decayed_weights(weight_decay if decouple else 0.0, mask=mask),
        )),
        scale_by_learning_rate(learning_rate),
    )
