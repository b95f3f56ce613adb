"""Weight decay, in the two places a chain can apply it.

* ``add_decayed_weights`` adds ``wd * p`` to the updates *before* the
  learning-rate scaling: placed before the moments it is L2 regularisation
  (PyTorch ``Adam(weight_decay=...)``, ``SGD``); placed after them it is the
  decay LAMB feeds into its trust ratio, or AdamW coupled to the LR.
* ``decoupled_weight_decay`` subtracts ``factor * wd * p`` *after* the
  learning-rate scaling, with the coupling to the LR stated explicitly.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .._hyperparams import ScalarOrSchedule, resolve
from .._xla import increment
from .._leaves import frozen_update, is_trainable
from .._tree_checks import check_state_type, check_tree_matches
from .._validation import check_real
from ._masking import Mask, check_mask, resolve_mask

__all__ = [
    "AddDecayedWeightsState",
    "DecoupledWeightDecayState",
    "add_decayed_weights",
    "decoupled_weight_decay",
]


class AddDecayedWeightsState(NamedTuple):
    """State of ``add_decayed_weights``.

    Attributes:
      count: the number of updates applied (int32), at which a scheduled
        ``weight_decay`` is evaluated.
    """

    count: jax.Array


class DecoupledWeightDecayState(NamedTuple):
    """State of ``decoupled_weight_decay``.

    Attributes:
      count: the number of updates applied (int32), at which a scheduled
        ``weight_decay`` or ``learning_rate`` is evaluated.
    """

    count: jax.Array


def _decay(
    name: str,
    state_type: type,
    coefficient: Callable[[jax.Array], jax.Array],
    mask: Mask | None,
) -> optax.GradientTransformation:
    """``u + coefficient(count) * p`` on the masked leaves."""
    check_mask("mask", mask)

    def init_fn(params):
        resolve_mask(mask, params)
        return state_type(jnp.zeros([], jnp.int32))

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError(f"{name} needs the params: call update(updates, state, params).")
        check_state_type(state, state_type, name)
        check_tree_matches(updates, params, piece=name)
        factor = coefficient(state.count)
        selected = resolve_mask(mask, params)

        def leaf(u, p, keep):
            if not is_trainable(p):
                return frozen_update(u, p)
            p = jnp.asarray(p)
            return (u + factor.astype(p.dtype) * p).astype(u.dtype) if keep else u

        updates = jax.tree.map(leaf, updates, params, selected)
        return updates, state_type(increment(state.count))

    return optax.GradientTransformation(init_fn, update_fn)


def add_decayed_weights(
    weight_decay: ScalarOrSchedule, *, mask: Mask | None = None
) -> optax.GradientTransformation:
    """Adds ``weight_decay * params`` to the updates (before the LR scaling).

    Like ``optax.add_decayed_weights``, but ``weight_decay`` may be a schedule.

    Args:
      weight_decay: the coefficient, >= 0: a number, array or schedule.
      mask: which params decay: a pytree of bools or a callable returning one.

    Returns:
      An ``optax.GradientTransformation``; its ``update`` needs ``params``.

    Example:
      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.add_decayed_weights(0.1)
      >>> params = jnp.array([2.0, -4.0])
      >>> updates, _ = tx.update(jnp.ones(2), tx.init(params), params)
      >>> updates
      Array([1.2, 0.6], dtype=float32)
    """
    check_real("weight_decay", weight_decay, 0.0)
    return _decay(
        "add_decayed_weights",
        AddDecayedWeightsState,
        lambda count: resolve(weight_decay, count),
        mask,
    )


def decoupled_weight_decay(
    weight_decay: ScalarOrSchedule,
    learning_rate: ScalarOrSchedule | None = None,
    *,
    mask: Mask | None = None,
) -> optax.GradientTransformation:
    r"""Subtracts ``factor * weight_decay * params`` from the final updates.

    Place it **after** the learning-rate scaling, so that the decay bypasses
    the adaptive rescaling (that is what "decoupled" means) and its size is
    stated here rather than hidden in the learning rate:

    * ``learning_rate`` given (coupled to the LR; PyTorch ``AdamW``, optax
      ``adamw``): ``p <- p - lr_t * wd * p``. With ``lr = 1e-3`` and
      ``wd = 1e-2`` the per-step decay is 1e-5.
    * ``learning_rate=None`` (independent of the LR; Loshchilov & Hutter's
      ``eta_t * lambda`` with ``weight_decay`` as that schedule, TF-Addons'
      ``AdamW``): ``p <- p - wd_t * p``.

    Args:
      weight_decay: the decay, >= 0: a number, array or schedule.
      learning_rate: the learning rate the decay is multiplied by, or None.
      mask: which params decay: a pytree of bools like the params or a
        callable returning one (e.g. ``optaxtra.exclude_paths("bias|scale")``).

    Returns:
      An ``optax.GradientTransformation``; its ``update`` needs ``params``.

    Example:
      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.decoupled_weight_decay(0.1, learning_rate=0.5)
      >>> params = jnp.array([2.0, -4.0])
      >>> updates, _ = tx.update(jnp.zeros(2), tx.init(params), params)
      >>> updates  # -0.5 * 0.1 * params
      Array([-0.1,  0.2], dtype=float32)

    References:
      Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
      https://arxiv.org/abs/1711.05101
    """
    check_real("weight_decay", weight_decay, 0.0)
    if learning_rate is not None:
        check_real("learning_rate", learning_rate, 0.0)

    def coefficient(count):
        factor = resolve(weight_decay, count)
        if learning_rate is not None:
            factor = factor * resolve(learning_rate, count)
        return -factor

    return _decay("decoupled_weight_decay", DecoupledWeightDecayState, coefficient, mask)
