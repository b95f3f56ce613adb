"""SWATS's two phases, their states, and the projection that decides the switch.

Shared by ``swats`` (``_swats.py``), which builds the plain ``switch_when`` of
the phases, and its fused twin (``_swats_fused.py``).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .._diagnostics import register_diagnostics
from .._hyperparams import ScalarOrSchedule, compute_dtype, resolve_decay
from .._xla import increment
from .._leaves import frozen_update, is_trainable
from .._tree_checks import check_tree_matches

__all__ = [
    "SwatsAdamState",
    "SwatsSgdState",
    "adam_phase",
    "momentum_step",
    "projection",
    "sgd_phase",
    "products",
    "sum_of_products",
    "total",
]


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


def sum_of_products(a: Any, b: Any) -> jax.Array:
    """``sum(a * b)`` over every floating leaf, in float32: ``total(products(a, b))``."""
    return total(products(a, b))


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


def adam_phase(adam: optax.GradientTransformation, project: Projection) -> optax.GradientTransformation:
    """``adam``'s updates, with the projected SGD rate and the switching criterion in the state."""

    def init_fn(params):
        zero = lambda: jnp.zeros([], jnp.float32)  # one array per field: each can be donated
        return SwatsAdamState(
            jnp.zeros([], jnp.int32), adam.init(params), zero(), zero(), zero(), jnp.bool_(False)
        )

    def update_fn(grads, state, params=None):
        steps, inner = adam.update(grads, state.inner, params)
        dots = sum_of_products(steps, grads), sum_of_products(steps, steps)
        return steps, project(*dots, state._replace(inner=inner))

    return optax.GradientTransformation(init_fn, update_fn)


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


def sgd_phase(b1: ScalarOrSchedule) -> optax.GradientTransformation:
    """``v = b1 v + g``, update ``-(1 - b1) * learning_rate * v``, the rate read from the state."""

    def init_fn(params):
        params = jax.tree.map(jnp.asarray, params)
        momentum = jax.tree.map(lambda p: jnp.zeros_like(p, dtype=compute_dtype(p.dtype)), params)
        return SwatsSgdState(jnp.zeros([], jnp.int32), momentum, jnp.zeros([], jnp.float32))

    def update_fn(grads, state, params=None):
        del params
        momentum, step = momentum_step(b1, state, grads)
        updates = jax.tree.map(step, momentum, grads)
        return updates, SwatsSgdState(increment(state.count), momentum, state.learning_rate)

    return optax.GradientTransformation(init_fn, update_fn)


register_diagnostics(
    SwatsAdamState,
    lambda s: {
        "swats/sgd_learning_rate": s.sgd_learning_rate,
        "swats/projected_learning_rate": s.projected_learning_rate,
    },
)
