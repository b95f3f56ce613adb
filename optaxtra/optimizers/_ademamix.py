"""AdEMAMix (Pagliardini et al. 2024) and simplified AdEMAMix (Morwani et al. 2025)."""

from __future__ import annotations

from typing import Any

import optax

from .._hyperparams import ScalarOrSchedule, resolve
from .._validation import check_bool, check_real
from ..schedules._ademamix import HalfLifeWarmup
from ..transforms._ademamix import scale_by_ademamix
from ..transforms._learning_rate import scale_by_learning_rate
from ..transforms._masking import Mask
from ..transforms._simplified_ademamix import scale_by_simplified_ademamix
from ..transforms._weight_decay import add_decayed_weights

__all__ = ["ademamix", "simplified_ademamix", "on_adam_scale"]


def ademamix(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    b3: ScalarOrSchedule | HalfLifeWarmup = 0.9999,
    alpha: ScalarOrSchedule = 5.0,
    eps: ScalarOrSchedule = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Mask | None = None,
    *,
    decouple: bool = True,
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""AdEMAMix: Adam whose numerator adds ``alpha`` times a slow EMA of the gradients.

    .. math::
      u_t = \frac{m_1 / (1 - b_1^t) + \alpha_t m_2}{\sqrt{v / (1 - b_2^t)} + \epsilon},\quad
      m_2 \leftarrow b_{3,t} m_2 + (1 - b_{3,t}) g,\quad
      p \leftarrow p - \eta_t (u_t + \lambda p)

    (see ``scale_by_ademamix``). The paper warms ``alpha`` and ``b3`` up over
    ``T`` steps (``T`` = the run's length): pass
    ``alpha=ademamix_alpha_warmup(alpha, T)`` and
    ``b3=half_life_warmup(b1, b3, T)``; their defaults read the paper's
    ``t`` and follow the authors' PyTorch code. ``weight_decay`` is decoupled
    and multiplied by the LR (the paper, the authors' code, optax.contrib);
    ``decouple=False`` adds it to the gradient (L2, pytorch-optimizer 4.1's
    default ``weight_decouple=False``). ``alpha`` defaults to 5 (optax, the
    authors' optax code, pytorch-optimizer; their PyTorch code has 2).

    Args:
      learning_rate: ``eta``, a number, array or schedule.
      b1: fast-EMA decay in [0, 1).
      b2: second-moment decay in [0, 1).
      b3: slow-EMA decay in [0, 1), a schedule or a ``half_life_warmup``.
      alpha: slow-EMA weight >= 0, a number, array or schedule.
      eps: added to ``sqrt(v_hat)``.
      weight_decay: ``lambda`` >= 0.
      mask: which params decay.
      decouple: decoupled decay (default) or L2.
      mu_dtype: storage dtype of both EMAs.

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      The first step is ``-lr (1 + alpha (1 - b3)) sign(g)``.

      >>> import jax.numpy as jnp, optax, optaxtra
      >>> tx = optaxtra.ademamix(0.1, b3=0.9, alpha=5.0)
      >>> params = jnp.array([1.0, 2.0])
      >>> updates, _ = tx.update(jnp.array([3.0, -1.0]), tx.init(params), params)
      >>> print(optax.apply_updates(params, updates))
      [0.85 2.15]

    References:
      Pagliardini, Ablin & Grangier, "The AdEMAMix Optimizer: Better, Faster,
      Older", ICLR 2025. https://arxiv.org/abs/2409.03137
    """
    check_real("weight_decay", weight_decay, 0.0)
    check_bool("decouple", decouple)
    return optax.chain(
        add_decayed_weights(0.0 if decouple else weight_decay, mask=mask),
        scale_by_ademamix(b1, b2, b3, alpha, eps, mu_dtype=mu_dtype),
        add_decayed_weights(weight_decay if decouple else 0.0, mask=mask),
        scale_by_learning_rate(learning_rate),
    )


def simplified_ademamix(
    learning_rate: ScalarOrSchedule = 1e-4,
    b1: ScalarOrSchedule | HalfLifeWarmup = 0.99,
    b2: ScalarOrSchedule = 0.95,
    alpha: ScalarOrSchedule = 0.0,
    eps: ScalarOrSchedule = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Mask | None = None,
    *,
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""Simplified AdEMAMix: one momentum sum ``m = b1 m + g`` and ``alpha g`` over Adam's denominator.

    .. math::
      p \leftarrow p - \eta_t \left(\frac{m_t + \alpha g_t}{\sqrt{\hat v_t} + \epsilon} + \lambda p\right)

    (see ``scale_by_simplified_ademamix``). Defaults follow the authors' code
    (DepenM/Simplified-AdEMAMix: ``b1 = 0.99``, ``b2 = 0.95``, ``alpha = 0``,
    no first-moment correction) and ``optax.contrib.simplified_ademamix``; the
    learning rate defaults to pytorch-optimizer's 1e-4, since ``m`` sums up to
    ``1 / (1 - b1)`` gradients. Their ``b1`` warm-up is
    ``b1=half_life_warmup(0.9, b1, T)``. ``weight_decay`` is decoupled and
    multiplied by the LR.

    Args:
      learning_rate: ``eta``, a number, array or schedule.
      b1: momentum decay in [0, 1), a schedule or a ``half_life_warmup``.
      b2: second-moment decay in [0, 1).
      alpha: weight of the current gradient >= 0.
      eps: added to ``sqrt(v_hat)``.
      weight_decay: ``lambda`` >= 0.
      mask: which params decay.
      mu_dtype: storage dtype of ``m``; ``jnp.int8`` (or ``blockwise_int8(...)``)
        stores ``m`` and ``v`` block-wise in 8 bits.

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      >>> import jax.numpy as jnp, optax, optaxtra
      >>> tx = optaxtra.simplified_ademamix(0.1, alpha=1.0)
      >>> params = jnp.array([1.0, 2.0])
      >>> updates, _ = tx.update(jnp.array([3.0, -1.0]), tx.init(params), params)
      >>> print(optax.apply_updates(params, updates))  # -0.1 * (1 + 1) sign(g)
      [0.8 2.2]

    References:
      Morwani, Vyas, Kakade et al., "Connections between Schedule-Free
      Optimizers, AdEMAMix, and Accelerated SGD Variants", 2025.
      https://arxiv.org/abs/2502.02431
    """
    return optax.chain(
        scale_by_simplified_ademamix(b1, b2, alpha, eps, mu_dtype=mu_dtype),
        add_decayed_weights(weight_decay, mask=mask),
        scale_by_learning_rate(learning_rate),
    )


def on_adam_scale(learning_rate: ScalarOrSchedule, b1: float = 0.99) -> ScalarOrSchedule:
    """``learning_rate * (1 - b1)``: simplified AdEMAMix's rate for an Adam rate (schedules too).

    With ``alpha = 0`` simplified AdEMAMix is Adam with its learning rate
    multiplied by ``1 / (1 - b1)`` (Morwani et al. 2025); ``OPTIMIZERS`` gives
    it rates on Adam's scale through this.
    """
    if callable(learning_rate):
        return lambda count: resolve(learning_rate, count) * (1 - b1)
    return learning_rate * (1 - b1)
