"""Adam and its direct relatives: AdamW, AMSGrad, and the RAdam paper's warm-up baselines."""

from __future__ import annotations

from typing import Any, Literal

import optax

from .._hyperparams import ScalarOrSchedule
from .._validation import check_bool
from ..transforms._adam import scale_by_adam
from ..transforms._learning_rate import scale_by_learning_rate
from ..transforms._masking import Mask
from ..transforms._moments import EpsPlacement
from ..transforms._second_moment import amsgrad_second_moment
from ..transforms._weight_decay import add_decayed_weights, decoupled_weight_decay

__all__ = ["adam", "adamw", "amsgrad", "adam_2k", "adam_eps"]


def adam(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Mask | None = None,
    *,
    freeze_steps: int = 0,
    eps_placement: EpsPlacement = "corrected",
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""Adam, with optional L2 regularisation (PyTorch ``Adam(weight_decay=...)``).

    .. math::
      g \leftarrow g + \lambda p,\quad m_t = b_1 m + (1-b_1) g,\quad v_t = b_2 v + (1-b_2) g^2,\\
      p \leftarrow p - \eta_t\, \hat m_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon)

    ``weight_decay`` here is L2: added to the gradient, so it passes through
    the adaptive rescaling. For decoupled decay use ``adamw``.

    Args:
      learning_rate: ``eta``, a number, array or schedule.
      b1: first-moment decay in [0, 1).
      b2: second-moment decay in [0, 1).
      eps: added to ``sqrt(v_hat)``.
      eps_root: added to ``v_hat`` under the square root.
      weight_decay: L2 coefficient ``lambda`` >= 0.
      mask: which params get the L2 term.
      freeze_steps: Adam-2k's frozen steps (see ``adam_2k``).
      eps_placement: ``"corrected"`` adds ``eps`` to ``sqrt(v_hat)`` (PyTorch,
        optax, Kingma & Ba); ``"uncorrected"`` to ``sqrt(v)`` before the bias
        correction (TF1's "epsilon hat"; see ``scale_by_adam``).
      mu_dtype: storage dtype of the first moment (the second is kept in at least float32).
      nu_dtype: storage dtype of the second moment; ``jnp.bfloat16`` is stored with
        stochastic rounding (see ``scale_by_adam``).

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      >>> import jax.numpy as jnp, optax, optaxtra
      >>> tx = optaxtra.adam(0.1)
      >>> params = jnp.array([1.0, 2.0])
      >>> updates, _ = tx.update(jnp.array([3.0, -1.0]), tx.init(params), params)
      >>> optax.apply_updates(params, updates)
      Array([0.9, 2.1], dtype=float32)

    References:
      Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.
      https://arxiv.org/abs/1412.6980
    """
    return optax.chain(
        add_decayed_weights(weight_decay, mask=mask),
        scale_by_adam(
            b1, b2, eps, eps_root, eps_placement=eps_placement, freeze_steps=freeze_steps,
            mu_dtype=mu_dtype, nu_dtype=nu_dtype,
        ),
        scale_by_learning_rate(learning_rate),
    )


def adamw(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 0.0,
    weight_decay: ScalarOrSchedule = 1e-2,
    mask: Mask | None = None,
    *,
    scale_decay_by_lr: bool = True,
    eps_placement: EpsPlacement = "corrected",
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""AdamW: Adam with decoupled weight decay.

    .. math::
      p \leftarrow p - \eta_t\, \hat m_t / (\sqrt{\hat v_t} + \epsilon) - c_t \lambda p,
      \qquad c_t = \eta_t \text{ (default) or } 1

    ``chain(scale_by_adam, add_decayed_weights, scale_by_learning_rate)``, as
    optax's ``adamw``: ``-lr * (adam + wd * p)``. With
    ``scale_decay_by_lr=False``, ``chain(scale_by_adam,
    scale_by_learning_rate, decoupled_weight_decay)``: ``-lr * adam - wd * p``.

    Defaults follow PyTorch ``AdamW``: ``weight_decay=1e-2`` (optax's ``adamw``
    uses 1e-4) and the decay multiplied by the learning rate
    (``scale_decay_by_lr=True``, PyTorch and optax). With
    ``scale_decay_by_lr=False`` the decay is ``weight_decay`` itself, which
    Loshchilov & Hutter write as ``eta_t * lambda`` with ``eta_t`` the
    schedule multiplier: pass that product as a schedule.

    Args:
      learning_rate: ``eta``, a number, array or schedule.
      b1: first-moment decay in [0, 1).
      b2: second-moment decay in [0, 1).
      eps: added to ``sqrt(v_hat)``.
      eps_root: added to ``v_hat`` under the square root.
      weight_decay: ``lambda`` >= 0, a number, array or schedule.
      mask: which params decay (e.g. ``optaxtra.exclude_paths("bias|scale")``).
      scale_decay_by_lr: multiply the decay by the learning rate.
      eps_placement: ``"corrected"`` (on ``sqrt(v_hat)``) or ``"uncorrected"``
        (on ``sqrt(v)``); see ``adam``.
      mu_dtype: storage dtype of the first moment (the second is kept in at least float32).
      nu_dtype: storage dtype of the second moment; ``jnp.bfloat16`` is stored with
        stochastic rounding (see ``scale_by_adam``).

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      The first step is ``-lr * sign(g) - lr * weight_decay * p``: Adam's
      ``m_hat / sqrt(v_hat)`` is ``sign(g)`` at step 1, and the decay skips it.

      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.adamw(0.1, weight_decay=0.5)
      >>> params = jnp.array([1.0, -2.0])
      >>> updates, _ = tx.update(jnp.array([3.0, -1.0]), tx.init(params), params)
      >>> print(jnp.round(updates, 6))  # [-0.1 - 0.05, 0.1 + 0.1]
      [-0.15  0.2 ]

    References:
      Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
      https://arxiv.org/abs/1711.05101
    """
    check_bool("scale_decay_by_lr", scale_decay_by_lr)
    direction = scale_by_adam(
        b1, b2, eps, eps_root, eps_placement=eps_placement, mu_dtype=mu_dtype, nu_dtype=nu_dtype
    )
    if scale_decay_by_lr:
        return optax.chain(
            direction, add_decayed_weights(weight_decay, mask=mask), scale_by_learning_rate(learning_rate)
        )
    return optax.chain(
        direction, scale_by_learning_rate(learning_rate), decoupled_weight_decay(weight_decay, mask=mask)
    )


def amsgrad(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Mask | None = None,
    *,
    max_of: Literal["raw", "bias_corrected"] = "raw",
    bias_correction: bool = True,
    eps_placement: EpsPlacement = "corrected",
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""AMSGrad: Adam with a non-decreasing second-moment estimate.

    .. math::
      \hat v_t = \max(\hat v_{t-1}^{max}, v_t) / (1 - b_2^t),\quad
      p \leftarrow p - \eta_t\, \hat m_t / (\sqrt{\hat v_t} + \epsilon)

    Defaults follow PyTorch ``Adam(amsgrad=True)``: the maximum of the raw
    ``v``, divided by the current step's bias correction. ``max_of=
    "bias_corrected"`` takes the maximum of ``v_hat`` (optax 0.2.8);
    ``bias_correction=False`` corrects neither moment (Reddi et al.).
    ``weight_decay`` is L2, as in PyTorch's ``Adam``.

    Args:
      learning_rate: ``eta``, a number, array or schedule.
      b1: first-moment decay in [0, 1).
      b2: second-moment decay in [0, 1).
      eps: added to ``sqrt(v_hat)``.
      eps_root: added to ``v_hat`` under the square root.
      weight_decay: L2 coefficient >= 0.
      mask: which params get the L2 term.
      max_of: ``"raw"`` or ``"bias_corrected"``.
      bias_correction: whether to bias-correct the moments.
      eps_placement: ``"corrected"`` (on ``sqrt(v_hat)``) or ``"uncorrected"``
        (on ``sqrt(v)``); see ``adam``.
      mu_dtype: storage dtype of the first moment (the second is kept in at least float32).
      nu_dtype: storage dtype of the second moment; ``jnp.bfloat16`` is stored with
        stochastic rounding (see ``scale_by_adam``).

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      The second-moment state holds ``v`` and the running maximum ``v_max``:
      after a large and a small gradient, ``v`` has moved down and ``v_max`` has not.

      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.amsgrad(0.1, b2=0.5)
      >>> params = jnp.zeros(2)
      >>> state = tx.init(params)
      >>> for g in ([2.0, 2.0], [0.0, 2.0]):
      ...     updates, state = tx.update(jnp.array(g), state, params)
      >>> v, v_max = state[1].nu  # the chain's scale_by_adam state
      >>> print(v, v_max)  # v = 0.5 * [2, 2] + 0.5 * g**2
      [1. 3.] [2. 3.]

    References:
      Reddi, Kale & Kumar, "On the Convergence of Adam and Beyond", ICLR 2018.
      https://openreview.net/forum?id=ryQu7f-RZ
    """
    return optax.chain(
        add_decayed_weights(weight_decay, mask=mask),
        scale_by_adam(
            b1, b2, eps, eps_root,
            second_moment=amsgrad_second_moment(max_of=max_of),
            bias_correction=bias_correction, eps_placement=eps_placement,
            mu_dtype=mu_dtype, nu_dtype=nu_dtype,
        ),
        scale_by_learning_rate(learning_rate),
    )


def adam_2k(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    freeze_steps: int = 2000,
) -> optax.GradientTransformation:
    r"""Adam-2k (Liu et al. 2019): only the second moment moves for the first steps.

    For the first ``freeze_steps`` steps (2,000 in the paper, hence the name)
    ``v`` is updated while ``m`` and the params stay frozen; then Adam runs,
    with ``m``'s bias correction counted from the end of the freeze. The paper
    uses it to show that Adam's trouble without warm-up is the variance of the
    adaptive learning rate early on: once ``v`` has seen 2,000 gradients, no
    warm-up is needed.

    Args:
      learning_rate: ``eta``, a number, array or schedule (evaluated at the
        global step, frozen steps included).
      b1: first-moment decay in [0, 1).
      b2: second-moment decay in [0, 1).
      eps: added to ``sqrt(v_hat)``.
      freeze_steps: steps with only ``v`` updated, an integer >= 0.

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      Two frozen steps, then one step. ``m_hat`` restarts after the freeze, so
      it is the third gradient, 1; ``v_hat`` has seen all three:
      ``(4**2 / 8 + 2**2 / 4 + 1**2 / 2) / (7 / 8) = 4``. The step is
      ``-0.1 * 1 / sqrt(4) = -0.05``.

      >>> import jax.numpy as jnp, optax, optaxtra
      >>> tx = optaxtra.adam_2k(0.1, b2=0.5, freeze_steps=2)
      >>> params = jnp.array([1.0, 2.0])
      >>> state = tx.init(params)
      >>> for g in (4.0, 2.0, 1.0):
      ...     updates, state = tx.update(jnp.array([g, -g]), state, params)
      ...     params = optax.apply_updates(params, updates)
      ...     print(params)
      [1. 2.]
      [1. 2.]
      [0.95 2.05]

    References:
      Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond",
      ICLR 2020, section 3.2. https://arxiv.org/abs/1908.03265
    """
    return adam(learning_rate, b1, b2, eps, freeze_steps=freeze_steps)


def adam_eps(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-4,
) -> optax.GradientTransformation:
    r"""Adam-eps (Liu et al. 2019): Adam with a large ``eps`` (1e-4 instead of 1e-8).

    A large ``eps`` bounds ``1 / (sqrt(v_hat) + eps)`` while ``v_hat`` is
    estimated from few gradients, which the RAdam paper tests as a cheap
    alternative to warm-up (and finds to hurt the final performance).

    Args:
      learning_rate: ``eta``, a number, array or schedule.
      b1: first-moment decay in [0, 1).
      b2: second-moment decay in [0, 1).
      eps: added to ``sqrt(v_hat)``; 1e-4 as in the paper.

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      The first step is ``-lr * g / (|g| + eps)``: Adam (``eps=1e-8``) takes a
      full step even for a tiny gradient, Adam-eps damps it.

      >>> import jax.numpy as jnp, optaxtra
      >>> g = jnp.array([1e-4, 1.0])
      >>> for tx in (optaxtra.adam(0.1), optaxtra.adam_eps(0.1)):
      ...     updates, _ = tx.update(g, tx.init(g))
      ...     print(jnp.round(updates, 6))
      [-0.09999 -0.1    ]
      [-0.05    -0.09999]

    References:
      Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond",
      ICLR 2020, section 3.2. https://arxiv.org/abs/1908.03265
    """
    return adam(learning_rate, b1, b2, eps)
