"""Plain transcriptions of the pieces whose library form is arranged for XLA.

Each library piece has one implementation, the one arranged for what XLA
compiles well (see ``optaxtra/_xla.py`` and the pieces' docstrings). The forms
here compute the same thing as the algorithm reads, without those
arrangements; ``tests/test_fast_paths.py`` runs both and requires the same
numbers to float rounding, and that the library form keeps fewer temporaries.

* ``lookahead_state``: the whole synchronisation under one ``lax.cond``
  (updates, slow weights and inner state cross it).
* ``trust_ratio``: ``u + wd p`` computed once and used for the norm and the step.
* ``scale_by_adam``: Adam whose bias-corrected moments are taken from the
  values computed in float32, before they are stored narrower.
* ``swats``: ``switch_when`` of SWATS's two phases.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

import optaxtra
from optaxtra._hyperparams import compute_dtype, resolve, resolve_decay
from optaxtra._leaves import first_moment_dtype, is_trainable, second_moment_dtype
from optaxtra._stochastic_rounding import stochastic_round_to_bfloat16
from optaxtra._xla import increment
from optaxtra.switching._swats_phases import (
    SwatsAdamState,
    SwatsSgdState,
    momentum_step,
    products,
    projection,
    total,
)
from optaxtra.switching._switch import switch_when
from optaxtra.transforms._lookahead_sync import pulled_back


def lookahead_state(
    inner: optax.GradientTransformation, sync_period: int, slow_step_size: float, *, reset_inner_state=False
) -> optax.GradientTransformation:
    """Lookahead with the sync, slow weights and inner state routed through one ``lax.cond``."""

    def init_fn(params):
        slow = jax.tree.map(lambda p: jnp.array(p, copy=True), params)
        return optaxtra.LookaheadState(jnp.zeros([], jnp.int32), slow, inner.init(params), jnp.zeros([], bool))

    def update_fn(updates, state, params):
        inner_updates, inner_state = inner.update(updates, state.inner, params)
        count = state.count + 1
        synced = count % sync_period == 0

        def sync(_):
            new_slow, moved = pulled_back(state.slow, params, inner_updates, slow_step_size)
            return moved, new_slow, inner.init(new_slow) if reset_inner_state else inner_state

        def keep(_):
            return inner_updates, state.slow, inner_state

        new_updates, slow, inner_state = jax.lax.cond(synced, sync, keep, None)
        return new_updates, optaxtra.LookaheadState(count, slow, inner_state, synced)

    return optax.GradientTransformation(init_fn, update_fn)


def trust_ratio(
    trust_coefficient: float = 1.0, eps: float = 0.0, *, weight_decay: float = 0.0
) -> optax.GradientTransformation:
    """``tc ||p|| / (||u + wd p|| + eps)`` per layer (1 where a norm is 0), times ``u + wd p``."""

    def init_fn(params):
        return optaxtra.TrustRatioState(jax.tree.map(lambda p: jnp.ones([], jnp.float32), params))

    def update_fn(updates, state, params):
        def leaf(u, p):
            dtype = compute_dtype(u.dtype)
            direction = u.astype(dtype) + weight_decay * p.astype(dtype) if weight_decay else u.astype(dtype)
            weight_norm = jnp.sqrt(jnp.sum(jnp.square(p.astype(dtype)))).astype(jnp.float32)
            update_norm = jnp.sqrt(jnp.sum(jnp.square(direction))).astype(jnp.float32)
            ratio = trust_coefficient * weight_norm / (update_norm + eps)
            ratio = jnp.where((weight_norm > 0) & (update_norm > 0), ratio, 1.0)
            return (ratio.astype(dtype) * direction).astype(u.dtype), ratio

        pairs = jax.tree.map(leaf, updates, params)
        treedef = jax.tree.structure(updates)
        flat = treedef.flatten_up_to(pairs)
        return (treedef.unflatten([p[0] for p in flat]),
                optaxtra.TrustRatioState(treedef.unflatten([p[1] for p in flat])))

    return optax.GradientTransformation(init_fn, update_fn)


def scale_by_adam(b1=0.9, b2=0.999, eps=1e-8, *, mu_dtype=None, nu_dtype=None) -> optax.GradientTransformation:
    """Adam whose ``m_hat``, ``v_hat`` come from the computed moments; stored ones rounded as the library does."""

    def init_fn(params):
        mu = jax.tree.map(lambda p: jnp.zeros_like(p, dtype=first_moment_dtype(p.dtype, mu_dtype)), params)
        nu = jax.tree.map(lambda p: jnp.zeros_like(p, dtype=second_moment_dtype(p.dtype, mu_dtype, nu_dtype)), params)
        return optaxtra.ScaleByAdamState(jnp.zeros([], jnp.int32), mu, nu)

    def update_fn(updates, state, params=None):
        del params
        beta1, beta2 = resolve_decay(b1, state.count), resolve_decay(b2, state.count)
        step = increment(state.count)
        correction1, correction2 = beta1.debias(step), beta2.debias(step)
        eps_t = resolve(eps, state.count)
        treedef = jax.tree.structure(updates)

        def leaf(index, g, m, v):
            leaf_dtype, dtype = g.dtype, compute_dtype(g.dtype)
            g = g.astype(dtype)
            m_new = beta1.rate.astype(dtype) * m.astype(dtype) + beta1.complement.astype(dtype) * g
            v_new = beta2.rate * v.astype(jnp.float32) + beta2.complement * jnp.square(g).astype(jnp.float32)
            stored_v = (stochastic_round_to_bfloat16(v_new, step, index) if v.dtype == jnp.bfloat16
                        else v_new.astype(v.dtype))
            direction = (m_new / correction1.astype(dtype)) / (
                jnp.sqrt(v_new / correction2) + eps_t).astype(dtype)
            return direction.astype(leaf_dtype), m_new.astype(m.dtype), stored_v

        flat = [leaf(i, *args) for i, args in enumerate(zip(
            treedef.flatten_up_to(updates), treedef.flatten_up_to(state.mu), treedef.flatten_up_to(state.nu)))]
        unzip = lambda k: treedef.unflatten([f[k] for f in flat])
        return unzip(0), optaxtra.ScaleByAdamState(step, unzip(1), unzip(2))

    return optax.GradientTransformation(init_fn, update_fn)


def _adam_phase(adam: optax.GradientTransformation, b2, atol: float, rtol: float) -> optax.GradientTransformation:
    project = projection(b2, atol, rtol)

    def init_fn(params):
        zero = lambda: jnp.zeros([], jnp.float32)
        return SwatsAdamState(jnp.zeros([], jnp.int32), adam.init(params), zero(), zero(), zero(), jnp.bool_(False))

    def update_fn(grads, state, params=None):
        steps, inner = adam.update(grads, state.inner, params)
        dots = total(products(steps, grads)), total(products(steps, steps))
        return steps, project(*dots, state._replace(inner=inner))

    return optax.GradientTransformation(init_fn, update_fn)


def _sgd_phase(b1) -> optax.GradientTransformation:
    def init_fn(params):
        momentum = jax.tree.map(lambda p: jnp.zeros_like(p, dtype=compute_dtype(p.dtype)), params)
        return SwatsSgdState(jnp.zeros([], jnp.int32), momentum, jnp.zeros([], jnp.float32))

    def update_fn(grads, state, params=None):
        momentum, step = momentum_step(b1, state, grads)
        return jax.tree.map(step, momentum, grads), SwatsSgdState(increment(state.count), momentum,
                                                                  state.learning_rate)

    return optax.GradientTransformation(init_fn, update_fn)


def swats(learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-9, weight_decay=0.0, *, switch_atol=1e-9,
          switch_rtol=0.0, eps_placement="uncorrected", mu_dtype=None) -> optax.GradientTransformation:
    """SWATS as ``switch_when`` of its Adam phase and its SGD phase (the paper's two loops)."""
    adam = optax.chain(
        optaxtra.scale_by_adam(b1, b2, eps, eps_placement=eps_placement, mu_dtype=mu_dtype),
        optaxtra.scale_by_learning_rate(learning_rate),
    )
    return optax.chain(
        optaxtra.add_decayed_weights(weight_decay),
        switch_when(
            _adam_phase(adam, b2, switch_atol, switch_rtol),
            _sgd_phase(b1),
            should_switch=lambda adam_state, _: adam_state.settled,
            hand_off=lambda adam_state, sgd_state: sgd_state._replace(
                count=adam_state.count, learning_rate=adam_state.sgd_learning_rate
            ),
        ),
    )


def plain_optimizer(name: str, learning_rate: Any) -> optax.GradientTransformation | None:
    """The table's optimizer ``name`` built from the plain forms, or None if it has no arranged piece."""
    lr = learning_rate
    return {
        "lookahead_adam": lambda: lookahead_state(optaxtra.adam(lr), 5, 0.5),
        "ranger": lambda: lookahead_state(optaxtra.radam(lr, b1=0.95, eps=1e-5), 6, 0.5),
        "lamb": lambda: optax.chain(
            optaxtra.scale_by_adam(eps=1e-6), optaxtra.add_decayed_weights(1e-2), trust_ratio(),
            optaxtra.scale_by_learning_rate(lr)),
        "ralamb": lambda: optax.chain(
            optaxtra.scale_by_radam_rectifier(eps=1e-6), optaxtra.add_decayed_weights(1e-2), trust_ratio(),
            optaxtra.scale_by_learning_rate(lr)),
        "lars": lambda: optax.chain(
            trust_ratio(1e-3, weight_decay=1e-4), optaxtra.scale_by_learning_rate(lr), optaxtra.trace(0.9)),
    }.get(name, lambda: None)()
