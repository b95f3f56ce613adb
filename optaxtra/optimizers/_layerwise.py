"""Layer-wise adaptive optimizers: LAMB and LARS."""

from __future__ import annotations

from typing import Any, Literal

import jax
import optax

from .._hyperparams import ScalarOrSchedule
from ..transforms._adam import scale_by_adam
from ..transforms._learning_rate import scale_by_learning_rate
from ..transforms._masking import Mask
from ..transforms._trust_ratio import trust_ratio
from ..transforms._weight_decay import add_decayed_weights
from ..transforms._momentum import trace

__all__ = ["lamb", "lars"]


def lamb(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-6,
    eps_root: ScalarOrSchedule = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Mask | None = None,
    *,
    layer_adaptation_mask: Mask | None = None,
    max_weight_norm: float | None = None,
    max_ratio: float | None = None,
    eps_placement: Literal["corrected", "uncorrected"] = "corrected",
    bias_correction: bool = True,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
    axis_name: str | tuple[str, ...] | None = None,
) -> optax.GradientTransformation:
    r"""LAMB: Adam's direction plus decay, scaled per layer by ``||p|| / ||u||``.

    .. math::
      u_t = \hat m_t / (\sqrt{\hat v_t} + \epsilon) + \lambda p,\qquad
      p \leftarrow p - \eta_t \frac{\|p\|}{\|u_t\|} u_t

    Defaults follow the LAMB paper's Algorithm 2 and optax: no clamp, ratio 1
    where a norm is zero, ``eps`` after the bias correction. torch-optimizer's
    ``Lamb`` is ``max_weight_norm=10, bias_correction=False,
    eps_placement="uncorrected"`` (its default ``debias=False``). Its
    ``debias=True`` is not ``bias_correction=True``: it multiplies the whole
    step, outside the trust ratio, by ``sqrt(1 - b2^t) / (1 - b1^t)`` (a warm-up
    of the step length, 0.32 at step 1), which is ``bias_correction=False``
    with that factor in a learning-rate schedule; correcting the moments inside
    the ratio, as the paper does, leaves the step length at ``lr * ||p||``.
    fastai's caps the ratio (``max_ratio=10``). TF-Addons' separate exclusion
    lists are ``mask`` (decay) and ``layer_adaptation_mask`` (trust ratio).

    Args:
      learning_rate: ``eta``, a number, array or schedule.
      b1: first-moment decay in [0, 1).
      b2: second-moment decay in [0, 1).
      eps: added to the denominator.
      eps_root: added to ``v_hat`` under the square root.
      weight_decay: ``lambda`` >= 0, added to the direction before the ratio.
      mask: which params decay.
      layer_adaptation_mask: which layers get the trust ratio.
      max_weight_norm: clamp of ``||p||`` (torch-optimizer: 10).
      max_ratio: cap of the ratio (fastai: 10).
      eps_placement: ``"corrected"`` or ``"uncorrected"``.
      bias_correction: whether to bias-correct the moments.
      mu_dtype: storage dtype of the first moment (the second is kept in at least float32).
      nu_dtype: storage dtype of the second moment; ``jnp.bfloat16`` is stored with
        stochastic rounding (see ``scale_by_adam``).
      axis_name: the mesh axis (or axes) layers are split over under
        ``shard_map``/``pmap``, for the per-layer norms (see ``trust_ratio``).

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      The trust ratio ``||p|| / ||u||`` gives each layer a step of length
      ``lr * ||p||``, whatever the size of its gradient.

      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.lamb(0.1)
      >>> params = {"big": jnp.array([3.0, 4.0]), "small": jnp.array([0.3, 0.4])}
      >>> grads = {"big": jnp.array([1.0, -1.0]), "small": jnp.array([1.0, -1.0])}
      >>> updates, _ = tx.update(grads, tx.init(params), params)
      >>> for name, u in updates.items():
      ...     print(name, jnp.round(u, 6), jnp.round(jnp.linalg.norm(u), 6))
      big [-0.353553  0.353553] 0.5
      small [-0.035355  0.035355] 0.05

    References:
      You et al., "Large Batch Optimization for Deep Learning: Training BERT in
      76 minutes", ICLR 2020. https://arxiv.org/abs/1904.00962
    """
    return optax.chain(
        scale_by_adam(
            b1, b2, eps, eps_root, eps_placement=eps_placement,
            bias_correction=bias_correction, mu_dtype=mu_dtype, nu_dtype=nu_dtype,
        ),
        add_decayed_weights(weight_decay, mask=mask),
        trust_ratio(
            max_weight_norm=max_weight_norm, max_ratio=max_ratio, mask=layer_adaptation_mask,
            axis_name=axis_name,
        ),
        scale_by_learning_rate(learning_rate),
    )


def lars(
    learning_rate: ScalarOrSchedule,
    weight_decay: float | jax.Array = 0.0,
    trust_coefficient: float = 1e-3,
    eps: float = 0.0,
    momentum: float | jax.Array | None = 0.9,
    nesterov: bool = False,
    mask: Mask | None = None,
    *,
    layer_adaptation_mask: Mask | None = None,
    separate_norms: bool = False,
    accumulator_dtype: Any = None,
    axis_name: str | tuple[str, ...] | None = None,
) -> optax.GradientTransformation:
    r"""LARS: momentum SGD with a per-layer trust ratio.

    .. math::
      u_t = \eta_{tc} \frac{\|p\|}{\|g + \lambda p\| + \epsilon} (g + \lambda p),\qquad
      b_t = \mu b_{t-1} + \eta_t u_t,\qquad p \leftarrow p - b_t

    Defaults follow optax's ``lars`` (the momentum accumulates LR-scaled
    updates; ``trust_coefficient=1e-3`` as the paper's ``eta``). The decay is
    added by ``trust_ratio`` itself (its ``weight_decay``), not by an
    ``add_decayed_weights`` before it: the piece can then compute ``g + lambda p``
    separately for the norm and for the step, so that XLA never stores the sum
    (measured in ``benchmarks/README.md``).
    ``separate_norms=True`` uses the LARS paper's (and torch-optimizer's)
    denominator ``||g|| + lambda ||p|| + eps``. torch-optimizer's ``LARS``
    skips the ratio, and the decay, where ``lambda == 0`` or a norm is 0: at
    ``lambda = 0`` it is ``sgd(learning_rate, momentum)``; here the ratio
    applies at every ``lambda``, as in the paper and optax.

    Args:
      learning_rate: a number, array or schedule.
      weight_decay: ``lambda`` >= 0, a number or an array (not a schedule:
        the decay sits inside ``trust_ratio``, which keeps no step count).
      trust_coefficient: the LARS ``eta`` > 0.
      eps: added to the denominator.
      momentum: ``mu`` in [0, 1), a number or an array; None leaves the
        momentum buffer out (see ``trace``).
      nesterov: Nesterov momentum.
      mask: which params decay.
      layer_adaptation_mask: which layers get the trust ratio.
      separate_norms: the paper's ``||g|| + lambda ||p||`` denominator.
      accumulator_dtype: storage dtype of the momentum buffer (see ``trace``).
      axis_name: the mesh axis (or axes) layers are split over under
        ``shard_map``/``pmap``, for the per-layer norms (see ``trust_ratio``).

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      With ``||p|| = 5`` and ``||g|| = 10`` the trust ratio is
      ``1e-3 * 5 / 10``, so ``u = 5e-4 * g``; the momentum then gives
      ``-lr * u`` and ``-lr * (0.9 u + u)``.

      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.lars(1.0)
      >>> params = jnp.array([3.0, 4.0])
      >>> state = tx.init(params)
      >>> for _ in range(2):
      ...     updates, state = tx.update(jnp.array([6.0, 8.0]), state, params)
      ...     print(jnp.round(updates, 6))
      [-0.003 -0.004]
      [-0.0057 -0.0076]

    References:
      You, Gitman & Ginsburg, "Large Batch Training of Convolutional Networks",
      2017. https://arxiv.org/abs/1708.03888
    """
    return optax.chain(
        trust_ratio(
            trust_coefficient, eps, weight_decay=weight_decay, separate_norms=separate_norms,
            mask=layer_adaptation_mask, weight_decay_mask=mask, axis_name=axis_name,
        ),
        scale_by_learning_rate(learning_rate),
        trace(momentum, nesterov, accumulator_dtype=accumulator_dtype),
    )
