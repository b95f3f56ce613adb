"""``cautious_weight_decay``: decay only the coordinates the update already moves towards zero."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from .._hyperparams import ScalarOrSchedule, compute_dtype, resolve
from .._leaves import frozen_update, is_trainable
from .._tree_checks import check_state_type, check_tree_matches
from .._validation import check_real
from .._xla import increment
from ._masking import Mask, check_mask, resolve_mask

__all__ = ["CautiousWeightDecayState", "cautious_weight_decay"]


class CautiousWeightDecayState(NamedTuple):
    """State of ``cautious_weight_decay``.

    Attributes:
      count: the number of updates applied (int32), at which a scheduled
        ``weight_decay`` is evaluated.
    """

    count: jax.Array


def cautious_weight_decay(
    weight_decay: ScalarOrSchedule, *, mask: Mask | None = None
) -> optax.GradientTransformation:
    r"""Adds ``weight_decay * p`` where the update and the param have the same sign.

    .. math::
      u \leftarrow u + \lambda_t\, [\mathrm{Re}(u \bar p) > 0]\, p

    Placed where ``add_decayed_weights`` would be, after the direction and
    before ``scale_by_learning_rate``: the step ``-lr (u + ...)`` then moves
    ``p`` towards zero only on coordinates the direction already moves
    towards zero, and the decay never works against the direction (Chen et
    al.'s cautious weight decay; lion-pytorch's ``cautious_wd=True``, whose
    strict ``>`` this follows: a zero entry of ``u`` is not decayed).

    Args:
      weight_decay: ``lambda`` >= 0: a number, array or schedule.
      mask: which params decay: a pytree of bools or a callable returning one.

    Returns:
      An ``optax.GradientTransformation``; its ``update`` needs ``params``.

    Example:
      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.cautious_weight_decay(0.5)
      >>> params = jnp.array([2.0, 2.0, -4.0])
      >>> updates, _ = tx.update(jnp.array([1.0, -1.0, -1.0]), tx.init(params), params)
      >>> updates  # the first and last agree in sign with their param: + 0.5 p
      Array([ 2., -1., -3.], dtype=float32)

    References:
      Chen, Li, Liang, Su, Xie, Pierse, Liang, Lao & Liu, "Cautious Weight
      Decay", 2025. https://arxiv.org/abs/2510.12402
    """
    check_real("weight_decay", weight_decay, 0.0)
    check_mask("mask", mask)

    def init_fn(params):
        resolve_mask(mask, params)
        return CautiousWeightDecayState(jnp.zeros([], jnp.int32))

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("cautious_weight_decay needs the params: call update(updates, state, params).")
        check_state_type(state, CautiousWeightDecayState, "cautious_weight_decay")
        check_tree_matches(updates, params, piece="cautious_weight_decay")
        factor = resolve(weight_decay, state.count)
        selected = resolve_mask(mask, params)

        def leaf(u, p, keep):
            if not is_trainable(p):
                return frozen_update(u, p)
            if not keep:
                return u
            dtype = compute_dtype(jnp.result_type(u))
            u32, p32 = jnp.asarray(u).astype(dtype), jnp.asarray(p).astype(dtype)
            agree = jnp.real(u32 * jnp.conj(p32)) > 0
            return (u32 + jnp.where(agree, factor.astype(dtype) * p32, 0)).astype(jnp.result_type(u))

        updates = jax.tree.map(leaf, updates, params, selected)
        return updates, CautiousWeightDecayState(increment(state.count))

    return optax.GradientTransformation(init_fn, update_fn)
