"""``scale_by_simplified_ademamix``: one momentum *sum* plus ``alpha g``, over Adam's denominator."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .._diagnostics import register_diagnostics
from .._hyperparams import ScalarOrSchedule, compute_dtype, resolve, resolve_decay
from .._leaves import accumulator_dtype, frozen_update, is_trainable, second_moment_dtype
from .._quantization import is_quantized
from .._quantized_storage import check_state_dtype, float_dtype, init_shapes, load, storage_spec, store, zeros
from .._tree_checks import check_state_type, check_tree_matches
from .._validation import check_real
from .._xla import increment, overwrite
from ..schedules._ademamix import HalfLifeWarmup, resolve_beta
from ._moments import adaptive_step
from ._second_moment import abs_squared

__all__ = ["ScaleBySimplifiedAdemamixState", "scale_by_simplified_ademamix"]


class ScaleBySimplifiedAdemamixState(NamedTuple):
    """State of ``scale_by_simplified_ademamix``.

    Attributes:
      count: number of updates applied so far (int32).
      mu: the momentum sum ``m``, a pytree like the params (float32 for float16 leaves).
      nu: the second moment, real and at least float32.
      b1: the ``b1_t`` of the last update (float32), for diagnostics.
    """

    count: jax.Array
    mu: Any
    nu: Any
    b1: jax.Array


def scale_by_simplified_ademamix(
    b1: ScalarOrSchedule | HalfLifeWarmup = 0.99,
    b2: ScalarOrSchedule = 0.95,
    alpha: ScalarOrSchedule = 0.0,
    eps: ScalarOrSchedule = 1e-8,
    *,
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""Simplified AdEMAMix's direction: an undamped momentum sum and ``alpha g``.

    .. math::
      m \leftarrow b_{1,t} m + g,\quad v \leftarrow b_2 v + (1 - b_2) g^2,\quad
      u_t = \frac{m + \alpha g}{\sqrt{v / (1 - b_2^t)} + \epsilon}

    ``m`` is a sum (no ``1 - b1``), so with ``b1 = 0.99`` it weighs the
    gradients up to 100 times Adam's first moment: pair it with a smaller
    learning rate. ``alpha = 0`` is Adam with ``m`` scaled by
    ``1 / (1 - b1)`` and no first-moment correction. ``b1`` takes the authors'
    half-life warm-up (``half_life_warmup(0.9, b1, T)``). The authors divide
    by the running sum ``sum_k b2^k (1 - b2)``, which is ``1 - b2^t`` for a
    constant ``b2``; a scheduled ``b2`` is corrected with ``1 - b2_t^t``.
    Follow with ``scale_by_learning_rate``.

    Args:
      b1: decay of the momentum sum, in [0, 1), or a ``half_life_warmup``.
      b2: decay of the second moment, in [0, 1).
      alpha: weight of the current gradient, >= 0.
      eps: added to ``sqrt(v_hat)``, >= 0.
      mu_dtype: storage dtype of ``m``; None keeps the params' dtype (float32
        for float16 leaves, where a sum of 100 gradients could overflow).
        ``jnp.int8`` (or ``blockwise_int8(...)``) stores ``m`` and ``v``
        block-wise in 8 bits.

    Returns:
      An ``optax.GradientTransformation`` with state ``ScaleBySimplifiedAdemamixState``.

    Example:
      A constant gradient: ``m`` is 1, then 1.5; ``v_hat = g**2``.

      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.scale_by_simplified_ademamix(b1=0.5, alpha=2.0)
      >>> state = tx.init(jnp.zeros(1))
      >>> for _ in range(2):
      ...     updates, state = tx.update(jnp.array([4.0]), state)
      ...     print(jnp.round(updates, 5))
      [3.]
      [3.5]

    References:
      Morwani, Vyas, Kakade et al., "Connections between Schedule-Free
      Optimizers, AdEMAMix, and Accelerated SGD Variants", 2025.
      https://arxiv.org/abs/2502.02431
    """
    check_real("b1", b1, 0.0, 1.0, high_open=True)
    check_real("b2", b2, 0.0, 1.0, high_open=True)
    check_real("alpha", alpha, 0.0)
    check_real("eps", eps, 0.0)
    check_state_dtype("mu_dtype", mu_dtype)
    eight_bit = storage_spec(mu_dtype) is not None  # 8-bit: m and v
    float_mu = float_dtype(mu_dtype)

    def init_fn(params):
        params = jax.tree.map(jnp.asarray, params)
        sum_zeros = lambda p: jnp.zeros_like(p, dtype=accumulator_dtype(p.dtype, float_mu))
        square_zeros = lambda p: jnp.zeros_like(p, dtype=second_moment_dtype(p.dtype, float_mu))
        mu = jax.tree.map(lambda p: zeros(sum_zeros(p), mu_dtype, signed=True), params)
        nu = jax.tree.map(lambda p: zeros(square_zeros(p), mu_dtype, signed=False), params)
        return ScaleBySimplifiedAdemamixState(jnp.zeros([], jnp.int32), mu, nu, jnp.zeros([], jnp.float32))

    def update_fn(updates, state, params=None):
        del params
        piece = "scale_by_simplified_ademamix"
        check_state_type(state, ScaleBySimplifiedAdemamixState, piece)
        if eight_bit:  # compare with the state these updates would start from
            check_tree_matches(updates, updates, piece=piece)
            expected = init_shapes(init_fn, updates)
            check_tree_matches(state.mu, expected.mu, piece=piece, what="the momentum in the state",
                               against="the momentum these updates need")
            check_tree_matches(state.nu, expected.nu, piece=piece, what="the second moments in the state",
                               against="those these updates need")
        else:
            check_tree_matches(
                updates, state.mu, piece=piece, against="the optimizer state's momentum",
                expected_dtype=lambda dtype: accumulator_dtype(dtype, mu_dtype),
            )
            check_tree_matches(
                updates, state.nu, piece=piece, against="the second moments in the state",
                expected_dtype=lambda dtype: second_moment_dtype(dtype, mu_dtype),
            )
        step = increment(state.count)
        b1_t, b2_t = resolve_beta(b1, state.count), resolve_decay(b2, state.count)
        alpha_t, eps_t = resolve(alpha, state.count), resolve(eps, state.count)
        correction = b2_t.debias(step)

        def leaf(g, m, v):
            if not is_quantized(m) and not is_trainable(m):
                return m, v, frozen_update(g, m)
            dtype = compute_dtype(g.dtype)
            real = jnp.finfo(dtype).dtype
            g_c = g.astype(dtype)
            m_new = b1_t.rate.astype(dtype) * load(m).astype(dtype) + g_c
            v_new = b2_t.rate.astype(real) * load(v).astype(real) + b2_t.complement.astype(real) * abs_squared(g_c)
            direction = adaptive_step(m_new + alpha_t.astype(dtype) * g_c, v_new / correction.astype(real), eps_t, None)
            # 8-bit: the step uses the values just computed, and stores them quantized.
            kept = lambda new, old: store(new, old) if is_quantized(old) else new.astype(old.dtype)
            return kept(m_new, m), kept(v_new, v), direction.astype(g.dtype)

        results = jax.tree.map(leaf, updates, state.mu, state.nu)
        treedef = jax.tree.structure(updates)
        per_leaf = treedef.flatten_up_to(results)
        mu, nu, updates = (treedef.unflatten([r[i] for r in per_leaf]) for i in range(3))
        return updates, ScaleBySimplifiedAdemamixState(step, mu, nu, overwrite(state.b1, b1_t.rate))

    return optax.GradientTransformation(init_fn, update_fn)


register_diagnostics(ScaleBySimplifiedAdemamixState, lambda s: {"simplified_ademamix/b1": s.b1})
