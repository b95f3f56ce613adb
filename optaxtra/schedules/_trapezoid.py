"""Warmup-stable-decay: the trapezoidal schedule (linear up, hold, down to a floor)."""

from __future__ import annotations

import jax.numpy as jnp
import optax

from .._validation import check_choice, check_int, check_real
from ._anneal import ANNEAL_STRATEGIES, AnnealStrategy, Scalar, anneal, remaining_fraction

__all__ = ["warmup_stable_decay"]


def warmup_stable_decay(
    peak_value: Scalar,
    total_steps: int,
    warmup_steps: int,
    decay_steps: int,
    *,
    init_value: Scalar = 0.0,
    end_value: Scalar = 0.0,
    anneal_strategy: AnnealStrategy = "linear",
) -> optax.Schedule:
    r"""Three stages: linear warm-up, a constant plateau, a decay to a floor.

    With ``W = warmup_steps``, ``D = decay_steps``, ``T = total_steps`` and
    ``t`` the step count (0 on the first update):

    .. math::
      \eta(t) = \begin{cases}
        \eta_0 + (\eta_{peak} - \eta_0)\, t / W & t < W \\
        \eta_{peak} & W \le t < T - D \\
        \eta_{end} + (\eta_{peak} - \eta_{end})\, s\!\left(\tfrac{T - t}{D}\right) & T - D \le t
      \end{cases}

    where ``s(q) = q`` (``"linear"``, the trapezoid) or ``sin^2(pi q / 2)``
    (``"cos"``, half a cosine); the floor ``end_value`` is reached at
    ``t = T`` and held after it. Because the plateau does not depend on
    ``T``, a run can be extended and the decay started from any checkpoint
    of the plateau (the point of the schedule for budget-free training).

    Args:
      peak_value: the plateau's value, >= 0 (may be a traced array).
      total_steps: ``T``, the step at which the floor is reached, >= 1.
      warmup_steps: ``W`` >= 0.
      decay_steps: ``D`` >= 0; the decay starts at step ``T - D``, which must
        not come before the warm-up ends (``W + D <= T``).
      init_value: the value at step 0, >= 0.
      end_value: the floor, >= 0.
      anneal_strategy: shape of the decay, ``"linear"`` or ``"cos"``.

    Returns:
      A schedule ``step -> float32 value``.

    Raises:
      ValueError: for negative step counts or a decay that would start
        before the warm-up ends.

    Example:
      >>> import optaxtra
      >>> schedule = optaxtra.warmup_stable_decay(1.0, total_steps=8, warmup_steps=2, decay_steps=4)
      >>> [float(schedule(t)) for t in range(10)]
      [0.0, 0.5, 1.0, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0]

    References:
      Hu et al., "MiniCPM: Unveiling the Potential of Small Language Models
      with Scalable Training Strategies", 2024. https://arxiv.org/abs/2404.06395

      Hägele et al., "Scaling Laws and Compute-Optimal Training Beyond Fixed
      Training Durations", 2024. https://arxiv.org/abs/2405.18392
    """
    check_real("peak_value", peak_value, 0.0, allow_schedule=False)
    check_real("init_value", init_value, 0.0, allow_schedule=False)
    check_real("end_value", end_value, 0.0, allow_schedule=False)
    check_int("total_steps", total_steps, 1)
    check_int("warmup_steps", warmup_steps, 0)
    check_int("decay_steps", decay_steps, 0)
    check_choice("anneal_strategy", anneal_strategy, ANNEAL_STRATEGIES)
    decay_start = total_steps - decay_steps
    if decay_start < warmup_steps:
        raise ValueError(
            f"the decay would start at step total_steps - decay_steps = {decay_start}, before "
            f"the warm-up ends at step warmup_steps = {warmup_steps}: need warmup_steps + "
            f"decay_steps <= total_steps, got {warmup_steps} + {decay_steps} > {total_steps}."
        )

    def schedule(count):
        step = jnp.asarray(count, jnp.float32)
        rising = anneal(init_value, peak_value, remaining_fraction(step, 0, warmup_steps), "linear")
        falling = anneal(
            peak_value, end_value, remaining_fraction(step, decay_start, total_steps), anneal_strategy
        )
        peak = jnp.asarray(peak_value, jnp.float32)
        return jnp.where(step < warmup_steps, rising, jnp.where(step < decay_start, peak, falling))

    return schedule
