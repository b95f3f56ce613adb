"""The rectified family: RAdam, Ranger (Lookahead of RAdam) and Ralamb (RAdam with LAMB's trust ratio)."""

from __future__ import annotations

from typing import Any, Literal

import optax

from .._hyperparams import ScalarOrSchedule
from ..transforms._learning_rate import scale_by_learning_rate
from ..transforms._lookahead import lookahead_state
from ..transforms._masking import Mask
from ..transforms._rectifier import scale_by_radam_rectifier
from ..transforms._trust_ratio import trust_ratio
from ..transforms._weight_decay import add_decayed_weights

__all__ = ["radam", "ranger", "ralamb"]


def radam(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Mask | None = None,
    *,
    threshold: float = 5.0,
    threshold_comparison: Literal[">", ">="] = ">",
    degenerated_to_sgd: bool = True,
    eps_placement: Literal["corrected", "uncorrected"] = "uncorrected",
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""RAdam: Adam whose adaptive learning rate is rectified while its variance is intractable.

    .. math::
      p \leftarrow p - \eta_t \begin{cases}
        r_t\, \hat m_t / (\sqrt{\hat v_t} + \epsilon) & \rho_t > 5 \\
        \hat m_t & \text{otherwise} \end{cases} - \eta_t \lambda p

    Defaults match PyTorch ``RAdam(decoupled_weight_decay=True)``: threshold
    ``rho_t > 5``, momentum SGD while intractable, eps added to ``sqrt(v)``
    before the bias correction, decoupled decay multiplied by the LR (PyTorch's
    default ``decoupled_weight_decay=False`` is L2; get it by chaining
    ``add_decayed_weights`` before ``scale_by_radam_rectifier``). See
    ``scale_by_radam_rectifier`` for every convention.

    Args:
      learning_rate: ``eta``, a number, array or schedule.
      b1: first-moment decay in [0, 1).
      b2: second-moment decay in [0, 1).
      eps: added to the denominator.
      eps_root: added to ``v_hat`` under the square root.
      weight_decay: decoupled decay ``lambda`` >= 0, multiplied by the LR.
      mask: which params decay.
      threshold: ``rho_t`` threshold, >= 4.
      threshold_comparison: ``">"`` or ``">="``.
      degenerated_to_sgd: momentum SGD (True) or no step (False) while intractable.
      eps_placement: ``"uncorrected"`` or ``"corrected"``.
      mu_dtype: storage dtype of the first moment (the second is kept in at least float32).
      nu_dtype: storage dtype of the second moment; ``jnp.bfloat16`` is stored with
        stochastic rounding (see ``scale_by_adam``).

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      While ``rho_t <= 5`` (the first five steps with ``b2=0.999``) the step is
      momentum SGD's ``-lr * m_hat``, not Adam's ``-lr * sign(g)``. With
      ``b1=0.5``, ``m_hat`` is ``g_1``, then ``(g_1 + 2 g_2) / 3``.

      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.radam(0.1, b1=0.5)
      >>> params = jnp.zeros(2)
      >>> state = tx.init(params)
      >>> for g in ([3.0, 6.0], [0.0, 3.0]):
      ...     updates, state = tx.update(jnp.array(g), state, params)
      ...     print(jnp.round(updates, 6))
      [-0.3 -0.6]
      [-0.1 -0.4]

    References:
      Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond",
      ICLR 2020. https://arxiv.org/abs/1908.03265
    """
    return optax.chain(
        scale_by_radam_rectifier(
            b1, b2, eps, eps_root, threshold=threshold, threshold_comparison=threshold_comparison,
            degenerated_to_sgd=degenerated_to_sgd, eps_placement=eps_placement, mu_dtype=mu_dtype,
            nu_dtype=nu_dtype,
        ),
        add_decayed_weights(weight_decay, mask=mask),
        scale_by_learning_rate(learning_rate),
    )


def ranger(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.95,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-5,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Mask | None = None,
    sync_period: int = 6,
    slow_step_size: float = 0.5,
    *,
    threshold: float = 5.0,
    eps_placement: Literal["corrected", "uncorrected"] = "uncorrected",
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""Ranger: Lookahead around RAdam, with pytorch_ranger 0.1.1's defaults.

    ``lookahead_state(radam(...), sync_period, slow_step_size)``: RAdam steps
    the fast weights; every ``sync_period`` steps the slow weights move
    ``slow_step_size`` of the way to them and the fast weights reset there.
    Defaults: ``b1=0.95``, ``eps=1e-5``, ``k=6``, ``alpha=0.5``, threshold
    ``rho_t > 5``, eps added to ``sqrt(v)`` before bias correction, decoupled
    decay multiplied by the LR (as pytorch_ranger, in both RAdam branches).

    Args:
      learning_rate: ``eta``, a number, array or schedule.
      b1: first-moment decay in [0, 1).
      b2: second-moment decay in [0, 1).
      eps: added to the denominator.
      weight_decay: decoupled decay >= 0, multiplied by the LR.
      mask: which params decay.
      sync_period: Lookahead's ``k``.
      slow_step_size: Lookahead's ``alpha`` in [0, 1].
      threshold: RAdam's ``rho_t`` threshold.
      eps_placement: ``"uncorrected"`` adds ``eps`` to ``sqrt(v)`` before the
        bias correction (pytorch_ranger); ``"corrected"`` to ``sqrt(v_hat)``.
      mu_dtype: storage dtype of RAdam's first moment (see ``scale_by_radam_rectifier``).
      nu_dtype: storage dtype of RAdam's second moment; ``jnp.int8`` in both
        stores them block-wise in 8 bits (the slow weights stay in the params' dtype).

    Returns:
      An ``optax.GradientTransformation`` whose state holds the slow weights
      (read them with ``optaxtra.slow_params``).

    Example:
      RAdam's first steps with a constant gradient are ``-lr * g``: after two,
      the fast weights are at ``-0.2 * g``; the sync moves the slow weights
      halfway there and puts the params on them.

      >>> import jax.numpy as jnp, optax, optaxtra
      >>> tx = optaxtra.ranger(0.1, sync_period=2)
      >>> params = jnp.zeros(2)
      >>> state = tx.init(params)
      >>> for _ in range(2):
      ...     updates, state = tx.update(jnp.array([1.0, 2.0]), state, params)
      ...     params = optax.apply_updates(params, updates)
      >>> print(jnp.round(params, 6), jnp.round(optaxtra.slow_params(state), 6))
      [-0.1 -0.2] [-0.1 -0.2]

    References:
      Wright, "New Deep Learning Optimizer, Ranger: Synergistic combination of
      RAdam + LookAhead for the best of both", Medium, 2019.
      https://medium.com/@lessw/new-deep-learning-optimizer-ranger-synergistic-combination-of-radam-lookahead-for-the-best-of-2dc83f79a48d;
      code: https://github.com/lessw2020/Ranger-Deep-Learning-Optimizer

      Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond"
      (RAdam), ICLR 2020. https://arxiv.org/abs/1908.03265

      Zhang, Lucas, Hinton & Ba, "Lookahead Optimizer: k steps forward, 1 step
      back", NeurIPS 2019. https://arxiv.org/abs/1907.08610
    """
    inner = radam(
        learning_rate, b1, b2, eps, weight_decay=weight_decay, mask=mask, threshold=threshold,
        eps_placement=eps_placement, mu_dtype=mu_dtype, nu_dtype=nu_dtype,
    )
    return lookahead_state(inner, sync_period, slow_step_size)


def ralamb(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-6,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Mask | None = None,
    *,
    layer_adaptation_mask: Mask | None = None,
    threshold: float = 5.0,
    max_ratio: float | None = None,
    eps_placement: Literal["corrected", "uncorrected"] = "uncorrected",
    axis_name: str | tuple[str, ...] | None = None,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""Ralamb: RAdam's rectified direction, plus decay, scaled by LAMB's trust ratio.

    .. math::
      u_t = \text{rectified}(\hat m_t, \hat v_t) + \lambda p,\qquad
      p \leftarrow p - \eta_t \frac{\|p\|}{\|u_t\|} u_t

    Args:
      learning_rate: ``eta``, a number, array or schedule.
      b1: first-moment decay in [0, 1).
      b2: second-moment decay in [0, 1).
      eps: added to the denominator.
      weight_decay: decay ``lambda`` >= 0 added before the trust ratio.
      mask: which params decay.
      layer_adaptation_mask: which layers get the trust ratio.
      threshold: RAdam's ``rho_t`` threshold.
      max_ratio: optional cap on the trust ratio.
      eps_placement: ``"uncorrected"`` adds ``eps`` to ``sqrt(v)`` before the
        bias correction (PyTorch's RAdam, the official code); ``"corrected"``
        to ``sqrt(v_hat)`` (optax).
      axis_name: the mesh axis (or axes) layers are split over under
        ``shard_map``/``pmap``, for the per-layer norms (see ``trust_ratio``).
      mu_dtype: storage dtype of the first moment (see ``scale_by_radam_rectifier``).
      nu_dtype: storage dtype of the second moment; ``jnp.int8`` in both
        stores them block-wise in 8 bits.

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      Each step has length ``lr * ||p||``. While ``rho_t <= 5`` Ralamb points
      along RAdam's ``m_hat`` (``g`` at step 1), LAMB along Adam's ``sign(g)``.

      >>> import jax.numpy as jnp, optaxtra
      >>> params, g = jnp.array([3.0, 4.0]), jnp.array([6.0, 8.0])  # ||p|| = 5
      >>> for tx in (optaxtra.ralamb(0.1), optaxtra.lamb(0.1)):
      ...     updates, _ = tx.update(g, tx.init(params), params)
      ...     print(jnp.round(updates, 6))
      [-0.3 -0.4]
      [-0.353553 -0.353553]

    References:
      "Ralamb (RAdam + LARS)", as named and benchmarked in the
      ``mgrankin/over9000`` repository, whose implementation is adapted from
      a GitHub gist by redknightlois. https://github.com/mgrankin/over9000;
      https://gist.github.com/redknightlois/c4023d393eb8f92bb44b2ab582d7ec20

      Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond"
      (RAdam), ICLR 2020. https://arxiv.org/abs/1908.03265

      You et al., "Large Batch Optimization for Deep Learning: Training BERT in
      76 minutes" (LAMB), ICLR 2020. https://arxiv.org/abs/1904.00962
    """
    return optax.chain(
        scale_by_radam_rectifier(
            b1, b2, eps, threshold=threshold, eps_placement=eps_placement, mu_dtype=mu_dtype, nu_dtype=nu_dtype
        ),
        add_decayed_weights(weight_decay, mask=mask),
        trust_ratio(max_ratio=max_ratio, mask=layer_adaptation_mask, axis_name=axis_name),
        scale_by_learning_rate(learning_rate),
    )
