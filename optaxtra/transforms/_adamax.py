"""``scale_by_adamax``: Adam with the infinity norm in place of the second moment."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .._hyperparams import Decay, ScalarOrSchedule, resolve
from .._leaves import frozen_update, is_trainable
from .._tree_checks import check_state_type
from .._quantized_storage import check_state_dtype
from ._moments import check_moments, init_moments, update_moments, validate_moment_hyperparams
from ._second_moment import SecondMoment, real_zeros

__all__ = ["ScaleByAdamaxState", "scale_by_adamax"]


class ScaleByAdamaxState(NamedTuple):
    """State of ``scale_by_adamax``.

    Attributes:
      count: number of updates applied so far (int32).
      mu: first moment ``m``, a pytree like the params.
      nu: the exponentially weighted infinity norm ``u``, at least float32.
    """

    count: jax.Array
    mu: Any
    nu: Any


def _infinity_norm(eps: jax.Array) -> SecondMoment:
    """``u_t = max(b2 u_{t-1}, |g_t| + eps)``, never bias-corrected (it needs none)."""

    def update(g: jax.Array, mu: jax.Array, u: jax.Array, b2: Decay, bc2: jax.Array) -> jax.Array:
        del mu, bc2
        magnitude = jnp.abs(g)  # real, in the leaf's compute dtype
        dtype = magnitude.dtype
        return jnp.maximum(b2.rate.astype(dtype) * u.astype(dtype), magnitude + eps.astype(dtype))

    return SecondMoment(init=real_zeros, update=update, corrected=lambda u, bc2: u)


def scale_by_adamax(
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""Rescales updates by Adamax's direction ``m_hat / u``.

    .. math::
      m_t = b_1 m_{t-1} + (1 - b_1) g_t,\quad
      u_t = \max(b_2 u_{t-1}, |g_t| + \epsilon),\quad
      \text{update}_t = \frac{m_t}{(1 - b_1^t)\, u_t}

    Adam's ``L2`` norm of past gradients replaced by the ``L-infinity`` norm
    (Kingma & Ba, section 7.1). The paper has no ``eps``; PyTorch's
    ``Adamax`` and ``optax.adamax`` both put it *inside* the maximum (added
    to ``|g|``, not to ``u``), and so does this piece. ``u`` is not
    bias-corrected (a maximum has no bias towards zero). With ``eps=0`` a
    leaf whose gradients have all been 0 gets ``0 / 0``. The sign is kept:
    follow with ``scale_by_learning_rate``.

    Args:
      b1: decay of the first moment, in [0, 1); a number, array or schedule.
      b2: decay of the infinity norm, in [0, 1).
      eps: added to ``|g|`` inside the maximum, >= 0.
      mu_dtype: storage dtype of the first moment; None keeps the params' dtype.
      nu_dtype: storage dtype of ``u`` (None: at least float32; see
        ``scale_by_adam``).

    Returns:
      An ``optax.GradientTransformation`` with state ``ScaleByAdamaxState``.

    Example:
      Step 1 is ``sign(g)`` (up to eps). At step 2, with ``b1 = b2 = 0.5``
      and gradients 4 then 1: ``m_2 = 0.5 * 2 + 0.5 = 1.5``,
      ``m_hat_2 = 1.5 / 0.75 = 2``, ``u_2 = max(0.5 * 4, 1) = 2``, so the
      update is 1.

      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.scale_by_adamax(0.5, 0.5, eps=0.0)
      >>> state = tx.init(jnp.zeros(1))
      >>> for g in (4.0, 1.0):
      ...     updates, state = tx.update(jnp.array([g]), state)
      ...     print(updates, state.nu)
      [1.] [4.]
      [1.] [2.]

    References:
      Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015,
      section 7.1. https://arxiv.org/abs/1412.6980
    """
    validate_moment_hyperparams(b1, b2, eps, 0.0, "corrected", True, 0)
    check_state_dtype("mu_dtype", mu_dtype)
    check_state_dtype("nu_dtype", nu_dtype, second_moment=True)

    def init_fn(params):
        mu, nu = init_moments(params, _infinity_norm(jnp.zeros([])), mu_dtype, nu_dtype)
        return ScaleByAdamaxState(jnp.zeros([], jnp.int32), mu, nu)

    def update_fn(updates, state, params=None):
        del params
        check_state_type(state, ScaleByAdamaxState, "scale_by_adamax")
        estimator = _infinity_norm(resolve(eps, state.count))
        check_moments(updates, state.mu, state.nu, estimator, mu_dtype, "scale_by_adamax", nu_dtype)
        moments = update_moments(
            updates, state.count, state.mu, state.nu,
            b1=b1, b2=b2, eps=eps, estimator=estimator, eps_placement="corrected",
            bias_correction=True, freeze_steps=0,
        )

        def direction(g, m_hat, u):
            if not is_trainable(m_hat):
                return frozen_update(g, m_hat)
            return (m_hat / u.astype(m_hat.dtype)).astype(g.dtype)

        updates = jax.tree.map(direction, updates, moments.m_hat, moments.v_hat)
        return updates, ScaleByAdamaxState(moments.count, moments.mu, moments.nu)

    return optax.GradientTransformation(init_fn, update_fn)
