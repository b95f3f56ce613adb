"""Weight decay, in the two places a chain can apply it.

* ``add_decayed_weights`` adds ``wd * p`` to the updates *before* the
  learning-rate scaling: placed before the moments it is L2 regularisation
  (PyTorch ``Adam(weight_decay=...)``, ``SGD``); placed after them it is
  decoupled decay multiplied by the learning rate (PyTorch ``AdamW``, optax
  ``adamw``: ``-lr * (u + wd * p)``), or the decay LAMB feeds into its trust
  ratio.
* ``decoupled_weight_decay`` subtracts ``wd * p`` *after* the learning-rate
  scaling: decay independent of the learning rate (Loshchilov & Hutter's
  ``eta_t * lambda`` with ``weight_decay`` as that schedule; TF-Addons).

Both do nothing for a ``weight_decay`` of the number 0: the updates pass
through and the params are not read. The state is the same as for any other
value (a step count), so ``optax.inject_hyperparams``, which turns the number
into an array, builds the same state.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from .._hyperparams import ScalarOrSchedule, is_exactly_zero, resolve
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
        ``weight_decay`` is evaluated.
    """

    count: jax.Array


def _decay(
    name: str,
    state_type: type,
    weight_decay: ScalarOrSchedule,
    sign: float,
    mask: Mask | None,
) -> optax.GradientTransformation:
    """``u + sign * weight_decay(count) * p`` on the masked leaves; the number 0 passes ``u`` through."""
    check_real("weight_decay", weight_decay, 0.0)
    check_mask("mask", mask)
    inactive = is_exactly_zero(weight_decay)

    def init_fn(params):
        resolve_mask(mask, params)
        return state_type(jnp.zeros([], jnp.int32))

    def update_fn(updates, state, params=None):
        check_state_type(state, state_type, name)
        if inactive:
            return updates, state_type(increment(state.count))
        if params is None:
            raise ValueError(f"{name} needs the params: call update(updates, state, params).")
        check_tree_matches(updates, params, piece=name)
        factor = sign * resolve(weight_decay, state.count)
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
    Placed after an adaptive direction and before ``scale_by_learning_rate``
    it is AdamW's decay, multiplied by the learning rate.

    Args:
      weight_decay: the coefficient, >= 0: a number, array or schedule. The
        number 0 passes the updates through (and needs no ``params``).
      mask: which params decay: a pytree of bools or a callable returning one.

    Returns:
      An ``optax.GradientTransformation``; its ``update`` needs ``params``
      unless ``weight_decay`` is the number 0.

    Example:
      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.add_decayed_weights(0.1)
      >>> params = jnp.array([2.0, -4.0])
      >>> updates, _ = tx.update(jnp.ones(2), tx.init(params), params)
      >>> updates
      Array([1.2, 0.6], dtype=float32)
    """
    return _decay("add_decayed_weights", AddDecayedWeightsState, weight_decay, 1.0, mask)


def decoupled_weight_decay(
    weight_decay: ScalarOrSchedule, *, mask: Mask | None = None
) -> optax.GradientTransformation:
    r"""Subtracts ``weight_decay * params`` from the final updates, independently of the LR.

    Place it **after** ``scale_by_learning_rate``: the decay then bypasses both
    the adaptive rescaling and the learning rate, ``p <- p - wd_t * p``. This
    is Loshchilov & Hutter's form (their ``eta_t * lambda``, with ``eta_t`` the
    schedule multiplier: pass the product as a schedule) and TF-Addons'
    ``AdamW``. For the decay multiplied by the learning rate (PyTorch
    ``AdamW``, optax ``adamw``), place ``add_decayed_weights`` before
    ``scale_by_learning_rate`` instead: ``-lr * (u + wd * p)``.

    Args:
      weight_decay: the decay per step, >= 0: a number, array or schedule. The
        number 0 passes the updates through (and needs no ``params``).
      mask: which params decay: a pytree of bools like the params or a
        callable returning one (e.g. ``optaxtra.exclude_paths("bias|scale")``).

    Returns:
      An ``optax.GradientTransformation``; its ``update`` needs ``params``
      unless ``weight_decay`` is the number 0.

    Example:
      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.decoupled_weight_decay(0.05)
      >>> params = jnp.array([2.0, -4.0])
      >>> updates, _ = tx.update(jnp.zeros(2), tx.init(params), params)
      >>> updates  # -0.05 * params
      Array([-0.1,  0.2], dtype=float32)

    References:
      Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
      https://arxiv.org/abs/1711.05101
    """
    return _decay("decoupled_weight_decay", DecoupledWeightDecayState, weight_decay, -1.0, mask)
