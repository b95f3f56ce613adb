"""Cautious optimizers: an optimizer's direction, masked where it disagrees with the gradient."""

from __future__ import annotations

from typing import Any

import jax
import optax

from .._hyperparams import ScalarOrSchedule
from ..transforms._adam import scale_by_adam
from ..transforms._cautious import Rescale, cautious
from ..transforms._learning_rate import scale_by_learning_rate
from ..transforms._lion import scale_by_lion
from ..transforms._masking import Mask
from ..transforms._weight_decay import add_decayed_weights

__all__ = ["cautious_adamw", "cautious_lion"]


def cautious_adamw(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    weight_decay: ScalarOrSchedule = 1e-2,
    mask: Mask | None = None,
    *,
    rescale: Rescale = "mean",
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""C-AdamW: AdamW whose Adam direction is masked where it disagrees with the gradient.

    .. math::
      d = \hat m_t / (\sqrt{\hat v_t} + \epsilon),\quad \phi = [d\, g > 0],\quad
      p \leftarrow p - \eta_t \big(d\, \phi / \max(\mathrm{mean}(\phi), 10^{-3}) + \lambda p\big)

    per leaf (timm's ``cadamw``, the authors' rule). The decoupled decay
    (multiplied by the learning rate, as PyTorch's ``AdamW``) is not masked.

    Args:
      learning_rate: ``eta``, a number, array or schedule.
      b1: first-moment decay in [0, 1).
      b2: second-moment decay in [0, 1).
      eps: added to ``sqrt(v_hat)``.
      weight_decay: ``lambda`` >= 0, multiplied by the learning rate.
      mask: which params decay.
      rescale: ``"mean"`` (timm) or ``"count_plus_one"`` (pytorch-optimizer's
        ``cautious=True``); see ``cautious``.
      mu_dtype: storage dtype of the first moment.
      nu_dtype: storage dtype of the second moment (see ``scale_by_adam``).

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      On the first step Adam's direction is ``sign(g)``, which always agrees:

      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.cautious_adamw(0.1, weight_decay=0.0)
      >>> params = jnp.array([1.0, -2.0])
      >>> updates, _ = tx.update(jnp.array([3.0, -1.0]), tx.init(params), params)
      >>> updates
      Array([-0.1,  0.1], dtype=float32)

    References:
      Liang, Chen, Liu & Liu, "Cautious Optimizers: Improving Training with
      One Line of Code", 2024. https://arxiv.org/abs/2411.16085
    """
    return optax.chain(
        cautious(
            scale_by_adam(b1, b2, eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
            orientation="direction",
            rescale=rescale,
        ),
        add_decayed_weights(weight_decay, mask=mask),
        scale_by_learning_rate(learning_rate),
    )


def cautious_lion(
    learning_rate: ScalarOrSchedule = 1e-4,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.99,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Mask | None = None,
    *,
    factor: float | jax.Array = 0.0,
    floor: float = 1e-3,
    rescale: Rescale = "mean",
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""C-Lion: Lion whose sign step is masked where it disagrees with the gradient.

    .. math::
      u = \operatorname{sign}(b_1 m_{t-1} + (1 - b_1) g_t),\quad
      w = [u g > 0] + f [u g \le 0],\quad
      p \leftarrow p - \eta_t \big(u\, w / \max(\mathrm{mean}(w), \text{floor}) + \lambda p\big)

    per leaf, as lion-pytorch's ``cautious_lion.Lion`` (``cautious_factor=f``,
    whose floor is 1e-5; the authors' and timm's is 1e-3, the default here).
    The decay, multiplied by the learning rate, is not masked
    (lion-pytorch's ``cautious_wd=False``).

    Args:
      learning_rate: ``eta``, a number, array or schedule.
      b1: weight of the momentum in the step, in [0, 1).
      b2: decay of the momentum, in [0, 1).
      weight_decay: ``lambda`` >= 0, multiplied by the learning rate.
      mask: which params decay.
      factor: what the disagreeing entries are multiplied by, in [0, 1].
      floor: the least ``mean(w)`` divided by, > 0.
      rescale: ``"mean"`` or ``"count_plus_one"`` (pytorch-optimizer's
        ``Lion(cautious=True)``); see ``cautious``.
      mu_dtype: storage dtype of the momentum.

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.cautious_lion(0.1)
      >>> params = jnp.array([1.0, -2.0])
      >>> updates, _ = tx.update(jnp.array([3.0, -1.0]), tx.init(params), params)
      >>> updates  # the first step is -lr * sign(g): it always agrees
      Array([-0.1,  0.1], dtype=float32)

    References:
      Liang, Chen, Liu & Liu, "Cautious Optimizers: Improving Training with
      One Line of Code", 2024. https://arxiv.org/abs/2411.16085

      Chen et al., "Symbolic Discovery of Optimization Algorithms", 2023.
      https://arxiv.org/abs/2302.06675
    """
    return optax.chain(
        cautious(
            scale_by_lion(b1, b2, mu_dtype=mu_dtype),
            orientation="direction", rescale=rescale, floor=floor, factor=factor,
        ),
        add_decayed_weights(weight_decay, mask=mask),
        scale_by_learning_rate(learning_rate),
    )
