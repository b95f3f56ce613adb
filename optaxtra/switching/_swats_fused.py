"""SWATS's switch as one function: the fast twin of ``switch_when(adam phase, sgd phase)``.

``swats`` is built as ``switch_when`` of its two phases, which branches with
``lax.cond``. XLA stores every array that crosses the conditional (the updates
and both phases' states) and copies those passed through unchanged: SWATS ran
at 4.9-7.4x the bandwidth floor that way. Here both phases are written out,
the states are selected leaf by leaf (``jnp.where``), and the updates are
computed from the selected, stored moments, which an optimization barrier
makes XLA read instead of recomputing them from the donated (overwritten) old
ones. The state is the plain form's, so the two are interchangeable;
``optaxtra.plain_paths()`` traces the plain form, and
``tests/test_fast_paths.py`` checks that both give the same numbers, switch
included.
"""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp
import optax

from .._xla import combine_apart
from .._fast_paths import fast_paths_enabled
from .._hyperparams import ScalarOrSchedule, compute_dtype, resolve
from .._xla import increment
from .._leaves import frozen_update, is_trainable
from .._tree_checks import check_state_type
from ..transforms._adam import ScaleByAdamState
from ..transforms._learning_rate import ScaleByLearningRateState
from ..transforms._moments import adaptive_step, check_moments, default_estimator, update_moments
from ._switch import SwitchState
from ._swats_phases import momentum_step, products, projection, total

__all__ = ["fused_swats_switch"]


def fused_swats_switch(
    plain: optax.GradientTransformation,
    *,
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule,
    b2: ScalarOrSchedule,
    eps: ScalarOrSchedule,
    eps_placement: Literal["corrected", "uncorrected"],
    mu_dtype: Any,
    switch_atol: float,
    switch_rtol: float,
) -> optax.GradientTransformation:
    """``plain`` (SWATS's ``switch_when``) with a fast ``update`` of the same state.

    Args:
      plain: the switch of SWATS's two phases; its ``init`` is used, and its
        ``update`` inside ``plain_paths()``.
      learning_rate, b1, b2, eps, eps_placement, mu_dtype, switch_atol,
        switch_rtol: SWATS's arguments (see ``swats``).

    Returns:
      An ``optax.GradientTransformation`` with ``plain``'s state.
    """
    estimator = default_estimator(None)
    project = projection(b2, switch_atol, switch_rtol)

    def update_fn(grads, state, params=None):
        if not fast_paths_enabled():
            return plain.update(grads, state, params)
        check_state_type(state, SwitchState, "swats")
        adam_state, sgd_state = state.first, state.second
        moments_state, rate_state = adam_state.inner
        check_moments(grads, moments_state.mu, moments_state.nu, estimator, mu_dtype, "swats")
        switched = state.switched_at >= 0
        select = lambda flag, a, b: jax.tree.map(lambda x, y: jnp.where(flag, x, y), a, b)

        moments = update_moments(
            grads, moments_state.count, moments_state.mu, moments_state.nu,
            b1=b1, b2=b2, eps=eps, estimator=estimator, eps_placement=eps_placement,
            bias_correction=True, freeze_steps=0,
        )
        mu = select(switched, moments_state.mu, moments.mu)
        nu = select(switched, moments_state.nu, moments.nu)
        momentum, momentum_update = momentum_step(b1, sgd_state, grads)
        momentum = select(switched, momentum, sgd_state.momentum)
        # The updates below read the stored moments: without the barrier XLA recomputes the new
        # moments from the old ones in each consumer, and copies the donated old ones to do so.
        mu, nu, momentum = jax.lax.optimization_barrier((mu, nu, momentum))

        rate = resolve(learning_rate, rate_state.count)

        def adam_step(g, m, v):
            if not is_trainable(m):
                return frozen_update(g, m)
            dtype = compute_dtype(g.dtype)
            m_hat = m.astype(dtype) / moments.bias_correction1.astype(dtype)
            v_hat = estimator.corrected(v, moments.bias_correction2)  # v is stored in >= float32
            return adaptive_step(m_hat, v_hat, moments.eps, None).astype(g.dtype)

        # The dot products take Adam's step before the learning rate (the step is then the
        # only array XLA stores, once for the products and the update) and are scaled after.
        directions = jax.tree.map(adam_step, grads, mu, nu)
        steps = jax.tree.map(lambda d: (-rate).astype(d.dtype) * d, directions)
        # Summed apart from the per-leaf products (see optaxtra._xla.combine_apart), and only before the
        # switch: after it the projection is discarded.
        zero = jnp.zeros([], jnp.float32)
        step_dot_grad, step_dot_step = combine_apart(
            lambda t: (total(t[0]), total(t[1])),
            (products(directions, grads), products(directions, directions)),
            unless=switched, otherwise=(zero, zero),
        )
        dots = (-rate * step_dot_grad, rate**2 * step_dot_step)
        inner = (
            ScaleByAdamState(moments.count, mu, nu),
            ScaleByLearningRateState(increment(rate_state.count), rate),
        )
        projected = project(*dots, adam_state._replace(inner=inner))
        # The moments are selected already: their leaves are the same on both sides.
        kept = adam_state._replace(inner=(moments_state._replace(mu=mu, nu=nu), rate_state))
        first = select(switched, kept, projected)
        switch_now = ~switched & projected.settled
        done = increment(state.count)
        handed = sgd_state._replace(count=projected.count, learning_rate=projected.sgd_learning_rate)
        advanced = sgd_state._replace(count=increment(sgd_state.count))
        second = select(switched, advanced, select(switch_now, handed, sgd_state))._replace(
            momentum=momentum
        )
        updates = select(switched, jax.tree.map(momentum_update, momentum, grads), steps)
        switched_at = jnp.where(switched, state.switched_at, jnp.where(switch_now, done, -1))
        return updates, SwitchState(done, switched_at, first, second)

    return optax.GradientTransformation(plain.init, update_fn)
