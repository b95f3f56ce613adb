"""SWATS: Adam that switches to SGD once its projected SGD learning rate settles."""

from __future__ import annotations

from typing import Any, Literal

import optax

from .._hyperparams import ScalarOrSchedule
from .._validation import check_real
from ..optimizers._chain import unless_zero
from ..transforms._adam import scale_by_adam
from ..transforms._learning_rate import scale_by_learning_rate
from ..transforms._masking import Mask
from ..transforms._weight_decay import add_decayed_weights
from ._switch import switching
from ._swats_fused import fused_swats_switch
from ._swats_phases import adam_phase, projection, sgd_phase

__all__ = ["swats"]


def swats(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-9,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Mask | None = None,
    *,
    switch_atol: float = 1e-9,
    switch_rtol: float = 0.0,
    eps_placement: Literal["corrected", "uncorrected"] = "uncorrected",
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""SWATS: Adam until its projected SGD learning rate settles, then momentum SGD at that rate.

    Keskar & Socher's Algorithm 1, with ``g_k`` the gradient (plus
    ``weight_decay * p``, L2 as in torch-optimizer) and ``p_k`` Adam's step:

    .. math::
      \gamma_k = \frac{p_k^\top p_k}{-p_k^\top g_k},\quad
      \lambda_k = b_2 \lambda_{k-1} + (1 - b_2)\gamma_k,\quad
      \Lambda_k = \frac{\lambda_k}{1 - b_2^k}

    (skipped when ``p_k . g_k = 0``). After a step with ``k > 1``,
    ``Lambda_k > 0`` and ``|Lambda_k - gamma_k| <= switch_atol + switch_rtol
    |gamma_k|``, every later update is ``v = b_1 v + g`` (``v`` starting at
    0), ``p <- p - (1 - b_1) Lambda v``. Built as ``switch_when`` of the two
    phases, and compiled as one fused step with the same state (no array
    through ``lax.cond``; ``optaxtra.plain_paths()`` gives the
    ``switch_when`` form). ``optaxtra.diagnostics`` reports ``swats/sgd_learning_rate``
    (``Lambda``), ``swats/projected_learning_rate`` and ``switch/switched``.

    The dot products run over the whole parameter vector, as in the paper's
    Algorithm 1. torch-optimizer 0.3.0's ``SWATS`` differs in three ways:

    * it keeps ``lambda`` per parameter tensor and switches the whole group
      when any one tensor settles, at that tensor's ``Lambda`` (the same for
      a model with a single tensor);
    * its criterion is ``allclose(Lambda, gamma)``: ``switch_atol=1e-8,
      switch_rtol=1e-6`` here (the paper's is ``< 1e-9``); its ``eps``
      defaults to 1e-3;
    * from its second SGD step on, ``grad = buf; grad.mul_(1 - beta1)``
      rescales the momentum buffer itself in place, so it keeps
      ``b = (1 - b_1)(b_1 b + g)`` and steps ``-Lambda b``: an effective
      momentum of ``b_1 (1 - b_1) = 0.09`` instead of the paper's 0.9. Its
      first two SGD steps equal the paper's; the third and later differ.

    Args:
      learning_rate: Adam's rate, a number, array or schedule.
      b1: first-moment decay, also SGD's momentum, in [0, 1).
      b2: second-moment decay, also the decay of ``lambda``, in [0, 1).
      eps: Adam's eps (the paper uses 1e-9 for both eps and the criterion).
      weight_decay: L2 coefficient >= 0, in both phases.
      mask: which params get the L2 term.
      switch_atol: absolute tolerance of the criterion, >= 0. The paper's
        1e-9 is about 8 float32 ulps of ``Lambda ~ 1e-3`` (Adam's rate 1e-3)
        but less than one ulp of ``Lambda ~ 0.1``: scale it with the
        learning rate, or use ``switch_rtol``.
      switch_rtol: relative tolerance of the criterion, >= 0.
      eps_placement: ``"uncorrected"`` (paper and torch-optimizer:
        ``sqrt(v) + eps`` before the bias correction) or ``"corrected"``.
      mu_dtype: storage dtype of Adam's moments.

    Returns:
      An ``optax.GradientTransformation`` with a ``SwitchState`` inside.

    Example:
      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.swats(0.1, switch_atol=1e-8, switch_rtol=1e-6)
      >>> params = jnp.zeros(3)
      >>> state = tx.init(params)
      >>> for _ in range(3):  # a constant gradient: the estimate settles at step 2
      ...     updates, state = tx.update(jnp.array([1.0, 2.0, 4.0]), state, params)
      >>> stats = optaxtra.diagnostics(state)
      >>> float(stats["switch/switched"]), round(float(stats["swats/sgd_learning_rate"]), 4)
      (1.0, 0.0429)

    References:
      Keskar & Socher, "Improving Generalization Performance by Switching
      from Adam to SGD", 2017. https://arxiv.org/abs/1712.07628
    """
    check_real("switch_atol", switch_atol, 0.0, allow_schedule=False)
    check_real("switch_rtol", switch_rtol, 0.0, allow_schedule=False)
    adam = optax.chain(
        scale_by_adam(b1, b2, eps, eps_placement=eps_placement, mu_dtype=mu_dtype),
        scale_by_learning_rate(learning_rate),
    )
    phases = switching(
        "swats",
        adam_phase(adam, projection(b2, switch_atol, switch_rtol)),
        sgd_phase(b1),
        should_switch=lambda adam_state, _: adam_state.settled,
        hand_off=lambda adam_state, sgd_state: sgd_state._replace(
            count=adam_state.count, learning_rate=adam_state.sgd_learning_rate
        ),
    )
    return optax.chain(
        unless_zero(weight_decay, lambda: add_decayed_weights(weight_decay, mask=mask)),
        fused_swats_switch(
            phases, learning_rate=learning_rate, b1=b1, b2=b2, eps=eps,
            eps_placement=eps_placement, mu_dtype=mu_dtype,
            switch_atol=switch_atol, switch_rtol=switch_rtol,
        ),
    )
