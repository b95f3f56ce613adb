"""Linear warm-up, and Ma & Yarats' untuned warm-up rule for Adam."""

from __future__ import annotations

from typing import Literal

import jax.numpy as jnp
import optax

from .._validation import check_choice, check_int, check_real
from ._anneal import Scalar, anneal, remaining_fraction

__all__ = ["linear_warmup", "untuned_warmup", "untuned_warmup_steps"]


def linear_warmup(
    peak_value: Scalar, warmup_steps: int, *, init_value: Scalar = 0.0
) -> optax.Schedule:
    r"""Rises linearly from ``init_value`` to ``peak_value``, then stays there.

    .. math::
      \eta(t) = \eta_0 + (\eta_{peak} - \eta_0) \min(1, t / T_{warm})

    ``t`` is the step count (0 on the first update), so with the default
    ``init_value=0`` the first update has rate 0 and ``peak_value`` is reached
    at ``t = warmup_steps``, as in ``optax.linear_schedule``. To decay after
    the warm-up, join it with a decay (``optax.join_schedules``) or use
    ``warmup_stable_decay``.

    Args:
      peak_value: the value after the warm-up, >= 0 (may be a traced array).
      warmup_steps: length of the ramp, an integer >= 0 (0: no warm-up).
      init_value: the value at step 0, >= 0.

    Returns:
      A schedule ``step -> float32 value``.

    Example:
      >>> import optaxtra
      >>> schedule = optaxtra.linear_warmup(1.0, warmup_steps=4)
      >>> [float(schedule(t)) for t in range(6)]
      [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]

    References:
      Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in 1
      Hour", 2017, section 2.2 (gradual warm-up). https://arxiv.org/abs/1706.02677
    """
    check_real("peak_value", peak_value, 0.0, allow_schedule=False)
    check_real("init_value", init_value, 0.0, allow_schedule=False)
    check_int("warmup_steps", warmup_steps, 0)

    def schedule(count):
        return anneal(init_value, peak_value, remaining_fraction(count, 0, warmup_steps), "linear")

    return schedule


def untuned_warmup_steps(b2: float = 0.999) -> int:
    """Ma & Yarats' warm-up length for Adam: ``2 / (1 - b2)`` steps.

    Args:
      b2: Adam's second-moment decay, a number in [0, 1).

    Returns:
      The number of warm-up steps, rounded to the nearest integer (2000 for
      ``b2 = 0.999``, 200 for ``b2 = 0.99``).

    Example:
      >>> import optaxtra
      >>> optaxtra.untuned_warmup_steps(0.999), optaxtra.untuned_warmup_steps(0.98)
      (2000, 100)

    References:
      Ma & Yarats, "On the Adequacy of Untuned Warmup for Adaptive
      Optimization", AAAI 2021. https://arxiv.org/abs/1910.04209
    """
    check_real("b2", b2, 0.0, 1.0, high_open=True, allow_schedule=False)
    return round(2.0 / (1.0 - float(b2)))


def untuned_warmup(
    peak_value: Scalar,
    b2: Scalar = 0.999,
    *,
    kind: Literal["linear", "exponential"] = "linear",
) -> optax.Schedule:
    r"""Ma & Yarats' untuned warm-up for Adam, scaled to ``peak_value``.

    With ``t`` the 1-based index of the update (``t = count + 1``, the paper's):

    .. math::
      \omega^{linear}_t = \min\left(1, \tfrac{1 - \beta_2}{2} t\right),\qquad
      \omega^{expo}_t = 1 - \exp(-(1 - \beta_2) t)

    and the schedule is ``peak_value * omega_t``. The linear form reaches the
    peak after ``untuned_warmup_steps(b2)`` updates; the exponential form has
    time constant ``1 / (1 - b2)``, the averaging window of Adam's second
    moment, which is what the rule is tied to.

    Args:
      peak_value: the rate after the warm-up, >= 0 (may be a traced array).
      b2: Adam's second-moment decay in [0, 1) (a number or array).
      kind: ``"linear"`` or ``"exponential"``.

    Returns:
      A schedule ``step -> float32 value``.

    Example:
      >>> import optaxtra
      >>> schedule = optaxtra.untuned_warmup(1.0, b2=0.99)
      >>> [round(float(schedule(t)), 4) for t in (0, 1, 99, 199, 500)]
      [0.005, 0.01, 0.5, 1.0, 1.0]

    References:
      Ma & Yarats, "On the Adequacy of Untuned Warmup for Adaptive
      Optimization", AAAI 2021. https://arxiv.org/abs/1910.04209
    """
    check_real("peak_value", peak_value, 0.0, allow_schedule=False)
    check_real("b2", b2, 0.0, 1.0, high_open=True, allow_schedule=False)
    check_choice("kind", kind, ("linear", "exponential"))
    rate = jnp.asarray(1.0 - b2, jnp.float32)  # 1 - b2 in float64 for a Python b2

    def schedule(count):
        t = jnp.asarray(count, jnp.float32) + 1.0
        if kind == "linear":
            omega = jnp.minimum(1.0, 0.5 * rate * t)
        else:
            omega = -jnp.expm1(-rate * t)
        return jnp.asarray(peak_value, jnp.float32) * omega

    return schedule
