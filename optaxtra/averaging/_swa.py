"""``swa_averaging``: stochastic weight averaging, a uniform average every ``period`` steps."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .._diagnostics import register_diagnostics
from .._xla import increment, overwrite
from .._tree_checks import check_state_type
from .._validation import check_bool, check_int
from ._source import check_source, init_average, update_average, weights_after

__all__ = ["SwaAveragingState", "swa_averaging"]


class SwaAveragingState(NamedTuple):
    """State of ``swa_averaging``.

    Attributes:
      count: number of updates applied (int32).
      average: the uniform average of the weights averaged so far, a pytree
        like the params (float32 for half-precision leaves); the params given
        to ``init`` until the first is averaged in. Read it with
        ``optaxtra.averaged_params``.
      n_averaged: how many weights the average holds (int32).
      averaged: whether the last update's weights were averaged in (bool).
      inner: the inner optimizer's state.
    """

    count: jax.Array
    average: Any
    n_averaged: jax.Array
    averaged: jax.Array
    inner: Any


def swa_averaging(
    inner: optax.GradientTransformation,
    start_step: int,
    period: int = 1,
    *,
    average_slow_weights: bool = False,
) -> optax.GradientTransformation:
    r"""Runs ``inner`` and keeps the SWA average of its weights in the state.

    The weights after update ``n`` (``n = 1, 2, ...``; ``n = 0`` is the
    params given to ``init``) are averaged in when ``n >= start_step`` and
    ``(n - start_step) % period == 0``:

    .. math::
      \theta_{SWA} \leftarrow \theta_{SWA} + \frac{\theta_n - \theta_{SWA}}{n_{avg} + 1}

    the first one copied exactly, as PyTorch's ``AveragedModel`` does on its
    first ``update_parameters``. The SWA paper's Algorithm 1 (the pretrained
    weights are the first model averaged, then one every cycle of ``c``
    updates) is ``start_step`` at the step count where the SWA phase begins
    and ``period = c``; pair it with ``swa_learning_rate`` (constant) or
    ``swa_cyclic_learning_rate`` with the same ``start_step``. PyTorch's
    usual loop (``if epoch > swa_start: swa_model.update_parameters(model)``
    after each epoch's update) is ``start_step = swa_start + 2``.

    The params stay plain; there is no ``update_bn``: recompute batch-norm
    statistics with the averaged weights yourself if the model has them.

    Args:
      inner: the optimizer whose weights are averaged.
      start_step: the first update whose weights are averaged, an integer
        >= 0 (0 includes the params given to ``init``).
      period: average every ``period`` updates from then on, an integer >= 1.
      average_slow_weights: average Lookahead's slow weights instead of the
        params (needs Lookahead in ``inner``, e.g. ``ranger``).

    Returns:
      An ``optax.GradientTransformation`` with state ``SwaAveragingState``;
      its ``update`` needs ``params``.

    Example:
      >>> import jax.numpy as jnp, optax, optaxtra
      >>> tx = optaxtra.swa_averaging(optax.sgd(1.0), start_step=2, period=2)
      >>> params = jnp.zeros(1)
      >>> state = tx.init(params)
      >>> for _ in range(6):  # params -1, ..., -6; averaged: -2, -4, -6
      ...     updates, state = tx.update(jnp.ones(1), state, params)
      ...     params = optax.apply_updates(params, updates)
      >>> optaxtra.averaged_params(state), state.n_averaged
      (Array([-4.], dtype=float32), Array(3, dtype=int32))

    References:
      Izmailov et al., "Averaging Weights Leads to Wider Optima and Better
      Generalization", UAI 2018. https://arxiv.org/abs/1803.05407
    """
    if not isinstance(inner, optax.GradientTransformation):
        raise TypeError(f"inner must be an optax.GradientTransformation, got {type(inner).__name__}.")
    check_int("start_step", start_step, 0)
    check_int("period", period, 1)
    check_bool("average_slow_weights", average_slow_weights)

    def init_fn(params):
        inner_state = inner.init(params)
        check_source("swa_averaging", inner_state, average_slow_weights)
        included = start_step == 0
        return SwaAveragingState(
            count=jnp.zeros([], jnp.int32),
            average=init_average(params),
            n_averaged=jnp.asarray(int(included), jnp.int32),
            averaged=jnp.asarray(included),
            inner=inner_state,
        )

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("swa_averaging needs the params: call update(updates, state, params).")
        check_state_type(state, SwaAveragingState, "swa_averaging")
        updates, inner_state = inner.update(updates, state.inner, params)
        weights = weights_after(updates, params, inner_state, average_slow_weights)
        count = increment(state.count)
        include = (count >= start_step) & ((count - start_step) % period == 0)
        n = state.n_averaged

        def move(average, w):
            return jnp.where(n == 0, w, average + (w - average) / (n + 1).astype(average.dtype))

        average = update_average(state.average, weights, include, move)
        n_averaged = n + include.astype(jnp.int32)
        averaged = overwrite(state.averaged, include)
        return updates, SwaAveragingState(count, average, n_averaged, averaged, inner_state)

    return optax.GradientTransformation(init_fn, update_fn)


register_diagnostics(
    SwaAveragingState, lambda s: {"swa/n_averaged": s.n_averaged, "swa/averaged": s.averaged}
)
