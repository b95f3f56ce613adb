"""``scale_by_adopt``: ADOPT's direction, the gradient normalised by the *previous* second moment."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .._diagnostics import register_diagnostics
from .._hyperparams import ScalarOrSchedule, compute_dtype, resolve, resolve_decay
from .._leaves import frozen_update, is_trainable
from .._tree_checks import check_state_type
from .._quantization import is_quantized
from .._quantized_storage import check_state_dtype, load, storage_spec, store
from .._validation import check_choice, check_real
from .._xla import after, increment, overwrite
from ._moments import check_moments, init_moments
from ._second_moment import abs_squared, ema_second_moment

__all__ = ["ClipStep", "ScaleByAdoptState", "adopt_clip", "scale_by_adopt"]

#: Which step the clip ``s ** clip_exponent`` reads at the 1-based update ``t``:
#: ``"previous"`` (``s = t - 1``; the authors' torch-adopt, timm, optax.contrib)
#: or ``"current"`` (``s = t``; pytorch-optimizer 4.1).
ClipStep = Literal["previous", "current"]


class ScaleByAdoptState(NamedTuple):
    """State of ``scale_by_adopt``.

    Attributes:
      count: number of updates applied so far (int32).
      mu: the momentum of the normalised gradients, a pytree like the params.
      nu: the second moment ``v``, real and at least float32.
      clip: the clip value of the last update (float32; ``inf`` without
        clipping, 0 before the first update), for ``optaxtra.diagnostics``.
    """

    count: jax.Array
    mu: Any
    nu: Any
    clip: jax.Array


def adopt_clip(step: jax.Array, exponent: Any, clip_step: ClipStep = "previous") -> jax.Array:
    """ADOPT's clip value at the 1-based update ``step`` (float32).

    Args:
      step: the update being computed, 1 on the first (int32).
      exponent: the clip's exponent (0.25 in the paper), or None for no clip.
      clip_step: ``"previous"`` reads ``(step - 1) ** exponent``, ``"current"``
        reads ``step ** exponent``.

    Returns:
      The clip value; ``inf`` where ``exponent`` is None.

    Example:
      >>> import jax.numpy as jnp
      >>> from optaxtra import adopt_clip
      >>> print(adopt_clip(jnp.int32(17), 0.25), adopt_clip(jnp.int32(17), 0.25, "current"))
      2.0 2.030543
    """
    if exponent is None:
        return jnp.asarray(jnp.inf, jnp.float32)
    base = step - 1 if clip_step == "previous" else step
    return jnp.power(jnp.asarray(base, jnp.float32), jnp.asarray(exponent, jnp.float32))


def _clip(x: jax.Array, clip: jax.Array) -> jax.Array:
    """``x`` clipped to ``[-clip, clip]``; for complex ``x`` its modulus (so that a phase commutes)."""
    clip = clip.astype(jnp.finfo(x.dtype).dtype)
    if jnp.iscomplexobj(x):
        modulus = jnp.abs(x)
        return jnp.where(modulus > clip, x * (clip / modulus).astype(x.dtype), x)
    return jnp.clip(x, -clip, clip)


def scale_by_adopt(
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.9999,
    eps: ScalarOrSchedule = 1e-6,
    *,
    clip_exponent: float | jax.Array | None = 0.25,
    clip_step: ClipStep = "previous",
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""ADOPT's direction: normalise by the previous ``v``, clip, then average.

    .. math::
      t = 1:\quad v_1 = g_1^2,\quad u_1 = 0 \\
      t > 1:\quad \tilde g_t = \mathrm{clip}\!\left(\frac{g_t}{\max(\sqrt{v_{t-1}}, \epsilon)},\ c_t\right),\quad
      m_t = b_1 m_{t-1} + (1 - b_1)\,\tilde g_t,\quad
      v_t = b_2 v_{t-1} + (1 - b_2)\, g_t^2,\quad u_t = m_t

    Normalising by ``v_{t-1}``, which does not contain ``g_t``, is what makes
    ADOPT converge for any ``b2``; the first update only initialises ``v``.
    ``eps`` bounds the denominator from below (a ``max``, not a sum). The
    clip ``c_t = s^{p}`` with ``p = clip_exponent`` reads ``s = t - 1``
    (``clip_step="previous"``: the authors' torch-adopt, timm's ``Adopt``,
    ``optax.contrib.adopt``) or ``s = t`` (``"current"``: pytorch-optimizer
    4.1's ``ADOPT``). timm's default exponent is 0.333; ``clip_exponent=None``
    does not clip (torch-adopt's ``clip_lambda=None``, optax's
    ``use_clipping=False``). Complex leaves are clipped in modulus and use
    ``|g|**2``. Follow with ``scale_by_learning_rate``.

    Args:
      b1: decay of the momentum, in [0, 1); a number, array or schedule.
      b2: decay of the second moment, in [0, 1).
      eps: lower bound of ``sqrt(v_{t-1})``, >= 0.
      clip_exponent: ``p`` in ``c_t = s**p``, >= 0 (a number or array), or None.
      clip_step: ``"previous"`` (``s = t - 1``) or ``"current"`` (``s = t``).
      mu_dtype: storage dtype of the momentum; None keeps the params' dtype.
        ``v`` is kept real, in at least float32. ``jnp.int8`` (or
        ``blockwise_int8(...)``) stores both block-wise in 8 bits.

    Returns:
      An ``optax.GradientTransformation`` with state ``ScaleByAdoptState``.

    Example:
      The first update only sets ``v = g**2``; the second normalises the
      gradient by it (``4 / 2 = 2``), clips it at ``1**0.25 = 1`` and averages:
      ``0.1 * 1 = 0.1``; the gradient 1 gives ``0.1 * 1 / 2``.

      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.scale_by_adopt()
      >>> state = tx.init(jnp.zeros(2))
      >>> for g in ([2.0, 2.0], [4.0, 1.0]):
      ...     updates, state = tx.update(jnp.array(g), state)
      ...     print(updates)
      [0. 0.]
      [0.1  0.05]

    References:
      Taniguchi et al., "ADOPT: Modified Adam Can Converge with Any beta2
      with the Optimal Rate", NeurIPS 2024. https://arxiv.org/abs/2411.02853
    """
    check_real("b1", b1, 0.0, 1.0, high_open=True)
    check_real("b2", b2, 0.0, 1.0, high_open=True)
    check_real("eps", eps, 0.0)
    if clip_exponent is not None:
        check_real("clip_exponent", clip_exponent, 0.0, allow_schedule=False)
    check_choice("clip_step", clip_step, ("previous", "current"))
    check_state_dtype("mu_dtype", mu_dtype)
    nu_dtype = mu_dtype if storage_spec(mu_dtype) is not None else None  # 8-bit: both moments
    estimator = ema_second_moment()

    def init_fn(params):
        mu, nu = init_moments(params, estimator, mu_dtype, nu_dtype)
        zero = jnp.zeros([], jnp.float32)
        return ScaleByAdoptState(count=jnp.zeros([], jnp.int32), mu=mu, nu=nu, clip=zero)

    def update_fn(updates, state, params=None):
        del params
        check_state_type(state, ScaleByAdoptState, "scale_by_adopt")
        check_moments(updates, state.mu, state.nu, estimator, mu_dtype, "scale_by_adopt", nu_dtype)
        b1_t, b2_t = resolve_decay(b1, state.count), resolve_decay(b2, state.count)
        eps_t = resolve(eps, state.count)
        # The clip and the first-update test read the new count: a reader of the old one
        # makes XLA copy it in a donated step (``optaxtra._xla``).
        step = increment(state.count)
        clip = adopt_clip(step, clip_exponent, clip_step)
        first = step == 1

        def leaf(g, m, v):
            if not is_quantized(m) and not is_trainable(m):
                return m, v, frozen_update(g, m)
            out_dtype, dtype = g.dtype, compute_dtype(g.dtype)
            real = jnp.finfo(dtype).dtype
            g = g.astype(dtype)
            if is_quantized(m):  # 8-bit: dequantize, update in float32, requantize
                return _stored_leaf(g, load(m).astype(dtype), load(v).astype(real), m, v, out_dtype)
            v_old = v.astype(real)
            normed = g / jnp.maximum(jnp.sqrt(v_old), eps_t.astype(real)).astype(dtype)
            normed = _clip(normed, clip)
            m_new = b1_t.rate.astype(dtype) * m.astype(dtype) + b1_t.complement.astype(dtype) * normed
            m_new = jnp.where(first, m.astype(dtype), m_new)
            m_stored = m_new.astype(m.dtype)
            v_old = after(v_old, m_stored)
            g2 = abs_squared(g)
            v_new = jnp.where(
                first, g2, b2_t.rate.astype(real) * v_old + b2_t.complement.astype(real) * g2
            )
            v_stored = v_new.astype(v.dtype)
            return m_stored, v_stored, after(m_new, v_stored).astype(out_dtype)

        def _stored_leaf(g, m_old, v_old, m, v, out_dtype):
            normed = _clip(g / jnp.maximum(jnp.sqrt(v_old), eps_t.astype(v_old.dtype)).astype(g.dtype), clip)
            m_new = b1_t.rate.astype(g.dtype) * m_old + b1_t.complement.astype(g.dtype) * normed
            m_new = jnp.where(first, m_old, m_new)
            g2 = abs_squared(g)
            v_new = jnp.where(first, g2, b2_t.rate.astype(v_old.dtype) * v_old + b2_t.complement.astype(v_old.dtype) * g2)
            return store(m_new, m), store(v_new, v), m_new.astype(out_dtype)

        results = jax.tree.map(leaf, updates, state.mu, state.nu)
        treedef = jax.tree.structure(updates)
        per_leaf = treedef.flatten_up_to(results)
        mu, nu, updates = (treedef.unflatten([r[i] for r in per_leaf]) for i in range(3))
        new_state = ScaleByAdoptState(step, mu, nu, overwrite(state.clip, clip))
        return updates, new_state

    return optax.GradientTransformation(init_fn, update_fn)


register_diagnostics(ScaleByAdoptState, lambda s: {"adopt/clip": s.clip})
