"""RAdam's rectification as a warm-up of the learning rate."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from .._hyperparams import ScalarOrSchedule, resolve
from .._validation import check_real
from .._xla import increment
from ..transforms._rectifier import radam_rectification, radam_rho

__all__ = ["rectified_warmup"]


def rectified_warmup(learning_rate: ScalarOrSchedule, b2: float = 0.999) -> optax.Schedule:
    r"""``learning_rate * r_t``: RAdam's rectification term as a schedule, 0 while ``rho_t <= 4``.

    .. math::
      \eta(t) = \eta_{base}(t)\, r_{t+1},\quad
      r_t = \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\rho_\infty}{(\rho_\infty - 4)(\rho_\infty - 2)\rho_t}}

    at step count ``t`` (0 on the first update; ``r`` is indexed by the
    1-based step). This is how the authors' ``RAdamScheduleFree`` rectifies:
    it multiplies the learning rate, so the Schedule-Free averaging weights
    (which depend on the largest learning rate so far) see it too. With their
    default ``silent_sgd_phase=True`` the steps with ``rho_t <= 4`` (the
    first four at ``b2 = 0.999``) have rate 0.

    Args:
      learning_rate: the rate to rectify: a number >= 0, an array or a schedule.
      b2: the second-moment decay ``r_t`` is computed for, in [0, 1).

    Returns:
      A schedule ``count -> float32 rate``.

    Example:
      >>> import optaxtra
      >>> schedule = optaxtra.rectified_warmup(1.0, b2=0.999)
      >>> [round(float(schedule(t)), 4) for t in (0, 3, 4, 5)]
      [0.0, 0.0, 0.0173, 0.0258]

    References:
      Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond"
      (RAdam), ICLR 2020. https://arxiv.org/abs/1908.03265
    """
    check_real("learning_rate", learning_rate, 0.0)
    check_real("b2", b2, 0.0, 1.0, high_open=True, allow_schedule=False)

    def schedule(count: jax.Array) -> jax.Array:
        count = jnp.asarray(count, jnp.int32)
        return resolve(learning_rate, count) * radam_rectification(*radam_rho(increment(count), b2))

    return schedule
