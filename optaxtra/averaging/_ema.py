"""``ema_averaging``: an exponential moving average of the weights (Polyak), bias-corrected."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .._diagnostics import register_diagnostics
from .._hyperparams import ScalarOrSchedule, resolve_decay
from .._xla import increment, overwrite
from .._tree_checks import check_state_type
from .._validation import check_bool, check_int, check_real
from ._source import check_source, init_average, update_average, weights_after

__all__ = ["EmaAveragingState", "ema_averaging", "ema_warmup_decay"]


class EmaAveragingState(NamedTuple):
    """State of ``ema_averaging``.

    Attributes:
      count: number of updates applied (int32).
      average: the averaged weights (bias-corrected with ``debias``), a pytree
        like the params, float32 for half-precision leaves; read it with
        ``optaxtra.averaged_params``.
      correction: ``1 - prod(decay_i)`` over the updates so far (float32),
        the weight the zero-initialised average has gathered.
      decay: the decay used by the last update (float32), for diagnostics.
      inner: the inner optimizer's state.
    """

    count: jax.Array
    average: Any
    correction: jax.Array
    decay: jax.Array
    inner: Any


def ema_averaging(
    inner: optax.GradientTransformation,
    decay: ScalarOrSchedule = 0.999,
    *,
    debias: bool = True,
    average_slow_weights: bool = False,
) -> optax.GradientTransformation:
    r"""Runs ``inner`` and keeps an exponential moving average of the weights in the state.

    The params stay plain (they are ``inner``'s); the average lives in the
    state and is read for evaluation with ``optaxtra.averaged_params``. With
    ``theta_t`` the weights after update ``t`` and ``beta_t`` the decay:

    .. math::
      \bar\theta_t = \beta_t \bar\theta_{t-1} + (1 - \beta_t)\,\theta_t,\qquad
      \hat\theta_t = \bar\theta_t \big/ \left(1 - \textstyle\prod_{i \le t} \beta_i\right)

    ``debias=True`` (default) is the Adam paper's temporal averaging (section
    7.2): ``bar theta_0 = 0`` and the average is ``hat theta_t``, so early
    averages are not pulled towards the start (``hat theta_1 = theta_1``).
    It is kept directly as ``hat theta``, updated by
    ``hat theta_t = hat theta_{t-1} + w_t (theta_t - hat theta_{t-1})`` with
    ``w_t = (1 - beta_t) / (1 - prod beta_i)``. ``debias=False`` starts the
    average at the params given to ``init`` and uses ``w_t = 1 - beta_t``
    (timm's ``ModelEma``; PyTorch's ``AveragedModel`` with
    ``get_ema_multi_avg_fn(decay)`` when ``update_parameters`` is also called
    before training).

    Args:
      inner: the optimizer whose weights are averaged.
      decay: ``beta`` in [0, 1): a number, array or schedule (evaluated at
        the update's step count; see ``ema_warmup_decay`` for a warm-up).
      debias: divide out the zero start (Adam paper) instead of starting at
        the initial params.
      average_slow_weights: average Lookahead's slow weights instead of the
        params (needs Lookahead in ``inner``, e.g. ``ranger``).

    Returns:
      An ``optax.GradientTransformation`` with state ``EmaAveragingState``;
      its ``update`` needs ``params``.

    Example:
      >>> import jax.numpy as jnp, optax, optaxtra
      >>> tx = optaxtra.ema_averaging(optax.sgd(1.0), decay=0.5)
      >>> params = jnp.zeros(1)
      >>> state = tx.init(params)
      >>> for _ in range(2):
      ...     updates, state = tx.update(jnp.ones(1), state, params)
      ...     params = optax.apply_updates(params, updates)
      >>> params, optaxtra.averaged_params(state)  # (0.5 * -1 + -2) / (1 - 0.25)
      (Array([-2.], dtype=float32), Array([-1.6666667], dtype=float32))

    References:
      Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015,
      section 7.2. https://arxiv.org/abs/1412.6980

      Polyak & Juditsky, "Acceleration of Stochastic Approximation by
      Averaging", SIAM J. Control Optim. 1992. https://doi.org/10.1137/0330046
    """
    if not isinstance(inner, optax.GradientTransformation):
        raise TypeError(f"inner must be an optax.GradientTransformation, got {type(inner).__name__}.")
    check_real("decay", decay, 0.0, 1.0, high_open=True)
    check_bool("debias", debias)
    check_bool("average_slow_weights", average_slow_weights)

    def init_fn(params):
        inner_state = inner.init(params)
        check_source("ema_averaging", inner_state, average_slow_weights)
        zero = lambda: jnp.zeros([], jnp.float32)  # one array per field: each can be donated
        return EmaAveragingState(
            jnp.zeros([], jnp.int32), init_average(params), zero(), zero(), inner_state
        )

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("ema_averaging needs the params: call update(updates, state, params).")
        check_state_type(state, EmaAveragingState, "ema_averaging")
        updates, inner_state = inner.update(updates, state.inner, params)
        weights = weights_after(updates, params, inner_state, average_slow_weights)
        beta = resolve_decay(decay, state.count)
        correction = state.correction + beta.complement * (1 - state.correction)
        weight = beta.complement / correction if debias else beta.complement

        def move(average, w):
            # Weight 1 (the first debiased step, or decay 0) copies exactly.
            return jnp.where(weight == 1, w, average + weight.astype(average.dtype) * (w - average))

        average = update_average(state.average, weights, jnp.bool_(True), move)
        rate = overwrite(state.decay, beta.rate)
        return updates, EmaAveragingState(increment(state.count), average, correction, rate, inner_state)

    return optax.GradientTransformation(init_fn, update_fn)


def ema_warmup_decay(decay: float = 0.9999, *, offset: int = 10) -> optax.Schedule:
    r"""A decay that warms up: ``min(decay, (1 + t) / (offset + t))``.

    The rule of TensorFlow's ``ExponentialMovingAverage(num_updates=...)``:
    early averages forget fast (``0.1`` at ``t = 0`` with ``offset=10``), so
    the average is not dominated by the first, worst weights; the decay
    reaches ``decay`` after about ``offset / (1 - decay)`` updates. ``t`` is
    the step count (0 on the first update). Pass it as ``ema_averaging``'s
    ``decay``, usually with ``debias=False``.

    Args:
      decay: the final decay in [0, 1) (a number or array).
      offset: an integer >= 1; larger warms up more slowly.

    Returns:
      A schedule ``step -> float32 decay``.

    Example:
      >>> import optaxtra
      >>> schedule = optaxtra.ema_warmup_decay(0.99)
      >>> [round(float(schedule(t)), 4) for t in (0, 1, 10, 10_000)]
      [0.1, 0.1818, 0.55, 0.99]

    References:
      TensorFlow, ``tf.train.ExponentialMovingAverage``.
      https://www.tensorflow.org/api_docs/python/tf/train/ExponentialMovingAverage
    """
    check_real("decay", decay, 0.0, 1.0, high_open=True, allow_schedule=False)
    check_int("offset", offset, 1)

    def schedule(count):
        t = jnp.asarray(count, jnp.float32)
        return jnp.minimum(jnp.asarray(decay, jnp.float32), (1.0 + t) / (offset + t))

    return schedule


register_diagnostics(EmaAveragingState, lambda s: {"ema/decay": s.decay, "ema/count": s.count})
