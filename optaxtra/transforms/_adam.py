"""``scale_by_adam``: the adaptive direction ``m_hat / (sqrt(v_hat) + eps)``."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .._hyperparams import ScalarOrSchedule, is_exactly_zero
from .._leaves import frozen_update, is_trainable
from .._tree_checks import check_state_type
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

__all__ = ["ScaleByAdamState", "scale_by_adam"]


class ScaleByAdamState(NamedTuple):
    """State of ``scale_by_adam``.

    Attributes:
      count: number of updates applied so far (int32).
      mu: first moment, a pytree like the params (None where ``b1`` is the number 0).
      nu: the second-moment estimator's state: a pytree like the params, or,
        for an estimator keeping several arrays per leaf (AMSGrad's
        ``(v, v_max)``), a tuple of such pytrees, one per array.
    """

    count: jax.Array
    mu: Any
    nu: Any


def scale_by_adam(
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 0.0,
    *,
    second_moment: SecondMoment | None = None,
    eps_placement: EpsPlacement = "corrected",
    bias_correction: bool = True,
    freeze_steps: int = 0,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""Rescales updates by Adam's adaptive direction.

    .. math::
      m_t = b_1 m_{t-1} + (1 - b_1) g_t,\quad
      \hat m_t = m_t / (1 - b_1^t),\quad
      u_t = \hat m_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon)

    where ``v_hat`` comes from ``second_moment`` (Adam's moving average of
    ``g**2`` by default; ``amsgrad_second_moment()`` or
    ``belief_second_moment()`` give AMSGrad and AdaBelief). The sign is kept:
    follow with ``scale_by_learning_rate``.

    Args:
      b1: decay of the first moment, in [0, 1); a number, array or schedule.
        The number 0 keeps no first moment (``m_hat = g``; ``mu`` is None in
        the state), so that a direction without momentum, RMSprop's or
        Schedule-Free's base, stores ``v`` alone; an array 0 keeps the buffer.
      b2: decay of the second moment, in [0, 1).
      eps: added to ``sqrt(v_hat)``, >= 0.
      eps_root: added to ``v_hat`` inside the square root, >= 0 (set it > 0 to
        differentiate through the update).
      second_moment: the second-moment estimator; None for Adam's.
      eps_placement: ``"corrected"`` (default; PyTorch Adam, optax, the paper)
        or ``"uncorrected"`` (eps added to ``sqrt(v)`` before the bias
        correction, as torch-optimizer's Lamb and PyTorch's RAdam).
      bias_correction: divide the moments by ``1 - b**t``. False gives the
        uncorrected moments of Reddi et al.'s AMSGrad and torch-optimizer's
        Lamb (``debias=False``).
      freeze_steps: Adam-2k (Liu et al. 2019): for this many first steps only
        the second moment is updated and the updates are zero.
      mu_dtype: storage dtype of the first moment; None keeps the params'
        dtype. The second moment is kept in at least float32 (and at least
        ``mu_dtype``), so that it neither overflows float16 nor stalls in
        bfloat16. The maths runs in float32 for half-precision leaves.
      nu_dtype: storage dtype of the second moment: None (at least float32),
        ``jnp.bfloat16`` (stored with stochastic rounding, so that ``b2 v``
        still decays; with ``mu_dtype=jnp.bfloat16`` the state is half of
        float32's) or a wider float. float16 is refused (``g**2`` overflows).
        ``jnp.int8`` (or ``blockwise_int8(...)``), here or in ``mu_dtype``,
        stores that moment block-wise in 8 bits (Dettmers et al. 2021; see
        ``optaxtra.blockwise_int8``): with both, about 2 bytes per param.

    Returns:
      An ``optax.GradientTransformation`` with state ``ScaleByAdamState``.

    Example:
      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.scale_by_adam()
      >>> params = jnp.array([1.0, 2.0])
      >>> updates, _ = tx.update(jnp.array([0.5, -2.0]), tx.init(params))
      >>> updates  # the first Adam step is sign(g), up to eps
      Array([ 1., -1.], dtype=float32)

    References:
      Kingma & Ba, "Adam: A Method for Stochastic Optimization", 2015.
      https://arxiv.org/abs/1412.6980
    """
    validate_moment_hyperparams(b1, b2, eps, eps_root, eps_placement, bias_correction, freeze_steps)
    check_state_dtype("mu_dtype", mu_dtype, allow_complex=True)
    check_state_dtype("nu_dtype", nu_dtype, second_moment=True)
    estimator = default_estimator(second_moment)

    def init_fn(params):
        mu, nu = init_moments(params, estimator, mu_dtype, nu_dtype, first_moment=not is_exactly_zero(b1))
        return ScaleByAdamState(count=jnp.zeros([], jnp.int32), mu=mu, nu=nu)

    def update_fn(updates, state, params=None):
        del params
        check_state_type(state, ScaleByAdamState, "scale_by_adam")
        check_moments(updates, state.mu, state.nu, estimator, mu_dtype, "scale_by_adam", nu_dtype)
        moments = update_moments(
            updates, state.count, state.mu, state.nu,
            b1=b1, b2=b2, eps=eps, estimator=estimator, eps_placement=eps_placement,
            bias_correction=bias_correction, freeze_steps=freeze_steps,
        )
        eps_root_t = resolve_eps_root(eps_root, state.count)

        def direction(g, m_hat, v_hat):
            if not is_trainable(m_hat):
                return frozen_update(g, m_hat)
            step = adaptive_step(m_hat, v_hat, moments.eps, eps_root_t)
            if moments.active is True:
                return step.astype(g.dtype)
            # A frozen step moves nothing, but a non-finite v must not hide until the freeze ends.
            idle = jnp.where(jnp.isfinite(v_hat), 0, jnp.nan).astype(step.dtype)
            return jnp.where(moments.active, step, idle).astype(g.dtype)

        updates = jax.tree.map(direction, updates, moments.m_hat, moments.v_hat)
        return updates, ScaleByAdamState(moments.count, moments.mu, moments.nu)

    return optax.GradientTransformation(init_fn, update_fn)
