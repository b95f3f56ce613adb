"""NAdam and NAdamW: Adam with Nesterov momentum, with L2 or decoupled weight decay."""

from __future__ import annotations

from typing import Any

import optax

from .._hyperparams import ScalarOrSchedule
from ..transforms._learning_rate import scale_by_learning_rate
from ..transforms._masking import Mask
from ..transforms._nadam import scale_by_nadam
from ..transforms._weight_decay import add_decayed_weights

__all__ = ["nadam", "nadamw"]


def nadam(
    learning_rate: ScalarOrSchedule = 2e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Mask | None = None,
    *,
    momentum_decay: ScalarOrSchedule | None = 4e-3,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""NAdam (Dozat 2016), with optional L2 regularisation (PyTorch ``NAdam``).

    .. math::
      g \leftarrow g + \lambda p,\quad
      \mu_t = b_1 (1 - \tfrac12\, 0.96^{t \psi}),\quad
      m_t = b_1 m + (1 - b_1) g,\quad v_t = b_2 v + (1 - b_2) g^2,\\
      p \leftarrow p - \eta_t \Bigl(\frac{1 - \mu_t}{1 - \prod_{i \le t} \mu_i} g
        + \frac{\mu_{t+1}}{1 - \prod_{i \le t+1} \mu_i} m_t\Bigr)
        \Big/ \bigl(\sqrt{v_t / (1 - b_2^t) + \epsilon_{root}} + \epsilon\bigr)

    Defaults follow PyTorch's ``NAdam``: ``learning_rate=2e-3``, Dozat's
    momentum schedule with ``momentum_decay=4e-3``, and ``weight_decay`` as
    L2 (added to the gradient, so it passes through the adaptive rescaling;
    for decoupled decay use ``nadamw``). ``momentum_decay=None`` gives
    ``optax.nadam`` (a constant ``mu_t = b1``; see ``scale_by_nadam``).

    Args:
      learning_rate: ``eta``, a number, array or schedule.
      b1: first-moment decay and momentum scale, in [0, 1).
      b2: second-moment decay in [0, 1).
      eps: added to ``sqrt(v_hat)``.
      eps_root: added to ``v_hat`` under the square root.
      weight_decay: L2 coefficient ``lambda`` >= 0.
      mask: which params get the L2 term.
      momentum_decay: ``psi`` >= 0 of the momentum schedule, or None (optax's form).
      mu_dtype: storage dtype of the first moment (the second is kept in at least float32).
      nu_dtype: storage dtype of the second moment (see ``scale_by_adam``).

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      The first step is ``-lr * w * sign(g)`` (up to eps) with
      ``w = 1 + mu_2 (1 - b1) / (1 - mu_1 mu_2)``: with the schedule's
      ``mu_1 = 0.450073`` and ``mu_2 = 0.450147``, ``w = 1.056492``.

      >>> import jax.numpy as jnp, optax, optaxtra
      >>> tx = optaxtra.nadam(0.1)
      >>> params = jnp.array([1.0, 2.0])
      >>> updates, _ = tx.update(jnp.array([3.0, -1.0]), tx.init(params), params)
      >>> print([f"{p:.5f}" for p in optax.apply_updates(params, updates).tolist()])
      ['0.89435', '2.10565']

    References:
      Dozat, "Incorporating Nesterov Momentum into Adam", ICLR 2016 workshop.
      https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ
    """
    return optax.chain(
        add_decayed_weights(weight_decay, mask=mask),
        scale_by_nadam(
            b1, b2, eps, eps_root, momentum_decay=momentum_decay, mu_dtype=mu_dtype, nu_dtype=nu_dtype
        ),
        scale_by_learning_rate(learning_rate),
    )


def nadamw(
    learning_rate: ScalarOrSchedule = 2e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 0.0,
    weight_decay: ScalarOrSchedule = 1e-2,
    mask: Mask | None = None,
    *,
    momentum_decay: ScalarOrSchedule | None = 4e-3,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""NAdamW: NAdam with decoupled weight decay, multiplied by the learning rate.

    .. math::
      p \leftarrow p - \eta_t\, u_t - \eta_t \lambda p

    with ``u_t`` the direction of ``nadam`` (``scale_by_nadam``). This is
    PyTorch's ``NAdam(decoupled_weight_decay=True)`` and, with
    ``momentum_decay=None``, ``optax.nadamw``. The decay is multiplied by the
    learning rate (PyTorch's and optax's AdamW convention); for a decay
    independent of it, chain ``scale_by_nadam``, ``scale_by_learning_rate``
    and ``decoupled_weight_decay``. ``weight_decay`` defaults to ``adamw``'s
    1e-2 (PyTorch's ``NAdam`` defaults to 0, ``optax.nadamw`` to 1e-4).

    Args:
      learning_rate: ``eta``, a number, array or schedule.
      b1: first-moment decay and momentum scale, in [0, 1).
      b2: second-moment decay in [0, 1).
      eps: added to ``sqrt(v_hat)``.
      eps_root: added to ``v_hat`` under the square root.
      weight_decay: ``lambda`` >= 0, a number, array or schedule.
      mask: which params decay (e.g. ``optaxtra.exclude_paths("bias|scale")``).
      momentum_decay: ``psi`` >= 0 of the momentum schedule, or None (optax's form).
      mu_dtype: storage dtype of the first moment (the second is kept in at least float32).
      nu_dtype: storage dtype of the second moment (see ``scale_by_adam``).

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      With optax's constant momentum ``b1 = 0.5`` the first direction is
      ``(1 + 0.5 * 0.5 / (1 - 0.25)) sign(g) = 4/3 sign(g)`` (up to eps), and
      the step is ``-lr * (4/3 sign(g) + weight_decay * p)``:

      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.nadamw(0.1, b1=0.5, weight_decay=0.5, momentum_decay=None)
      >>> params = jnp.array([1.0, -2.0])
      >>> updates, _ = tx.update(jnp.array([3.0, -1.0]), tx.init(params), params)
      >>> print([f"{u:.5f}" for u in updates.tolist()])  # [-0.13333 - 0.05, 0.13333 + 0.1]
      ['-0.18333', '0.23333']

    References:
      Dozat, "Incorporating Nesterov Momentum into Adam", ICLR 2016 workshop.
      https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ

      Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
      https://arxiv.org/abs/1711.05101
    """
    return optax.chain(
        scale_by_nadam(
            b1, b2, eps, eps_root, momentum_decay=momentum_decay, mu_dtype=mu_dtype, nu_dtype=nu_dtype
        ),
        add_decayed_weights(weight_decay, mask=mask),
        scale_by_learning_rate(learning_rate),
    )
