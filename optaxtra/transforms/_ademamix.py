"""``scale_by_ademamix``: Adam's direction plus ``alpha`` times a slow, uncorrected EMA of the gradients."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .._diagnostics import register_diagnostics
from .._hyperparams import ScalarOrSchedule, compute_dtype, resolve
from .._leaves import first_moment_dtype, frozen_update, is_trainable
from .._tree_checks import check_state_type, check_tree_matches
from .._quantization import is_quantized
from .._quantized_storage import check_state_dtype, float_dtype, load, storage_spec, store, zeros
from .._validation import check_real
from .._xla import overwrite
from ..schedules._ademamix import HalfLifeWarmup, resolve_beta
from ._moments import adaptive_step, check_moments, init_moments, update_moments
from ._second_moment import ema_second_moment

__all__ = ["ScaleByAdemamixState", "scale_by_ademamix"]


class ScaleByAdemamixState(NamedTuple):
    """State of ``scale_by_ademamix``.

    Attributes:
      count: number of updates applied so far (int32).
      mu: the fast EMA ``m1``, a pytree like the params.
      nu: the second moment, real and at least float32.
      slow: the slow EMA ``m2``, like ``mu``.
      alpha: the ``alpha_t`` of the last update (float32), for diagnostics.
      b3: the ``b3_t`` of the last update (float32), for diagnostics.
    """

    count: jax.Array
    mu: Any
    nu: Any
    slow: Any
    alpha: jax.Array
    b3: jax.Array


def scale_by_ademamix(
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    b3: ScalarOrSchedule | HalfLifeWarmup = 0.9999,
    alpha: ScalarOrSchedule = 5.0,
    eps: ScalarOrSchedule = 1e-8,
    *,
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""AdEMAMix's direction: a fast and a slow EMA of the gradients over Adam's denominator.

    .. math::
      m_1 \leftarrow b_1 m_1 + (1 - b_1) g,\quad
      m_2 \leftarrow b_{3,t} m_2 + (1 - b_{3,t}) g,\quad
      v \leftarrow b_2 v + (1 - b_2) g^2,\\
      u_t = \frac{m_1 / (1 - b_1^t) + \alpha_t m_2}{\sqrt{v / (1 - b_2^t)} + \epsilon}

    The slow EMA is not bias-corrected, so that it fills slowly (the paper).
    ``alpha`` and ``b3`` take the paper's warm-ups as schedules
    (``ademamix_alpha_warmup``, ``half_life_warmup``), which say at which step
    they are read. Follow with ``scale_by_learning_rate``.

    Args:
      b1: decay of the fast EMA, in [0, 1); a number, array or schedule.
      b2: decay of the second moment, in [0, 1).
      b3: decay of the slow EMA, in [0, 1), or a ``half_life_warmup``.
      alpha: weight of the slow EMA, >= 0; a number, array or schedule.
      eps: added to ``sqrt(v_hat)``, >= 0.
      mu_dtype: storage dtype of both EMAs; None keeps the params' dtype.
        ``jnp.int8`` (or ``blockwise_int8(...)``) stores them and ``v``
        block-wise in 8 bits.

    Returns:
      An ``optax.GradientTransformation`` with state ``ScaleByAdemamixState``.

    Example:
      On the first update ``m1_hat = g``, ``m2 = (1 - b3) g`` and ``v_hat = g**2``:
      ``u = (1 + alpha (1 - b3)) sign(g) = 1.5 sign(g)`` for ``alpha = 5, b3 = 0.9``.

      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.scale_by_ademamix(b3=0.9, alpha=5.0)
      >>> updates, state = tx.update(jnp.array([2.0, -0.5]), tx.init(jnp.zeros(2)))
      >>> print(jnp.round(updates, 5))
      [ 1.5 -1.5]

    References:
      Pagliardini, Ablin & Grangier, "The AdEMAMix Optimizer: Better, Faster,
      Older", ICLR 2025. https://arxiv.org/abs/2409.03137
    """
    check_real("b1", b1, 0.0, 1.0, high_open=True)
    check_real("b2", b2, 0.0, 1.0, high_open=True)
    check_real("b3", b3, 0.0, 1.0, high_open=True)
    check_real("alpha", alpha, 0.0)
    check_real("eps", eps, 0.0)
    check_state_dtype("mu_dtype", mu_dtype)
    eight_bit = storage_spec(mu_dtype) is not None
    nu_dtype = mu_dtype if eight_bit else None  # 8-bit: every moment
    estimator = ema_second_moment()

    def init_fn(params):
        mu, nu = init_moments(params, estimator, mu_dtype, nu_dtype)
        params = jax.tree.map(jnp.asarray, params)
        slow_dtype = lambda p: first_moment_dtype(p.dtype, float_dtype(mu_dtype))
        slow = jax.tree.map(lambda p: zeros(jnp.zeros_like(p, dtype=slow_dtype(p)), mu_dtype, signed=True), params)
        zero = jnp.zeros([], jnp.float32)
        return ScaleByAdemamixState(jnp.zeros([], jnp.int32), mu, nu, slow, zero, jnp.zeros([], jnp.float32))

    def update_fn(updates, state, params=None):
        del params
        check_state_type(state, ScaleByAdemamixState, "scale_by_ademamix")
        check_moments(updates, state.mu, state.nu, estimator, mu_dtype, "scale_by_ademamix", nu_dtype)
        if eight_bit:  # the slow EMA is checked like the first moment it was made with
            check_tree_matches(state.slow, state.mu, piece="scale_by_ademamix", what="the slow EMA in the state",
                               against="the first moments")
        else:
            check_tree_matches(
                updates, state.slow, piece="scale_by_ademamix", against="the slow EMA in the state",
                expected_dtype=lambda dtype: first_moment_dtype(dtype, mu_dtype),
            )
        moments = update_moments(
            updates, state.count, state.mu, state.nu, b1=b1, b2=b2, eps=eps, estimator=estimator,
            eps_placement="corrected", bias_correction=True, freeze_steps=0,
        )
        b3_t, alpha_t = resolve_beta(b3, state.count), resolve(alpha, state.count)

        def leaf(g, stored_slow, m_hat, v_hat):
            if not is_quantized(stored_slow) and not is_trainable(stored_slow):
                return stored_slow, frozen_update(g, stored_slow)
            dtype = compute_dtype(g.dtype)
            slow = load(stored_slow).astype(dtype)
            # m2 + (1 - b3) (g - m2): float32(b3) + float32(1 - b3) is not 1 (2e-8 short at
            # 0.9999), a bias that a 10,000-step memory would accumulate to 2e-4 of m2.
            slow_new = slow + b3_t.complement.astype(dtype) * (g.astype(dtype) - slow)
            mixed = m_hat + alpha_t.astype(dtype) * slow_new
            kept = store(slow_new, stored_slow) if is_quantized(stored_slow) else slow_new.astype(stored_slow.dtype)
            return kept, adaptive_step(mixed, v_hat, moments.eps, None).astype(g.dtype)

        results = jax.tree.map(leaf, updates, state.slow, moments.m_hat, moments.v_hat)
        treedef = jax.tree.structure(updates)
        per_leaf = treedef.flatten_up_to(results)
        slow, updates = (treedef.unflatten([r[i] for r in per_leaf]) for i in range(2))
        new_state = ScaleByAdemamixState(
            moments.count, moments.mu, moments.nu, slow,
            overwrite(state.alpha, alpha_t), overwrite(state.b3, b3_t.rate),
        )
        return updates, new_state

    return optax.GradientTransformation(init_fn, update_fn)


register_diagnostics(ScaleByAdemamixState, lambda s: {"ademamix/alpha": s.alpha, "ademamix/b3": s.b3})
