"""``delayed``: a hyperparameter that is 0 for the first updates, then its own value."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from .._hyperparams import ScalarOrSchedule, resolve
from .._validation import check_int, check_real

__all__ = ["delayed"]


def delayed(value: ScalarOrSchedule, steps: int = 1) -> optax.Schedule:
    r"""0 for the first ``steps`` updates, then ``value`` (read at the same step).

    .. math::
      f(t) = 0 \text{ for } t < T,\qquad f(t) = \mathrm{value}(t) \text{ otherwise}

    ``t`` is the step count (0 on the first update). ADOPT's first update
    only initialises its second moment and moves nothing; the authors'
    torch-adopt and timm skip the decoupled weight decay on it too, which
    ``add_decayed_weights(delayed(weight_decay))`` reproduces.

    Args:
      value: a number >= 0, an array or a schedule.
      steps: the number of first updates at which the value is 0, >= 0.

    Returns:
      A schedule ``step -> float32 value``.

    Example:
      >>> import jax.numpy as jnp, optaxtra
      >>> schedule = optaxtra.delayed(0.1)
      >>> print(schedule(jnp.int32(0)), schedule(jnp.int32(1)))
      0.0 0.1
    """
    check_real("value", value, 0.0)
    check_int("steps", steps, 0)

    def schedule(count: jax.Array) -> jax.Array:
        return jnp.where(jnp.asarray(count) < steps, jnp.float32(0.0), resolve(value, count))

    return schedule
