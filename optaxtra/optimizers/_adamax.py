"""Adamax: Adam with the infinity norm (Kingma & Ba, section 7.1)."""

from __future__ import annotations

from typing import Any

import optax

from .._hyperparams import ScalarOrSchedule
from ..transforms._adamax import scale_by_adamax
from ..transforms._learning_rate import scale_by_learning_rate
from ..transforms._masking import Mask
from ..transforms._weight_decay import add_decayed_weights

__all__ = ["adamax"]


def adamax(
    learning_rate: ScalarOrSchedule = 2e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Mask | None = None,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""Adamax, with optional L2 regularisation (PyTorch ``Adamax``).

    .. math::
      g \leftarrow g + \lambda p,\quad m_t = b_1 m + (1 - b_1) g,\quad
      u_t = \max(b_2 u, |g| + \epsilon),\quad
      p \leftarrow p - \frac{\eta_t}{1 - b_1^t} \frac{m_t}{u_t}

    Defaults follow PyTorch's ``Adamax`` (``learning_rate=2e-3``, the
    paper's value); ``eps`` sits inside the maximum in PyTorch and optax
    alike (see ``scale_by_adamax``). ``weight_decay`` is L2, as in PyTorch;
    ``optax.adamax`` has none (``optax.adamaxw`` decays decoupled, which is
    ``chain(scale_by_adamax(), add_decayed_weights(wd), scale_by_learning_rate(lr))``).

    Args:
      learning_rate: ``eta``, a number, array or schedule.
      b1: first-moment decay in [0, 1).
      b2: decay of the infinity norm in [0, 1).
      eps: added to ``|g|`` inside the maximum, >= 0.
      weight_decay: L2 coefficient ``lambda`` >= 0.
      mask: which params get the L2 term.
      mu_dtype: storage dtype of the first moment (``u`` is kept in at least float32).
      nu_dtype: storage dtype of ``u`` (see ``scale_by_adam``).

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      >>> import jax.numpy as jnp, optax, optaxtra
      >>> tx = optaxtra.adamax(0.1)
      >>> params = jnp.array([1.0, 2.0])
      >>> updates, _ = tx.update(jnp.array([3.0, -1.0]), tx.init(params), params)
      >>> optax.apply_updates(params, updates)  # step 1: -lr * sign(g), up to eps
      Array([0.9, 2.1], dtype=float32)

    References:
      Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015,
      section 7.1. https://arxiv.org/abs/1412.6980
    """
    return optax.chain(
        add_decayed_weights(weight_decay, mask=mask),
        scale_by_adamax(b1, b2, eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
        scale_by_learning_rate(learning_rate),
    )
