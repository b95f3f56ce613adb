"""Pluggable second-moment estimators for the adaptive pieces.

``scale_by_adam`` and ``scale_by_radam_rectifier`` divide the first moment by
the square root of a second-moment estimate. Which estimate is a choice, not a
new optimizer: Adam's exponential moving average of ``g**2``, AMSGrad's running
maximum of it, or AdaBelief's moving average of ``(g - m)**2``. Each estimator
here is a ``SecondMoment``: three per-leaf pure functions.

Conventions (see the README's conventions table):

* AMSGrad ``max_of="raw"`` (default, PyTorch ``Adam(amsgrad=True)``): keep the
  maximum of the raw ``v`` and divide it by ``1 - b2**t`` of the current step.
  ``max_of="bias_corrected"`` (optax 0.2.8 ``amsgrad``): keep the maximum of
  ``v_hat = v / (1 - b2**t)``. Reddi et al. (2018) correct neither moment; get
  that with ``scale_by_adam(..., bias_correction=False)`` and either setting.
"""

from __future__ import annotations

from typing import Any, Callable, Literal, NamedTuple

import jax
import jax.numpy as jnp

from .._hyperparams import Decay
from .._validation import check_choice, check_real

__all__ = [
    "SecondMoment",
    "ema_second_moment",
    "amsgrad_second_moment",
    "belief_second_moment",
]


class SecondMoment(NamedTuple):
    """A second-moment estimator, as three per-leaf pure functions.

    Attributes:
      init: ``(param, dtype) -> leaf_state``: zeros of the estimator's state for
        one leaf (an array or a tuple of arrays).
      update: ``(grad, mu, leaf_state, b2, bias_correction2) -> leaf_state``,
        where ``mu`` is the new first moment and ``b2`` a resolved ``Decay``
        (use ``b2.rate`` and ``b2.complement``, not ``1 - b2``). All inputs are in the leaf's
        compute dtype (float32 for half-precision leaves).
      corrected: ``(leaf_state, bias_correction2) -> v_hat``: the bias-corrected
        estimate whose square root divides the first moment.
    """

    init: Callable[[jax.Array, Any], Any]
    update: Callable[..., Any]
    corrected: Callable[[Any, jax.Array], jax.Array]


def abs_squared(x: jax.Array) -> jax.Array:
    """``|x|**2``, real-valued also for complex ``x``."""
    if jnp.iscomplexobj(x):
        return jnp.real(x) ** 2 + jnp.imag(x) ** 2
    return x * x


def real_zeros(param: jax.Array, dtype: Any) -> jax.Array:
    """Zeros like ``param`` in the real dtype of ``dtype`` (the param's if None), with its sharding."""
    dtype = jnp.dtype(param.dtype if dtype is None else dtype)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        dtype = jnp.finfo(dtype).dtype
    return jnp.zeros_like(param, dtype=dtype)  # keeps the param's sharding


def _ema(previous: jax.Array, value: jax.Array, b2: Decay) -> jax.Array:
    dtype = value.dtype
    return b2.rate.astype(dtype) * previous.astype(dtype) + b2.complement.astype(dtype) * value


def ema_second_moment() -> SecondMoment:
    """Adam's estimator: ``v_t = b2 v + (1 - b2) g**2``, ``v_hat = v_t / (1 - b2**t)``.

    Returns:
      A ``SecondMoment``.

    Example:
      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.scale_by_adam(b2=0.5, second_moment=optaxtra.ema_second_moment())
      >>> state = tx.init(jnp.zeros(2))
      >>> for g in ([2.0, 4.0], [4.0, 2.0]):
      ...     _, state = tx.update(jnp.array(g), state)
      >>> print(state.nu)  # 0.5 * 0.5 * g_1**2 + 0.5 * g_2**2
      [9. 6.]

    References:
      Kingma & Ba, "Adam: A Method for Stochastic Optimization", 2015.
      https://arxiv.org/abs/1412.6980
    """
    return SecondMoment(
        init=real_zeros,
        update=lambda g, mu, nu, b2, bc2: _ema(nu, abs_squared(g), b2),
        corrected=lambda nu, bc2: nu / bc2.astype(nu.dtype),
    )


def amsgrad_second_moment(
    *, max_of: Literal["raw", "bias_corrected"] = "raw"
) -> SecondMoment:
    """AMSGrad's estimator: a running maximum of Adam's second moment.

    Args:
      max_of: ``"raw"`` keeps ``max(v_max, v_t)`` and divides it by
        ``1 - b2**t`` of the current step (PyTorch ``Adam(amsgrad=True)``);
        ``"bias_corrected"`` keeps ``max(v_max, v_t / (1 - b2**t))`` (optax
        0.2.8). They differ: the raw maximum, once set early, is divided by an
        ever larger ``1 - b2**t`` and so shrinks; the corrected one never does.

    Returns:
      A ``SecondMoment`` whose leaf state is the pair ``(v, v_max)``.

    Example:
      With ``b2=0.5``, ``v`` is ``[2, 2]`` then ``[1, 3]``; its bias-corrected
      values are ``[4, 4]`` then ``[4/3, 4]``. Each setting keeps its own maximum:

      >>> import jax.numpy as jnp, optaxtra
      >>> for max_of in ("raw", "bias_corrected"):
      ...     estimator = optaxtra.amsgrad_second_moment(max_of=max_of)
      ...     tx = optaxtra.scale_by_adam(b2=0.5, second_moment=estimator)
      ...     state = tx.init(jnp.zeros(2))
      ...     for g in ([2.0, 2.0], [0.0, 2.0]):
      ...         _, state = tx.update(jnp.array(g), state)
      ...     print(max_of, state.nu[1])  # v_max
      raw [2. 3.]
      bias_corrected [4. 4.]

    References:
      Reddi, Kale & Kumar, "On the Convergence of Adam and Beyond", 2018.
      https://openreview.net/forum?id=ryQu7f-RZ
    """
    check_choice("max_of", max_of, ("raw", "bias_corrected"))

    def init(param, dtype):
        return (real_zeros(param, dtype), real_zeros(param, dtype))

    def update(g, mu, nu, b2, bc2):
        v, v_max = nu
        v = _ema(v, abs_squared(g), b2)
        candidate = v if max_of == "raw" else v / bc2.astype(v.dtype)
        return v, jnp.maximum(v_max.astype(v.dtype), candidate)

    def corrected(nu, bc2):
        _, v_max = nu
        return v_max / bc2.astype(v_max.dtype) if max_of == "raw" else v_max

    return SecondMoment(init=init, update=update, corrected=corrected)


def belief_second_moment(eps: float = 1e-16) -> SecondMoment:
    """AdaBelief's estimator: ``s_t = b2 s + (1 - b2) (g - m_t)**2 + eps``.

    The "belief" in the gradient is how far it lies from its running mean
    ``m_t`` (the new first moment): steps are large where gradients agree with
    their mean, small where they are noisy.

    Args:
      eps: added to ``s_t`` at every step, as in the AdaBelief paper (its
        default 1e-16); the piece's own ``eps`` is added to ``sqrt(s_hat)``.

    Returns:
      A ``SecondMoment``.

    Example:
      A steady gradient: Adam's ``v`` grows with ``g**2``, AdaBelief's ``s``
      only with ``(g - m)**2``. With ``b1 = b2 = 0.5``, ``m`` is ``g/2`` then
      ``3g/4``, so ``s = 0.5 * 0.5 * (g/2)**2 + 0.5 * (g/4)**2 = 3 g**2 / 32``.

      >>> import jax.numpy as jnp, optaxtra
      >>> for estimator in (optaxtra.ema_second_moment(), optaxtra.belief_second_moment(eps=0.0)):
      ...     tx = optaxtra.scale_by_adam(0.5, 0.5, second_moment=estimator)
      ...     state = tx.init(jnp.zeros(2))
      ...     for _ in range(2):
      ...         _, state = tx.update(jnp.array([4.0, 2.0]), state)
      ...     print(state.nu)
      [12.  3.]
      [1.5   0.375]

    References:
      Zhuang et al., "AdaBelief Optimizer: Adapting Stepsizes by the Belief in
      Observed Gradients", 2020. https://arxiv.org/abs/2010.07468
    """
    check_real("eps", eps, 0.0, allow_schedule=False)
    return SecondMoment(
        init=real_zeros,
        update=lambda g, mu, nu, b2, bc2: _ema(nu, abs_squared(g - mu), b2) + eps,
        corrected=lambda nu, bc2: nu / bc2.astype(nu.dtype),
    )
