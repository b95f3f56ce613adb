"""``scale_by_learning_rate``: the final ``-learning_rate`` scaling, recorded for diagnostics."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from .._diagnostics import register_diagnostics
from .._hyperparams import ScalarOrSchedule, resolve
from .._xla import increment, overwrite
from .._leaves import frozen_update, is_trainable
from .._tree_checks import check_state_type, check_tree_matches
from .._validation import check_bool, check_real

__all__ = ["ScaleByLearningRateState", "scale_by_learning_rate"]


class ScaleByLearningRateState(NamedTuple):
    """State of ``scale_by_learning_rate``.

    Attributes:
      count: number of updates applied so far (int32).
      learning_rate: the learning rate used by the last update (float32), so
        that ``optaxtra.diagnostics`` can report it; 0 before the first update.
    """

    count: jax.Array
    learning_rate: jax.Array


def scale_by_learning_rate(
    learning_rate: ScalarOrSchedule, *, flip_sign: bool = True
) -> optax.GradientTransformation:
    """Multiplies updates by ``-learning_rate`` (or ``+`` with ``flip_sign=False``).

    Like ``optax.scale_by_learning_rate``, but the value used at each step is kept
    in the state for ``optaxtra.diagnostics``. A schedule is evaluated at the
    number of updates applied before this one (0 on the first).

    Args:
      learning_rate: a number >= 0, an array or a schedule.
      flip_sign: multiply by ``-learning_rate`` (gradient descent).

    Returns:
      An ``optax.GradientTransformation`` with state ``ScaleByLearningRateState``.

    Example:
      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.scale_by_learning_rate(0.1)
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), tx.init(jnp.zeros(2)))
      >>> updates
      Array([-0.1,  0.2], dtype=float32)
    """
    check_real("learning_rate", learning_rate, 0.0)
    check_bool("flip_sign", flip_sign)
    sign = -1.0 if flip_sign else 1.0

    def init_fn(params):
        del params
        return ScaleByLearningRateState(jnp.zeros([], jnp.int32), jnp.zeros([], jnp.float32))

    def update_fn(updates, state, params=None):
        check_state_type(state, ScaleByLearningRateState, "scale_by_learning_rate")
        if params is not None:
            check_tree_matches(updates, params, piece="scale_by_learning_rate")
        rate = resolve(learning_rate, state.count)

        def scale(u, p=None):
            return (sign * rate).astype(u.dtype) * u if is_trainable(u) else frozen_update(u, p)

        updates = jax.tree.map(scale, updates, *([] if params is None else [params]))
        return updates, ScaleByLearningRateState(
            increment(state.count), overwrite(state.learning_rate, rate)
        )

    return optax.GradientTransformation(init_fn, update_fn)


register_diagnostics(ScaleByLearningRateState, lambda s: {"learning_rate": s.learning_rate})
