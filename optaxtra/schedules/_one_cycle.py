"""One-cycle: the learning rate and the momentum (Adam's b1) scheduled together."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import optax

from .._validation import check_bool, check_choice, check_int, check_real
from ._anneal import ANNEAL_STRATEGIES, AnnealStrategy, Scalar, anneal, remaining_fraction

__all__ = ["OneCycle", "one_cycle"]


class OneCycle(NamedTuple):
    """The two schedules of a one-cycle policy.

    Attributes:
      learning_rate: ``step -> rate``; pass it as any optimizer's
        ``learning_rate``.
      momentum: ``step -> momentum``, moving opposite to the rate; pass it as
        Adam's ``b1`` (PyTorch's ``OneCycleLR`` cycles ``betas[0]`` the same way).
    """

    learning_rate: optax.Schedule
    momentum: optax.Schedule


def _piecewise(ends: list, values: list, strategy: AnnealStrategy) -> optax.Schedule:
    """Phase ``i`` runs from ``ends[i-1]`` (0 for the first) to ``ends[i]``."""

    def schedule(count):
        step = jnp.asarray(count, jnp.float32)
        starts = [0.0] + ends[:-1]
        phases = [
            anneal(first, last, remaining_fraction(step, begin, end), strategy)
            for begin, end, (first, last) in zip(starts, ends, values)
        ]
        value = phases[-1]
        for end, phase in zip(reversed(ends[:-1]), reversed(phases[:-1])):
            value = jnp.where(step <= end, phase, value)
        return value

    return schedule


def one_cycle(
    total_steps: int,
    peak_value: Scalar,
    pct_start: float = 0.3,
    *,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    anneal_strategy: AnnealStrategy = "cos",
    three_phase: bool = False,
    max_momentum: Scalar = 0.95,
    base_momentum: Scalar = 0.85,
) -> OneCycle:
    r"""The one-cycle policy, step for step as PyTorch's ``OneCycleLR``.

    The rate rises from ``peak_value / div_factor`` to ``peak_value`` while the
    momentum falls from ``max_momentum`` to ``base_momentum``; then the rate
    falls to ``peak_value / div_factor / final_div_factor`` while the momentum
    rises back. Phase ends are at steps ``pct_start * total_steps - 1`` and
    ``total_steps - 1`` (``three_phase``: ``pct_start * T - 1``,
    ``2 * pct_start * T - 2`` and ``T - 1``, the second phase mirroring the
    first and the third annealing to the floor at ``max_momentum``), exactly
    as ``torch.optim.lr_scheduler.OneCycleLR(cycle_momentum=True)``: the value
    at step count ``t`` (0 on the first update) is the scheduler's value
    after ``t`` calls of ``scheduler.step()``. Past ``total_steps - 1`` the
    final values are held (PyTorch raises).

    Defaults are PyTorch's. fastai's ``fit_one_cycle`` cycles the same
    momenta (``moms=(0.95, 0.85, 0.95)``) with ``pct_start=0.25`` and a final
    rate of ``peak / 1e5`` (``final_div_factor=4e3`` here), its phases placed
    on the fraction ``step / T``; optax's ``cosine_onecycle_schedule`` places
    its boundaries at ``pct_start * T`` and ``T`` and has no momentum.

    Args:
      total_steps: ``T``, the number of updates in the cycle, >= 1.
      peak_value: the maximum rate, >= 0 (may be a traced array).
      pct_start: fraction of the cycle spent raising the rate, in (0, 1);
        at most 0.5 with ``three_phase``.
      div_factor: initial rate is ``peak_value / div_factor``, > 0.
      final_div_factor: final rate is the initial rate / this, > 0.
      anneal_strategy: ``"cos"`` or ``"linear"``.
      three_phase: use the three-phase cycle of Smith's paper.
      max_momentum: momentum at the start and end of the cycle, in [0, 1).
      base_momentum: momentum at the peak rate, in [0, 1).

    Returns:
      ``OneCycle(learning_rate, momentum)``, two schedules.

    Raises:
      ValueError: for ``pct_start`` outside (0, 1) or a non-positive
        ``total_steps``.

    Example:
      >>> import optaxtra
      >>> cycle = optaxtra.one_cycle(total_steps=10, peak_value=1.0, anneal_strategy="linear")
      >>> [round(float(cycle.learning_rate(t)), 3) for t in (0, 1, 2, 9)]
      [0.04, 0.52, 1.0, 0.0]
      >>> [round(float(cycle.momentum(t)), 3) for t in (0, 1, 2, 9)]
      [0.95, 0.9, 0.85, 0.95]
      >>> tx = optaxtra.adam(learning_rate=cycle.learning_rate, b1=cycle.momentum)

    References:
      Smith & Topin, "Super-Convergence: Very Fast Training of Neural Networks
      Using Large Learning Rates", 2017. https://arxiv.org/abs/1708.07120

      Smith, "A disciplined approach to neural network hyper-parameters: Part
      1", 2018. https://arxiv.org/abs/1803.09820
    """
    check_int("total_steps", total_steps, 1)
    check_real("peak_value", peak_value, 0.0, allow_schedule=False)
    check_real("pct_start", pct_start, 0.0, 1.0, low_open=True, high_open=True, allow_schedule=False)
    check_real("div_factor", div_factor, 0.0, low_open=True, allow_schedule=False)
    check_real("final_div_factor", final_div_factor, 0.0, low_open=True, allow_schedule=False)
    check_choice("anneal_strategy", anneal_strategy, ANNEAL_STRATEGIES)
    check_bool("three_phase", three_phase)
    check_real("max_momentum", max_momentum, 0.0, 1.0, high_open=True, allow_schedule=False)
    check_real("base_momentum", base_momentum, 0.0, 1.0, high_open=True, allow_schedule=False)
    if three_phase:
        check_real("pct_start (with three_phase=True)", pct_start, 0.0, 0.5, low_open=True)

    # Python arithmetic first: float64 for Python numbers, like PyTorch's.
    initial = peak_value / div_factor
    floor = initial / final_div_factor
    rise_end = pct_start * total_steps - 1
    if three_phase:
        ends = [rise_end, 2 * pct_start * total_steps - 2, total_steps - 1]
        rates = [(initial, peak_value), (peak_value, initial), (initial, floor)]
        momenta = [(max_momentum, base_momentum), (base_momentum, max_momentum), (max_momentum, max_momentum)]
    else:
        ends = [rise_end, total_steps - 1]
        rates = [(initial, peak_value), (peak_value, floor)]
        momenta = [(max_momentum, base_momentum), (base_momentum, max_momentum)]
    return OneCycle(
        learning_rate=_piecewise(ends, rates, anneal_strategy),
        momentum=_piecewise(ends, momenta, anneal_strategy),
    )
