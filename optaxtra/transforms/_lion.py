"""``scale_by_lion``: the sign of an interpolation of momentum and gradient."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .._hyperparams import ScalarOrSchedule, compute_dtype, resolve_decay
from .._leaves import first_moment_dtype, frozen_update, is_trainable
from .._tree_checks import check_state_type, check_tree_matches
from .._quantization import is_quantized
from .._quantized_storage import check_state_dtype, float_dtype, init_shapes, load, storage_spec, store, zeros
from .._validation import check_real
from .._xla import increment

__all__ = ["ScaleByLionState", "scale_by_lion"]


class ScaleByLionState(NamedTuple):
    """State of ``scale_by_lion``.

    Attributes:
      count: number of updates applied so far (int32).
      mu: the momentum ``m``, a pytree like the params.
    """

    count: jax.Array
    mu: Any


def _momentum_dtype(dtype: Any, mu_dtype: Any) -> Any:
    """``mu_dtype`` if given, else the leaf's compute dtype (float32 for half-precision leaves).

    With ``b2 = 0.99`` each step moves ``m`` by 1% of ``g - m``, and bfloat16's
    spacing is 0.4-0.8% of ``m``: stored in bfloat16, an increment is rounded
    by a sizeable part of itself, and the sign of ``b1 m + (1 - b1) g`` with it.
    """
    return compute_dtype(dtype) if mu_dtype is None else first_moment_dtype(dtype, mu_dtype)


def scale_by_lion(
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.99,
    *,
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""Rescales updates to Lion's direction, a sign.

    .. math::
      u_t = \operatorname{sign}(b_1 m_{t-1} + (1 - b_1) g_t),\quad
      m_t = b_2 m_{t-1} + (1 - b_2) g_t

    The interpolation that gives the step (``b1``) is not the one that
    updates the momentum (``b2``), and the step reads the momentum *before*
    this gradient enters it. Every entry of the step is -1, 0 or 1, so its
    size is set by the learning rate alone (Chen et al. use a learning rate
    3-10 times smaller than AdamW's). ``sign(0) = 0``: an entry whose
    interpolation is exactly 0 does not move. The sign is kept: follow with
    ``scale_by_learning_rate``.

    Args:
      b1: weight of the momentum in the step, in [0, 1); a number, array or
        schedule.
      b2: decay of the momentum, in [0, 1).
      mu_dtype: storage dtype of the momentum. None keeps the params' dtype,
        but float32 for half-precision params (optax and lion-pytorch keep
        the params' dtype): each step moves ``m`` by ``(1 - b2)(g - m)``,
        1% at ``b2 = 0.99``, against bfloat16's spacing of 0.4-0.8% of ``m``.
        Pass ``jnp.bfloat16`` to halve the state, ``jnp.int8`` (or
        ``blockwise_int8(...)``) to store it block-wise in 8 bits. The maths
        runs in float32 for half-precision leaves.

    Returns:
      An ``optax.GradientTransformation`` with state ``ScaleByLionState``.

    Example:
      Step 1 is ``sign(g)``; step 2 with ``b1 = 0.9`` and ``b2 = 0.5`` has
      ``0.9 * m_1 + 0.1 * g_2 = 0.9 * 0.5 * [4, 1] + 0.1 * [-2, -8] = [1.6, -0.35]``:

      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.scale_by_lion(b1=0.9, b2=0.5)
      >>> state = tx.init(jnp.zeros(2))
      >>> for g in ([4.0, 1.0], [-2.0, -8.0]):
      ...     updates, state = tx.update(jnp.array(g), state)
      ...     print(updates, state.mu)
      [1. 1.] [2.  0.5]
      [ 1. -1.] [ 0.   -3.75]

    References:
      Chen et al., "Symbolic Discovery of Optimization Algorithms", NeurIPS 2023.
      https://arxiv.org/abs/2302.06675
    """
    check_real("b1", b1, 0.0, 1.0, high_open=True)
    check_real("b2", b2, 0.0, 1.0, high_open=True)
    check_state_dtype("mu_dtype", mu_dtype)
    float_mu = float_dtype(mu_dtype)

    def init_fn(params):
        params = jax.tree.map(jnp.asarray, params)
        zero = lambda p: zeros(jnp.zeros_like(p, dtype=_momentum_dtype(p.dtype, float_mu)), mu_dtype, signed=True)
        return ScaleByLionState(jnp.zeros([], jnp.int32), jax.tree.map(zero, params))

    def update_fn(updates, state, params=None):
        del params
        check_state_type(state, ScaleByLionState, "scale_by_lion")
        if storage_spec(mu_dtype) is None:
            check_tree_matches(
                updates, state.mu, piece="scale_by_lion", against="the optimizer state's momentum",
                expected_dtype=lambda dtype: _momentum_dtype(dtype, mu_dtype),
            )
        else:  # 8-bit: compare with the state these updates would start from
            check_tree_matches(updates, updates, piece="scale_by_lion")
            expected = init_shapes(init_fn, updates).mu
            check_tree_matches(state.mu, expected, piece="scale_by_lion", what="the momentum in the state",
                               against="the momentum these updates need")
        b1_t, b2_t = resolve_decay(b1, state.count), resolve_decay(b2, state.count)

        def leaf(g, m):
            if not is_quantized(m) and not is_trainable(m):
                return frozen_update(g, m), m
            dtype = compute_dtype(g.dtype)
            g_wide, m_wide = g.astype(dtype), load(m).astype(dtype)
            step = jnp.sign(b1_t.rate.astype(dtype) * m_wide + b1_t.complement.astype(dtype) * g_wide)
            m_new = b2_t.rate.astype(dtype) * m_wide + b2_t.complement.astype(dtype) * g_wide
            return step.astype(g.dtype), store(m_new, m) if is_quantized(m) else m_new.astype(m.dtype)

        pairs = jax.tree.map(leaf, updates, state.mu)
        treedef = jax.tree.structure(updates)
        per_leaf = treedef.flatten_up_to(pairs)
        new_updates = treedef.unflatten([pair[0] for pair in per_leaf])
        new_mu = treedef.unflatten([pair[1] for pair in per_leaf])
        return new_updates, ScaleByLionState(increment(state.count), new_mu)

    return optax.GradientTransformation(init_fn, update_fn)
