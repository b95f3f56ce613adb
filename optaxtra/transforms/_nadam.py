"""``scale_by_nadam``: Adam with Nesterov momentum and Dozat's momentum schedule."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .._diagnostics import register_diagnostics
from .._hyperparams import ScalarOrSchedule, resolve, resolve_decay
from .._leaves import frozen_update, is_trainable
from .._tree_checks import check_state_type
from .._validation import check_real
from .._quantized_storage import check_state_dtype
from .._xla import overwrite
from ._moments import (
    adaptive_step,
    check_moments,
    default_estimator,
    init_moments,
    resolve_eps_root,
    update_moments,
    validate_moment_hyperparams,
)

__all__ = ["ScaleByNadamState", "scale_by_nadam"]

_LOG_096 = math.log(0.96)


class ScaleByNadamState(NamedTuple):
    """State of ``scale_by_nadam``.

    Attributes:
      count: number of updates applied so far (int32).
      mu: first moment ``m`` (not bias-corrected), a pytree like the params.
      nu: second moment ``v`` (not bias-corrected), at least float32.
      mu_product: ``prod_{i <= t} mu_i`` (float32 scalar), the bias correction
        of the first moment; 1 before the first update.
      momentum: ``mu_t`` of the last update (float32 scalar), for
        diagnostics; 0 before the first update.
    """

    count: jax.Array
    mu: Any
    nu: Any
    mu_product: jax.Array
    momentum: jax.Array


def _momentum_at(
    b1: jax.Array, step: jax.Array, momentum_decay: ScalarOrSchedule | None, count: jax.Array
) -> jax.Array:
    """``mu_step = b1 (1 - 0.5 * 0.96 ** (step psi))``, or ``b1`` without a schedule."""
    if momentum_decay is None:
        return b1
    psi = resolve(momentum_decay, count)
    return b1 * (1 - 0.5 * jnp.exp(step.astype(jnp.float32) * psi * _LOG_096))


def scale_by_nadam(
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 0.0,
    *,
    momentum_decay: ScalarOrSchedule | None = 4e-3,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""Rescales updates by NAdam's direction: Adam with Nesterov momentum.

    .. math::
      \mu_t = b_1 \bigl(1 - \tfrac12\, 0.96^{t \psi}\bigr),\quad
      m_t = b_1 m_{t-1} + (1 - b_1) g_t,\quad
      \hat v_t = v_t / (1 - b_2^t),\\
      u_t = \Bigl(\frac{1 - \mu_t}{1 - \prod_{i \le t} \mu_i}\, g_t
            + \frac{\mu_{t+1}}{1 - \prod_{i \le t+1} \mu_i}\, m_t\Bigr)
            \Big/ \bigl(\sqrt{\hat v_t + \epsilon_{root}} + \epsilon\bigr)

    with ``v_t`` Adam's second moment. The first moment is bias-corrected by
    the running product of the momentum coefficients ``mu_t``, kept in the
    state (in float32, as PyTorch keeps it); the step looks one momentum
    coefficient ahead (Nesterov). The sign is kept: follow with
    ``scale_by_learning_rate``.

    Conventions:
      * ``momentum_decay=4e-3`` (default; PyTorch ``NAdam``, Dozat's
        schedule): ``mu_t`` rises from ``b1 / 2`` at ``t = 0`` towards ``b1``
        (half-way at ``t psi = log 2 / log(1/0.96)``, ``t = 4,245`` steps).
        ``momentum_decay=0`` keeps ``mu_t = b1 / 2`` for ever, as PyTorch's
        ``momentum_decay=0`` does.
      * ``momentum_decay=None``: ``mu_t = b1`` at every step (the limit of a
        large ``psi``), so the bias correction is ``1 - b1**t``: this is
        ``optax.nadam`` (``scale_by_adam(nesterov=True)``). No value of
        ``psi`` gives it, and no setting of optax's gives PyTorch's schedule
        (its ``mu`` is the ``b1`` of the moving average).
      * ``eps`` is added to ``sqrt(v_hat)`` (PyTorch and optax agree).
      * A scheduled ``b1`` is evaluated at the update's count and used for
        both ``mu_t`` and ``mu_{t+1}``.

    Args:
      b1: decay of the first moment and scale of the momentum schedule, in
        [0, 1); a number, array or schedule.
      b2: decay of the second moment, in [0, 1).
      eps: added to ``sqrt(v_hat)``, >= 0.
      eps_root: added to ``v_hat`` inside the square root, >= 0.
      momentum_decay: ``psi`` >= 0 of the schedule, or None for a constant
        ``mu_t = b1`` (optax's form).
      mu_dtype: storage dtype of the first moment; None keeps the params' dtype.
      nu_dtype: storage dtype of the second moment (see ``scale_by_adam``).

    Returns:
      An ``optax.GradientTransformation`` with state ``ScaleByNadamState``.

    Example:
      At step 1, ``m_1 = (1 - b1) g`` and ``v_hat_1 = g**2``. With
      ``momentum_decay=None`` and ``b1 = 0.5`` the step is
      ``((1 - 0.5) / (1 - 0.5) + 0.5 * 0.5 / (1 - 0.25)) sign(g) = 4/3 sign(g)``:

      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.scale_by_nadam(b1=0.5, eps=0.0, momentum_decay=None)
      >>> updates, state = tx.update(jnp.array([2.0, -3.0]), tx.init(jnp.zeros(2)))
      >>> print([f"{u:.5f}" for u in updates.tolist()], float(state.mu_product))
      ['1.33333', '-1.33333'] 0.5

    References:
      Dozat, "Incorporating Nesterov Momentum into Adam", ICLR 2016 workshop.
      https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ

      Sutskever et al., "On the importance of initialization and momentum in
      deep learning", ICML 2013 (the momentum schedule, section 3.1).
      http://proceedings.mlr.press/v28/sutskever13.html
    """
    validate_moment_hyperparams(b1, b2, eps, eps_root, "corrected", True, 0)
    if momentum_decay is not None:
        check_real("momentum_decay", momentum_decay, 0.0)
    check_state_dtype("mu_dtype", mu_dtype)
    check_state_dtype("nu_dtype", nu_dtype, second_moment=True)
    estimator = default_estimator(None)

    def init_fn(params):
        mu, nu = init_moments(params, estimator, mu_dtype, nu_dtype)
        return ScaleByNadamState(
            jnp.zeros([], jnp.int32), mu, nu, jnp.ones([], jnp.float32), jnp.zeros([], jnp.float32)
        )

    def update_fn(updates, state, params=None):
        del params
        check_state_type(state, ScaleByNadamState, "scale_by_nadam")
        check_moments(updates, state.mu, state.nu, estimator, mu_dtype, "scale_by_nadam", nu_dtype)
        # Uncorrected moments: the first is corrected by the mu product below, the second here.
        moments = update_moments(
            updates, state.count, state.mu, state.nu,
            b1=b1, b2=b2, eps=eps, estimator=estimator, eps_placement="corrected",
            bias_correction=False, freeze_steps=0,
        )
        b1_t = resolve_decay(b1, state.count)
        bias_correction2 = resolve_decay(b2, state.count).debias(moments.count)
        step = moments.count
        mu_t = _momentum_at(b1_t.rate, step, momentum_decay, state.count)
        mu_next = _momentum_at(b1_t.rate, step + 1, momentum_decay, state.count)
        mu_product = state.mu_product * mu_t
        # 1 - mu_t from float64 where mu_t is a static b1, as PyTorch and optax take 1 - b1.
        one_minus_mu = b1_t.complement if momentum_decay is None else 1 - mu_t
        grad_weight = one_minus_mu / (1 - mu_product)
        moment_weight = mu_next / (1 - mu_product * mu_next)
        eps_root_t = resolve_eps_root(eps_root, state.count)

        def direction(g, m, v):
            if not is_trainable(m):
                return frozen_update(g, m)
            dtype = m.dtype
            nesterov = grad_weight.astype(dtype) * g.astype(dtype) + moment_weight.astype(dtype) * m
            v_hat = v / bias_correction2.astype(v.dtype)
            return adaptive_step(nesterov, v_hat, moments.eps, eps_root_t).astype(g.dtype)

        updates = jax.tree.map(direction, updates, moments.m_hat, moments.v_hat)
        new_state = ScaleByNadamState(
            moments.count, moments.mu, moments.nu, mu_product, overwrite(state.momentum, mu_t)
        )
        return updates, new_state

    return optax.GradientTransformation(init_fn, update_fn)


register_diagnostics(
    ScaleByNadamState, lambda s: {"nadam/mu_t": s.momentum, "nadam/mu_product": s.mu_product}
)
