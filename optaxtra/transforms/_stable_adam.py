"""``scale_by_stable_adam``: Adam's direction, recording each tensor's ``RMS(g / sqrt(v_hat))``."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .._hyperparams import ScalarOrSchedule, compute_dtype
from .._leaves import frozen_update, is_trainable
from .._tree_checks import check_state_type
from .._quantization import is_quantized
from .._quantized_storage import check_state_dtype, storage_spec
from .._xla import overwrite
from ._moments import (
    adaptive_step,
    check_moments,
    init_moments,
    update_moments,
    validate_moment_hyperparams,
)
from ._second_moment import abs_squared, ema_second_moment

__all__ = ["ScaleByStableAdamState", "scale_by_stable_adam"]


class ScaleByStableAdamState(NamedTuple):
    """State of ``scale_by_stable_adam``.

    Attributes:
      count: number of updates applied so far (int32).
      mu: first moment, a pytree like the params.
      nu: second moment, real and at least float32.
      rms: per tensor, ``sqrt(mean(|g_t|**2 / max(v_hat_t, eps**2)))`` of the
        last update (a float32 scalar per leaf; 0 for frozen leaves), which
        ``clip_by_update_rms`` turns into the update's clipping factor.
    """

    count: jax.Array
    mu: Any
    nu: Any
    rms: Any


def scale_by_stable_adam(
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.99,
    eps: ScalarOrSchedule = 1e-6,
    *,
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""Adam's direction, and per tensor the RMS of the gradient over the *current* ``sqrt(v_hat)``.

    .. math::
      u_t = \hat m_t / (\sqrt{\hat v_t} + \epsilon),\qquad
      \mathrm{RMS}_t = \sqrt{\operatorname{mean}\left(g_t^2 / \max(\hat v_t, \epsilon^2)\right)}

    ``RMS_t`` (Wortsman et al.'s Algorithm 2, an Adafactor-style measure of how
    stale ``v`` is) goes to the state; ``clip_by_update_rms`` wrapped around a
    chain containing this piece divides the chain's update by
    ``max(1, RMS_t)``. The paper, torch-optimi and pytorch-optimizer write the
    moments as EMAs with debiased betas ``b (1 - b^{t-1}) / (1 - b^t)``, which
    are ``m_hat`` and ``v_hat`` themselves.

    Args:
      b1: decay of the first moment, in [0, 1); a number, array or schedule.
      b2: decay of the second moment, in [0, 1).
      eps: added to ``sqrt(v_hat)``, and ``eps**2`` bounds ``v_hat`` in the RMS; >= 0.
      mu_dtype: storage dtype of the first moment; ``jnp.int8`` (or
        ``blockwise_int8(...)``) stores both moments block-wise in 8 bits.

    Returns:
      An ``optax.GradientTransformation`` with state ``ScaleByStableAdamState``.

    Example:
      After a gradient 1, a gradient 3 on one entry: ``v_hat = (0.99 + 9) * 0.01 / (1 - 0.99**2)``.

      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.scale_by_stable_adam()
      >>> state = tx.init(jnp.zeros(2))
      >>> for g in ([1.0, 1.0], [3.0, 1.0]):
      ...     _, state = tx.update(jnp.array(g), state)
      >>> v_hat = (0.99 + 9.0) * 0.01 / (1 - 0.99**2)
      >>> print(f"{float(state.rms):.4f} {((9 / v_hat + 1) / 2) ** 0.5:.4f}")
      1.1817 1.1817

    References:
      Wortsman et al., "Stable and low-precision training for large-scale
      vision-language models", NeurIPS 2023, Algorithm 2.
      https://arxiv.org/abs/2304.13013
    """
    validate_moment_hyperparams(b1, b2, eps, 0.0, "corrected", True, 0)
    check_state_dtype("mu_dtype", mu_dtype)
    nu_dtype = mu_dtype if storage_spec(mu_dtype) is not None else None  # 8-bit: both moments
    estimator = ema_second_moment()

    def init_fn(params):
        mu, nu = init_moments(params, estimator, mu_dtype, nu_dtype)
        rms = jax.tree.map(lambda _: jnp.zeros([], jnp.float32), mu, is_leaf=is_quantized)
        return ScaleByStableAdamState(jnp.zeros([], jnp.int32), mu, nu, rms)

    def update_fn(updates, state, params=None):
        del params
        check_state_type(state, ScaleByStableAdamState, "scale_by_stable_adam")
        check_moments(updates, state.mu, state.nu, estimator, mu_dtype, "scale_by_stable_adam", nu_dtype)
        moments = update_moments(
            updates, state.count, state.mu, state.nu, b1=b1, b2=b2, eps=eps, estimator=estimator,
            eps_placement="corrected", bias_correction=True, freeze_steps=0,
        )

        def leaf(g, m_hat, v_hat, old_rms):
            if not is_trainable(m_hat):
                return frozen_update(g, m_hat), old_rms
            real = v_hat.dtype
            floor = jnp.square(moments.eps.astype(real))
            ratio = abs_squared(g.astype(compute_dtype(g.dtype))).astype(real) / jnp.maximum(v_hat, floor)
            rms = jnp.sqrt(jnp.mean(ratio)).astype(jnp.float32) if ratio.size else jnp.float32(0.0)
            step = adaptive_step(m_hat, v_hat, moments.eps, None)
            return step.astype(g.dtype), overwrite(old_rms, rms)

        results = jax.tree.map(leaf, updates, moments.m_hat, moments.v_hat, state.rms)
        treedef = jax.tree.structure(updates)
        per_leaf = treedef.flatten_up_to(results)
        updates, rms = (treedef.unflatten([r[i] for r in per_leaf]) for i in range(2))
        return updates, ScaleByStableAdamState(moments.count, moments.mu, moments.nu, rms)

    return optax.GradientTransformation(init_fn, update_fn)
