"""``scale_by_radam_rectifier``: RAdam's rectified adaptive direction."""

from __future__ import annotations

import math
import numbers
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._diagnostics import register_diagnostics
from .._hyperparams import ScalarOrSchedule, resolve
from .._xla import overwrite
from .._leaves import frozen_update, is_trainable
from .._tree_checks import check_state_type
from .._validation import check_bool, check_choice, check_real
from .._quantized_storage import check_state_dtype
from ._moments import (
    EpsPlacement,
    adaptive_step,
    check_moments,
    default_estimator,
    init_moments,
    resolve_eps_root,
    update_moments,
    validate_moment_hyperparams,
)
from ._second_moment import SecondMoment

__all__ = ["ScaleByRadamRectifierState", "scale_by_radam_rectifier", "radam_rho", "radam_rectification"]

# Beyond z = t * log(1/b2) = 1 the direct formula loses under 2 bits; below it
# the series is accurate to float32 rounding (its first omitted term is < 1e-7 rho).
_SERIES_LIMIT = 1.0


class ScaleByRadamRectifierState(NamedTuple):
    """State of ``scale_by_radam_rectifier``.

    Attributes:
      count: number of updates applied so far (int32).
      mu: first moment.
      nu: second-moment estimator state.
      rho: ``rho_t`` of the last update (float32 scalar), for diagnostics.
      rectification: ``r_t`` of the last update, 0 while the adaptive step was off.
    """

    count: jax.Array
    mu: Any
    nu: Any
    rho: jax.Array
    rectification: jax.Array


def _log_inverse_b2(b2: ScalarOrSchedule | jax.Array) -> jax.Array:
    """``L = -log(b2)``: in float64 on the host for a static b2, else in float32."""
    if isinstance(b2, numbers.Real):
        return jnp.asarray(-math.log(b2) if b2 > 0 else math.inf, jnp.float32)
    b2 = jnp.asarray(b2, jnp.float32)
    return -jnp.log1p(b2 - 1)


def radam_rho(step: jax.Array, b2: float | jax.Array) -> tuple[jax.Array, jax.Array]:
    r"""The length of RAdam's approximated simple moving average, without cancellation.

    ``rho_t = rho_inf - 2 t b2^t / (1 - b2^t)`` and ``rho_inf = 2 / (1 - b2) - 1``.
    Computed as written in float32, the two large terms cancel: at
    ``b2 = 0.999`` optax 0.2.8 gets ``rho_5 = 4.961`` and ``rho_6 = 5.975``
    where the exact values are 4.996 and 5.994; at ``b2 = 0.9999`` it gets
    ``rho_1 = 4.32`` and ``rho_2 = 6.32`` (exactly 1 and 2), so its ``>= 5``
    takes the adaptive step at steps 2, 4, 5, ... With ``L = -log(b2)`` and
    ``z = t L``, both terms are ``(2/L) g(.)`` of the Bernoulli generating
    function ``g(z) = z / (e^z - 1)``, and

    .. math::
      \rho_t = t + \frac{L - z t}{6} - \frac{L^3 - z^3 t}{360}
               + \frac{L^5 - z^5 t}{15120} - \frac{L^7 - z^7 t}{604800} + \dots

    which is used while ``z < 1``; past that the direct formula is well
    conditioned. Both are accurate to a few float32 ulps.

    Args:
      step: the 1-based step ``t``.
      b2: the second-moment decay; a static Python float is taken in float64.

    Returns:
      ``(rho_t, rho_inf)`` as float32 arrays.

    Raises:
      ValueError: for a concrete ``step < 1`` or ``b2`` outside [0, 1) (traced
        values are not checked).

    Example:
      >>> import optaxtra
      >>> rho, rho_inf = optaxtra.radam_rho(5, 0.999)
      >>> print(f"{float(rho):.4f} {float(rho_inf):.1f}")
      4.9960 1999.0

    References:
      Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond"
      (RAdam; rho_t is its Eq. 5's SMA length), ICLR 2020. https://arxiv.org/abs/1908.03265
    """
    check_real("step", step, 1.0, allow_schedule=False)
    check_real("b2", b2, 0.0, 1.0, high_open=True, allow_schedule=False)
    return _radam_rho(step, b2)


def _radam_rho(step: jax.Array, b2: float | jax.Array) -> tuple[jax.Array, jax.Array]:
    """``radam_rho`` without its checks, for the update (where the step is an array)."""
    log_inv = _log_inverse_b2(b2)
    t = jnp.asarray(step, jnp.float32)
    z = t * log_inv
    one_minus_b2 = -jnp.expm1(-log_inv)
    rho_inf = 2 / one_minus_b2 - 1
    zs = jnp.minimum(z, _SERIES_LIMIT)
    series = (
        t
        + (log_inv - zs * t) / 6
        - (log_inv**3 - zs**3 * t) / 360
        + (log_inv**5 - zs**5 * t) / 15120
        - (log_inv**7 - zs**7 * t) / 604800
    )
    direct = rho_inf - 2 * t * jnp.exp(-z) / -jnp.expm1(-z)
    return jnp.where(z < _SERIES_LIMIT, series, direct), rho_inf


def radam_rectification(rho: jax.Array, rho_inf: jax.Array) -> jax.Array:
    r"""``r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))``.

    Returns 0 where ``rho_t <= 4`` (where the variance of the adaptive rate is
    unbounded and the formula undefined).

    Args:
      rho: ``rho_t``, the SMA length at the current step (``radam_rho``).
      rho_inf: its limit ``2 / (1 - b2) - 1``.

    Returns:
      ``r_t`` as an array like ``rho``; it rises from 0 towards 1 as ``rho_t``
      approaches ``rho_inf``.

    Example:
      >>> import optaxtra
      >>> r = optaxtra.radam_rectification(*optaxtra.radam_rho(6, 0.999))
      >>> print(f"{float(r):.4f}")
      0.0258

    References:
      Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond"
      (RAdam, Algorithm 2), ICLR 2020. https://arxiv.org/abs/1908.03265
    """
    safe = jnp.maximum(rho, 4.0)
    ratio = (safe - 4) * (safe - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * safe)
    return jnp.where(rho > 4, jnp.sqrt(jnp.maximum(ratio, 0.0)), 0.0)


def scale_by_radam_rectifier(
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 0.0,
    *,
    threshold: float = 5.0,
    threshold_comparison: Literal[">", ">="] = ">",
    degenerated_to_sgd: bool = True,
    eps_placement: EpsPlacement = "uncorrected",
    second_moment: SecondMoment | None = None,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""Rescales updates by RAdam's rectified adaptive direction.

    .. math::
      u_t = \begin{cases}
        r_t\, \hat m_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon) & \rho_t > \text{threshold} \\
        \hat m_t \text{ (or 0 if not degenerated\_to\_sgd)} & \text{otherwise}
      \end{cases}

    with ``rho_t`` and ``r_t`` from ``radam_rho`` and ``radam_rectification``.
    While ``rho_t`` is small the variance of the adaptive learning rate is
    intractable, and the step falls back to momentum SGD. The sign is kept:
    follow with ``scale_by_learning_rate``.

    Conventions (defaults follow PyTorch's ``RAdam``):
      * ``threshold=5.0`` with ``threshold_comparison=">"``: PyTorch and
        pytorch_ranger ``rho_t > 5``; optax and the official repo ``>= 5``
        (``">="``); the paper's Algorithm 2 ``rho_t > 4`` (``threshold=4``).
        With exact ``rho_t`` (``rho_5 = 4.996``, ``rho_6 = 5.994`` at
        ``b2 = 0.999``) ``>`` and ``>=`` 5 agree; threshold 4 switches on at
        step 5 instead of 6.
      * ``degenerated_to_sgd=True``: apply ``m_hat`` while intractable
        (PyTorch, optax, fastai, TF-Addons); False skips the update (the
        official repo's default).
      * ``eps_placement="uncorrected"``: eps added to ``sqrt(v)`` before the
        bias correction (PyTorch RAdam, pytorch_ranger, the official code);
        ``"corrected"`` adds it to ``sqrt(v_hat)`` (optax).

    Args:
      b1: decay of the first moment, in [0, 1).
      b2: decay of the second moment, in [0, 1).
      eps: added to the denominator, >= 0 (see ``eps_placement``).
      eps_root: added to ``v_hat`` inside the square root, >= 0.
      threshold: the ``rho_t`` above which the adaptive step is used, >= 4
        (``r_t`` is only defined for ``rho_t >= 4``).
      threshold_comparison: ``">"`` or ``">="``.
      degenerated_to_sgd: use ``m_hat`` (True) or no update (False) while
        ``rho_t`` is below the threshold.
      eps_placement: ``"uncorrected"`` or ``"corrected"``.
      second_moment: the estimator of ``v_hat``; None for Adam's moving
        average. ``amsgrad_second_moment()`` gives rectified AMSGrad,
        ``belief_second_moment()`` rectified AdaBelief.
      mu_dtype: storage dtype of the first moment; None keeps the params'
        dtype. The second moment is kept in at least float32.
      nu_dtype: storage dtype of the second moment: None (at least float32),
        ``jnp.bfloat16`` (stored with stochastic rounding, so that ``b2 v``
        still decays; with ``mu_dtype=jnp.bfloat16`` the state is half of
        float32's) or a wider float. float16 is refused (``g**2`` overflows).
        ``jnp.int8`` (or ``blockwise_int8(...)``), here or in ``mu_dtype``,
        stores that moment block-wise in 8 bits (Dettmers et al. 2021; see
        ``optaxtra.blockwise_int8``): with both, about 2 bytes per param.

    Returns:
      An ``optax.GradientTransformation`` with state ``ScaleByRadamRectifierState``.

    Example:
      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.scale_by_radam_rectifier()
      >>> params = jnp.zeros(2)
      >>> updates, state = tx.update(jnp.array([1.0, -2.0]), tx.init(params))
      >>> updates  # step 1: rho_1 = 1 is intractable, so m_hat = g
      Array([ 1., -2.], dtype=float32)

    References:
      Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond",
      ICLR 2020. https://arxiv.org/abs/1908.03265
    """
    validate_moment_hyperparams(b1, b2, eps, eps_root, eps_placement, True, 0)
    check_real("threshold", threshold, 4.0, allow_schedule=False)
    check_choice("threshold_comparison", threshold_comparison, (">", ">="))
    check_bool("degenerated_to_sgd", degenerated_to_sgd)
    check_state_dtype("mu_dtype", mu_dtype, allow_complex=True)
    check_state_dtype("nu_dtype", nu_dtype, second_moment=True)
    if not any(callable(x) or isinstance(x, jax.core.Tracer) for x in (b2, threshold)):
        # b2 is concrete and already checked to lie in [0, 1).
        rho_inf = 2 / (1 - np.asarray(b2, np.float64)) - 1
        if (rho_inf <= threshold).any():
            raise ValueError(
                f"b2={b2!r} gives rho_inf={np.min(rho_inf):.3g} <= threshold={threshold!r}: the "
                "adaptive step would never switch on. Use b2 > (threshold + 1) / (threshold + 3), "
                f"i.e. b2 > {(threshold + 1) / (threshold + 3):.3g}."
            )
    estimator = default_estimator(second_moment)

    def init_fn(params):
        mu, nu = init_moments(params, estimator, mu_dtype, nu_dtype)
        # Two arrays, not one twice: a state whose leaves share a buffer cannot be donated.
        return ScaleByRadamRectifierState(
            jnp.zeros([], jnp.int32), mu, nu, jnp.zeros([], jnp.float32), jnp.zeros([], jnp.float32)
        )

    def update_fn(updates, state, params=None):
        del params
        check_state_type(state, ScaleByRadamRectifierState, "scale_by_radam_rectifier")
        check_moments(
            updates, state.mu, state.nu, estimator, mu_dtype, "scale_by_radam_rectifier", nu_dtype
        )
        moments = update_moments(
            updates, state.count, state.mu, state.nu,
            b1=b1, b2=b2, eps=eps, estimator=estimator, eps_placement=eps_placement,
            bias_correction=True, freeze_steps=0,
        )
        b2_t = b2 if isinstance(b2, numbers.Real) else resolve(b2, state.count)
        rho, rho_inf = _radam_rho(moments.count, b2_t)
        tractable = rho > threshold if threshold_comparison == ">" else rho >= threshold
        rectification = jnp.where(tractable, radam_rectification(rho, rho_inf), 0.0)
        # The step uses the recorded r_t itself: XLA then computes it once for both.
        rectification = overwrite(state.rectification, rectification)
        eps_root_t = resolve_eps_root(eps_root, state.count)

        def direction(g, m_hat, v_hat):
            if not is_trainable(m_hat):
                return frozen_update(g, m_hat)
            adaptive = rectification.astype(m_hat.dtype) * adaptive_step(
                m_hat, v_hat, moments.eps, eps_root_t
            )
            # Skipping the step must not hide a non-finite moment until rho_t passes the threshold.
            idle = jnp.where(jnp.isfinite(m_hat) & jnp.isfinite(v_hat), 0, jnp.nan).astype(m_hat.dtype)
            fallback = m_hat if degenerated_to_sgd else idle
            return jnp.where(tractable, adaptive, fallback).astype(g.dtype)

        updates = jax.tree.map(direction, updates, moments.m_hat, moments.v_hat)
        new_state = ScaleByRadamRectifierState(
            moments.count, moments.mu, moments.nu,
            overwrite(state.rho, rho), rectification,
        )
        return updates, new_state

    return optax.GradientTransformation(init_fn, update_fn)


register_diagnostics(
    ScaleByRadamRectifierState,
    lambda s: {
        "rectifier/rho_t": s.rho,
        "rectifier/r_t": s.rectification,
        "rectifier/adaptive": s.rectification > 0,
    },
)
