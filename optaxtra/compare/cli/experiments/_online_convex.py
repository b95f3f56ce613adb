"""Reddi et al.'s online convex problem: linear losses on ``[-1, 1]`` where Adam ends at the wrong end.

The losses are ``f_t(x) = C x`` when ``t mod period == 1`` (``t`` counted from
1) and ``f_t(x) = -s x`` otherwise, over ``x`` in ``[-1, 1]``. Over one period
the gradients sum to ``C - (period - 1) s > 0``, so the best fixed point is
``x = -1``. An optimizer whose second moment forgets the rare large gradient
``C`` within a period takes its ``-s`` steps at full size and the ``C`` step
scaled down by ``sqrt(v)``: Adam drifts to ``x = +1``. AMSGrad's maximum of
``v`` keeps the large gradient's scale, and ADOPT normalises each gradient by
the second moment of the *previous* steps, so the ``C`` step is not damped by
its own size.

Each step is the optimizer's update, then the projection onto ``[-1, 1]``
(``optax.projections.projection_box``), with the step size ``alpha / sqrt(t)``
of the paper. The regret after ``T`` steps is ``sum_t f_t(x_t) - f_t(-1)``;
an algorithm converges when ``regret / T`` goes to 0.

References:
  Reddi, Kale & Kumar, "On the Convergence of Adam and Beyond", ICLR 2018,
  Sections 3 and 5. https://openreview.net/forum?id=ryQu7f-RZ
  Taniguchi et al., "ADOPT: Modified Adam Can Converge with Any beta_2 with
  the Optimal Rate", NeurIPS 2024. https://arxiv.org/abs/2411.02853
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

__all__ = ["SECTION_5", "THEOREM_1", "OnlineProblem", "Trajectory", "simulate"]

# (learning-rate schedule, b1, b2) -> the optimizer; b1 and b2 may be traced.
Factory = Callable[[optax.Schedule, Any, Any], optax.GradientTransformation]


class OnlineProblem(NamedTuple):
    """One instance of the problem, with the moment decays the paper runs it at.

    Attributes:
      name: a short label.
      large: ``C``, the gradient on steps ``t mod period == 1``.
      small: ``s``, minus the gradient on the other steps.
      period: how often the large gradient comes.
      b1: the paper's first-moment decay for this instance.
      b2: the paper's second-moment decay for this instance.
      source: where the paper states it.
    """

    name: str
    large: float
    small: float
    period: int
    b1: float
    b2: float
    source: str


# Theorem 1: any C > 2 with b1 = 0, b2 = 1 / (1 + C^2) and alpha < sqrt(1 - b2); C = 3 gives b2 = 0.1.
THEOREM_1 = OnlineProblem("theorem-1", 3.0, 1.0, 3, 0.0, 0.1, "Section 3, Theorem 1 (C = 3, b2 = 1/(1+C^2))")
# The synthetic experiment: f_t = 1010 x for t mod 101 = 1, -10 x otherwise, b1 = 0.9, b2 = 0.99.
SECTION_5 = OnlineProblem("section-5", 1010.0, 10.0, 101, 0.9, 0.99, "Section 5 (C = 1010, period 101)")


class Trajectory(NamedTuple):
    """Where the iterate went, per setting (leading axis), sampled at ``steps``.

    Attributes:
      steps: the sampled step counts ``t`` (1-based, the last is ``T``).
      x: the iterate after step ``t``, shape ``(settings, len(steps))``.
      average_regret: ``regret_t / t`` at the sampled steps, same shape.
    """

    steps: np.ndarray
    x: np.ndarray
    average_regret: np.ndarray


def _sampled(steps: int, points: int) -> np.ndarray:
    """About ``points`` step counts spaced evenly on a log scale from 1 to ``steps`` (inclusive)."""
    return np.unique(np.geomspace(1, steps, points).round().astype(np.int64))


def simulate(
    problems: Sequence[OnlineProblem],
    make: Factory,
    alpha: float,
    b2s: Sequence[float],
    steps: int,
    *,
    points: int = 60,
) -> Trajectory:
    """Runs ``make`` from ``x = 0`` for ``steps`` steps on every problem at every ``b2`` of ``b2s``.

    Each (problem, ``b2``) pair, problem-major, is one lane of a ``jax.vmap``
    inside one ``lax.scan`` (one compiled program per optimizer), in float32;
    the regret is summed with Kahan's compensation, since a plain float32 sum
    of a million terms of size ~1,000 could drift by more than the gaps it
    shows.

    Args:
      problems: the instances; each runs at its own ``b1``, ``b2`` from ``b2s``.
      make: ``(schedule, b1, b2) -> GradientTransformation`` (``b1`` and
        ``b2`` are traced).
      alpha: the step size is ``alpha / sqrt(t)``.
      b2s: the second-moment decays to run.
      steps: ``T`` >= 1.
      points: about how many steps to sample (log-spaced).

    Returns:
      A ``Trajectory`` with ``len(problems) * len(b2s)`` rows.
    """
    schedule = lambda count: alpha / jnp.sqrt(count.astype(jnp.float32) + 1.0)  # t = count + 1.
    sampled = _sampled(steps, points)
    lanes = [(p.large, p.small, p.period, p.b1, b2) for p in problems for b2 in b2s]
    large, small, period, b1, b2 = (jnp.asarray(column) for column in zip(*lanes))

    def one(large: jax.Array, small: jax.Array, period: jax.Array, b1: jax.Array, b2: jax.Array) -> jax.Array:
        tx = make(schedule, b1, b2)

        def step(carry, t):
            x, state, regret, lost = carry
            g = jnp.where(t % period == 1, large, -small).astype(jnp.float32)
            term = g * (x + 1.0) - lost  # f_t(x_t) - f_t(-1), before the step; Kahan-compensated.
            total = regret + term
            lost = (total - regret) - term
            updates, state = tx.update(g, state, x)
            x = optax.projections.projection_box(optax.apply_updates(x, updates), -1.0, 1.0)
            return (x, state, total, lost), jnp.stack([x, total / t.astype(jnp.float32)])

        x0, zero = jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32)
        ts = jnp.arange(1, steps + 1, dtype=jnp.int32)
        _, outputs = jax.lax.scan(step, (x0, tx.init(x0), zero, zero), ts)
        return outputs[sampled - 1]

    program = jax.jit(jax.vmap(one))
    outputs = np.asarray(program(large.astype(jnp.float32), small.astype(jnp.float32),
                                 period.astype(jnp.int32), b1.astype(jnp.float32), b2.astype(jnp.float32)))
    return Trajectory(sampled, outputs[..., 0], outputs[..., 1])
