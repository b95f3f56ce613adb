"""SWATS's phase states, and the arithmetic of its two phases and of the projection that ends the first."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from .._diagnostics import register_diagnostics
from .._hyperparams import ScalarOrSchedule, compute_dtype, resolve_decay
from .._xla import increment
from .._leaves import frozen_update, is_trainable
from .._tree_checks import check_tree_matches

__all__ = ["SwatsAdamState", "SwatsSgdState", "momentum_step", "products", "projection", "total"]


class SwatsAdamState(NamedTuple):
    """State of SWATS's Adam phase.

    Attributes:
      count: number of Adam updates applied (int32).
      inner: the Adam chain's state.
      ema: ``lambda_k``, the moving average of the projected rates (float32).
      sgd_learning_rate: ``Lambda_k = lambda_k / (1 - b2**k)``, the SGD rate
        SWATS switches to (float32).
      projected_learning_rate: ``gamma_k`` of the last Adam step (float32).
      settled: whether the last update met the switching criterion (bool).
    """

    count: jax.Array
    inner: Any
    ema: jax.Array
    sgd_learning_rate: jax.Array
    projected_learning_rate: jax.Array
    settled: jax.Array


class SwatsSgdState(NamedTuple):
    """State of SWATS's SGD phase.

    Attributes:
      count: number of updates applied, Adam phase included (int32).
      momentum: ``v``, a pytree like the params (float32 for half precision).
      learning_rate: ``Lambda``, fixed at the switch (float32).
    """

    count: jax.Array
    momentum: Any
    learning_rate: jax.Array


def products(a: Any, b: Any) -> list[jax.Array]:
    """``sum(x * y)`` of each floating leaf pair, in float32.

    As dot products (``jnp.vdot``): XLA reads both operands in place, where a
    sum of an elementwise product stores the product when an operand is also
    used elsewhere (Adam's step, in SWATS).
    """
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b))
    return [jnp.vdot(x.astype(jnp.float32).ravel(), y.astype(jnp.float32).ravel()) for x, y in pairs
            if jnp.issubdtype(x.dtype, jnp.floating)]


def total(terms: list[jax.Array]) -> jax.Array:
    """The float32 sum of ``terms``, added left to right from zero."""
    return sum(terms, jnp.zeros([], jnp.float32))


Projection = Callable[[jax.Array, jax.Array, SwatsAdamState], SwatsAdamState]


def projection(b2: ScalarOrSchedule, atol: float, rtol: float) -> Projection:
    """``(p.g, p.p, state) -> state``: one projection of Adam's step ``p`` onto the gradient.

    ``gamma = p.p / -p.g``, its moving average and bias-corrected estimate, and
    the switching criterion; ``state.inner`` is kept as given.
    """

    def project(step_dot_grad: jax.Array, step_dot_step: jax.Array, state: SwatsAdamState):
        projecting = step_dot_grad != 0
        gamma = step_dot_step / jnp.where(projecting, -step_dot_grad, 1.0)
        beta = resolve_decay(b2, state.count)
        count = increment(state.count)
        ema = jnp.where(projecting, beta.rate * state.ema + beta.complement * gamma, state.ema)
        estimate = jnp.where(projecting, ema / beta.debias(count), state.sgd_learning_rate)
        settled = (projecting & (count > 1) & (estimate > 0)
                   & (jnp.abs(estimate - gamma) <= atol + rtol * jnp.abs(gamma)))
        gamma = jnp.where(projecting, gamma, state.projected_learning_rate)
        return SwatsAdamState(count, state.inner, ema, estimate, gamma, settled)

    return project


def momentum_step(
    b1: ScalarOrSchedule, state: SwatsSgdState, grads: Any
) -> tuple[Any, Callable[[jax.Array, jax.Array], jax.Array]]:
    """The SGD phase's ``v = b1 v + g``, and ``(v, g) -> -(1 - b1) * learning_rate * v``."""
    check_tree_matches(grads, state.momentum, piece="swats", against="the momentum in the state",
                       expected_dtype=compute_dtype)
    beta = resolve_decay(b1, state.count)
    factor = -beta.complement * state.learning_rate

    def accumulate(v, g):
        return beta.rate.astype(v.dtype) * v + g.astype(v.dtype) if is_trainable(v) else v

    def step(v, g):
        return (factor.astype(v.dtype) * v).astype(g.dtype) if is_trainable(v) else frozen_update(g, v)

    return jax.tree.map(accumulate, state.momentum, grads), step


register_diagnostics(
    SwatsAdamState,
    lambda s: {
        "swats/sgd_learning_rate": s.sgd_learning_rate,
        "swats/projected_learning_rate": s.projected_learning_rate,
    },
)
