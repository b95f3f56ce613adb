"""The learning-rate schedules of stochastic weight averaging: constant (SWALR) or cyclic."""

from __future__ import annotations

import jax.numpy as jnp
import optax

from .._hyperparams import ScalarOrSchedule, resolve
from .._validation import check_choice, check_int, check_real
from ._anneal import ANNEAL_STRATEGIES, AnnealStrategy, Scalar, anneal

__all__ = ["swa_learning_rate", "swa_cyclic_learning_rate"]


def swa_learning_rate(
    learning_rate: ScalarOrSchedule,
    swa_lr: Scalar,
    start_step: int,
    *,
    anneal_steps: int = 0,
    anneal_strategy: AnnealStrategy = "cos",
) -> optax.Schedule:
    r"""``learning_rate`` until ``start_step``, then annealed to the constant ``swa_lr``.

    With ``s = start_step``, ``A = anneal_steps`` and ``eta_s`` the rate the
    base schedule gives at step ``s``:

    .. math::
      \eta(t) = \begin{cases} \eta_{base}(t) & t \le s \\
        \eta_s + (\eta_{swa} - \eta_s)\, \alpha\!\left(\min(1, (t - s)/A)\right) & t > s
      \end{cases}

    with ``alpha(x) = x`` (``"linear"``) or ``(1 - cos(pi x)) / 2`` (``"cos"``);
    ``A = 0`` switches to ``swa_lr`` at step ``s``. This is PyTorch's ``SWALR``
    taking over from another scheduler: after ``j`` calls of
    ``swa_scheduler.step()`` its rate is the expression above at
    ``t = s + j``, where ``eta_s`` is the rate the optimizer had when it took
    over. (PyTorch's docs step it once per epoch; here one step is one update.)
    Average with ``swa_averaging`` from ``start_step`` on.

    Args:
      learning_rate: the rate before the SWA phase: a number >= 0, array or
        schedule (evaluated at the update's step count).
      swa_lr: the constant rate of the SWA phase, >= 0.
      start_step: ``s``, the step count at which the annealing starts, >= 0.
      anneal_steps: ``A``, steps to reach ``swa_lr``, >= 0 (PyTorch's
        ``anneal_epochs``, default 10 there). With 0 the rate is ``swa_lr``
        from step ``s`` on; ``SWALR(anneal_epochs=0)`` switches when it is
        created, so the two agree when it is created at step ``s``.
      anneal_strategy: ``"cos"`` (PyTorch's default) or ``"linear"``.

    Returns:
      A schedule ``step -> float32 value``.

    Example:
      >>> import optaxtra
      >>> schedule = optaxtra.swa_learning_rate(0.1, swa_lr=0.05, start_step=2, anneal_steps=2,
      ...                                       anneal_strategy="linear")
      >>> [round(float(schedule(t)), 3) for t in range(6)]
      [0.1, 0.1, 0.1, 0.075, 0.05, 0.05]

    References:
      Izmailov et al., "Averaging Weights Leads to Wider Optima and Better
      Generalization", UAI 2018. https://arxiv.org/abs/1803.05407
    """
    check_real("learning_rate", learning_rate, 0.0)
    check_real("swa_lr", swa_lr, 0.0, allow_schedule=False)
    check_int("start_step", start_step, 0)
    check_int("anneal_steps", anneal_steps, 0)
    check_choice("anneal_strategy", anneal_strategy, ANNEAL_STRATEGIES)

    def schedule(count):
        count = jnp.asarray(count, jnp.int32)
        held = resolve(learning_rate, jnp.minimum(count, start_step))
        since = (count - start_step).astype(jnp.float32)
        done = since / anneal_steps if anneal_steps else jnp.where(since >= 0, 1.0, 0.0)
        return anneal(held, swa_lr, 1.0 - jnp.clip(done, 0.0, 1.0), anneal_strategy)

    return schedule


def swa_cyclic_learning_rate(
    learning_rate: ScalarOrSchedule,
    cycle_max: Scalar,
    cycle_min: Scalar,
    start_step: int,
    cycle_steps: int,
) -> optax.Schedule:
    r"""``learning_rate`` until ``start_step``, then linear cycles from ``cycle_max`` down to ``cycle_min``.

    The SWA paper's cyclical rate: with ``c = cycle_steps`` and ``i`` the
    1-based index of an update in the SWA phase,

    .. math::
      \eta(i) = (1 - u(i))\, \alpha_1 + u(i)\, \alpha_2,\qquad u(i) = \frac{((i - 1) \bmod c) + 1}{c}

    so every cycle's last update runs at ``alpha_2 = cycle_min``, and the
    params after it are the ones averaged: use ``swa_averaging(...,
    start_step=start_step, period=cycle_steps)``. ``c = 1`` is the constant
    rate ``cycle_min``.

    Args:
      learning_rate: the rate before the SWA phase: a number >= 0, array or
        schedule.
      cycle_max: ``alpha_1`` >= 0.
      cycle_min: ``alpha_2`` >= 0.
      start_step: the step count of the first update of the SWA phase, >= 0.
      cycle_steps: ``c`` >= 1.

    Returns:
      A schedule ``step -> float32 value``.

    Example:
      >>> import optaxtra
      >>> schedule = optaxtra.swa_cyclic_learning_rate(1.0, 0.4, 0.1, start_step=2, cycle_steps=3)
      >>> [round(float(schedule(t)), 3) for t in range(8)]
      [1.0, 1.0, 0.3, 0.2, 0.1, 0.3, 0.2, 0.1]

    References:
      Izmailov et al., "Averaging Weights Leads to Wider Optima and Better
      Generalization", UAI 2018, section 3.1 and Algorithm 1.
      https://arxiv.org/abs/1803.05407
    """
    check_real("learning_rate", learning_rate, 0.0)
    check_real("cycle_max", cycle_max, 0.0, allow_schedule=False)
    check_real("cycle_min", cycle_min, 0.0, allow_schedule=False)
    check_int("start_step", start_step, 0)
    check_int("cycle_steps", cycle_steps, 1)

    def schedule(count):
        count = jnp.asarray(count, jnp.int32)
        position = jnp.mod(jnp.maximum(count - start_step, 0), cycle_steps)
        remaining = (cycle_steps - 1 - position).astype(jnp.float32) / cycle_steps
        cyclic = anneal(cycle_max, cycle_min, remaining, "linear")
        return jnp.where(count < start_step, resolve(learning_rate, count), cyclic)

    return schedule
