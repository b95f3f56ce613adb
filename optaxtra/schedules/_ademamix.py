"""AdEMAMix's warm-ups: ``alpha`` linear from 0, a momentum's decay linear in its half-life.

Both read the step ``s = count + first_step``: ``first_step=1`` reads the
paper's ``t`` (1 on the first update), as the authors' PyTorch code
(apple/ml-ademamix ``pytorch/ademamix.py``, DepenM/Simplified-AdEMAMix) and
pytorch-optimizer 4.1 do; ``first_step=0`` reads one update earlier, as
``optax.contrib.ademamix`` and the authors' optax code do.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import optax

from .._hyperparams import Decay, ScalarOrSchedule, resolve_decay
from .._validation import check_int, check_real

__all__ = ["HalfLifeWarmup", "ademamix_alpha_warmup", "half_life_warmup", "resolve_beta"]


def _step(count: jax.Array, first_step: int) -> jax.Array:
    return jnp.asarray(count, jnp.float32) + jnp.float32(first_step)


def ademamix_alpha_warmup(alpha: Any, warmup_steps: int, *, first_step: int = 1) -> optax.Schedule:
    r"""AdEMAMix's ``alpha_t = alpha * min(s / T, 1)``, with ``s = count + first_step``.

    Args:
      alpha: the final value, >= 0 (a number or array).
      warmup_steps: ``T``, an integer >= 1.
      first_step: the step the first update reads: 1 (the paper, the authors'
        PyTorch code, pytorch-optimizer) or 0 (optax.contrib, the authors'
        optax code).

    Returns:
      A schedule ``count -> float32 alpha_t``.

    Example:
      >>> import jax.numpy as jnp, optaxtra
      >>> schedule = optaxtra.ademamix_alpha_warmup(5.0, 10)
      >>> print(schedule(jnp.int32(0)), schedule(jnp.int32(9)), schedule(jnp.int32(20)))
      0.5 5.0 5.0
    """
    check_real("alpha", alpha, 0.0, allow_schedule=False)
    check_int("warmup_steps", warmup_steps, 1)
    check_int("first_step", first_step, 0)

    def schedule(count: jax.Array) -> jax.Array:
        fraction = jnp.minimum(_step(count, first_step) / jnp.float32(warmup_steps), 1.0)
        return jnp.asarray(alpha, jnp.float32) * fraction

    return schedule


def _log(value: Any, eps: float) -> jax.Array:
    """``log(value + eps)`` as float32, from float64 for a Python number (-inf at 0)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        shifted = float(value) + eps
        return jnp.float32(math.log(shifted) if shifted > 0 else -math.inf)
    return jnp.log(jnp.asarray(value, jnp.float32) + jnp.float32(eps))


class HalfLifeWarmup:
    r"""A decay warmed up from ``start`` to ``end`` linearly in ``f(b) = log(1/2) / log(b) - 1``.

    ``f(b) + 1`` is the half-life of an EMA with decay ``b`` in steps. At
    ``a = min(s / T, 1)`` the decay is
    ``b_s = f^{-1}((1 - a) f(start) + a f(end))``, so that
    ``log b_s = 1 / ((1 - a) / log(start) + a / log(end))``, and ``end`` from
    ``s = T`` on. The authors' PyTorch code takes both logs of ``b + 1e-8``
    (``log_eps``); the paper, the authors' optax code, pytorch-optimizer and
    optax.contrib have none (``log_eps=0``).

    Called, it is a schedule ``count -> b_s`` (float32). The pieces read
    ``decay(count)`` instead, whose ``1 - b_s`` is computed from ``log b_s``
    (``-expm1``): ``1 - float32(b_s)`` would be off by up to 3e-4 of itself
    at ``b_s = 0.9999``.
    """

    def __init__(self, start: Any, end: Any, warmup_steps: int, first_step: int, log_eps: float):
        self.start, self.end, self.warmup_steps = start, end, warmup_steps
        self.first_step, self.log_eps = first_step, log_eps

    def decay(self, count: jax.Array) -> Decay:
        """``b_s`` with an accurate ``1 - b_s`` (from ``log b_s``), as the pieces take a decay.

        From ``s = T`` on it is ``end`` as ``resolve_decay`` gives it (for a
        Python number, ``1 - end`` and ``log end`` from float64), so that after
        the warm-up the decay is exactly the one given without it.
        """
        fraction = jnp.minimum(_step(count, self.first_step) / jnp.float32(self.warmup_steps), 1.0)
        log_start, log_end = _log(self.start, self.log_eps), _log(self.end, self.log_eps)
        log = 1.0 / ((1.0 - fraction) / log_start + fraction / log_end)
        warming, end = Decay(jnp.exp(log), -jnp.expm1(log), log), resolve_decay(self.end, count)
        return Decay(*(jnp.where(fraction < 1.0, w, e) for w, e in zip(warming, end)))

    def __call__(self, count: jax.Array) -> jax.Array:
        return self.decay(count).rate


def half_life_warmup(
    start: Any, end: Any, warmup_steps: int, *, first_step: int = 1, log_eps: float = 1e-8
) -> HalfLifeWarmup:
    r"""AdEMAMix's warm-up of a decay (``b3`` from ``b1``; simplified AdEMAMix's ``b1``).

    .. math::
      a = \min(s / T, 1),\quad
      \log b_s = \left(\frac{1 - a}{\log(b_{start} + \epsilon)}
      + \frac{a}{\log(b_{end} + \epsilon)}\right)^{-1} \ (s < T),\quad b_s = b_{end}\ (s \ge T)

    with ``s = count + first_step``: linear in the half-life. The defaults
    follow the authors' PyTorch code (``first_step=1``, ``log_eps=1e-8``).

    Args:
      start: the decay at ``s = 0``, in [0, 1) (a number or array).
      end: the decay from ``s = T`` on, in [0, 1).
      warmup_steps: ``T``, an integer >= 1.
      first_step: the step the first update reads: 1 or 0 (see the module).
      log_eps: added to both decays inside the logs, >= 0.

    Returns:
      A ``HalfLifeWarmup``: a schedule ``count -> b_s``.

    Example:
      Half way, the half-life is half way: from 1 step (0.5) to 3 steps (0.5**(1/3)).

      >>> import jax.numpy as jnp, optaxtra
      >>> warmup = optaxtra.half_life_warmup(0.5, 0.5 ** (1 / 3), 4, log_eps=0.0)
      >>> print(f"{float(warmup(jnp.int32(1))):.6f} {0.5 ** (1 / 2):.6f}")
      0.707107 0.707107
    """
    check_real("start", start, 0.0, 1.0, high_open=True, allow_schedule=False)
    check_real("end", end, 0.0, 1.0, high_open=True, allow_schedule=False)
    check_int("warmup_steps", warmup_steps, 1)
    check_int("first_step", first_step, 0)
    check_real("log_eps", log_eps, 0.0, allow_schedule=False)
    return HalfLifeWarmup(start, end, warmup_steps, first_step, log_eps)


def resolve_beta(value: ScalarOrSchedule | HalfLifeWarmup, count: jax.Array) -> Decay:
    """A decay at step ``count``: ``value.decay(count)`` for a warm-up, else ``resolve_decay``."""
    if isinstance(value, HalfLifeWarmup):
        return value.decay(count)
    return resolve_decay(value, count)
