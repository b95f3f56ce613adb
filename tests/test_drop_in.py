"""An optaxtra optimizer swapped for optax's of the same name changes nothing else in a pipeline.

Each test is a way a working optax pipeline uses its optimizer: keywords
(``accumulator_dtype``, a complex ``mu_dtype``), ``optax.inject_hyperparams``
without ``static_args``, ``lookahead(slow_step_size=0)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optaxtra

PARAMS = {"w": jnp.linspace(-1.0, 1.0, 6).reshape(2, 3), "b": jnp.zeros(3)}


def grads_at(step, params=PARAMS):
    return jax.tree.map(lambda p: jnp.cos(p * (step + 1)) + 0.1 * step, params)


def trajectory(tx, steps=12, params=PARAMS):
    state = tx.init(params)
    out = []
    for step in range(steps):
        updates, state = tx.update(grads_at(step, params), state, params)
        params = optax.apply_updates(params, updates)
        out.append(updates)
    return out, state


@pytest.mark.parametrize("name", ["sgd", "lars"])
def test_accumulator_dtype_is_accepted_and_stores_the_momentum_in_it(name):
    ours = getattr(optaxtra, name)(0.1, momentum=0.9, accumulator_dtype=jnp.bfloat16)
    (_, state) = trajectory(ours, steps=2)
    buffers = [s.trace for s in state if isinstance(s, optaxtra.TraceState)]
    assert [leaf.dtype for leaf in jax.tree.leaves(buffers)] == [jnp.bfloat16] * 2


def test_sgd_with_a_bfloat16_accumulator_rounds_only_the_stored_buffer():
    """``b_t = bf16(g + mu b_{t-1})`` is stored; the update is the float32 sum it was rounded from.

    optax's ``sgd(accumulator_dtype=jnp.bfloat16)`` differs: it rounds ``mu * b`` to bfloat16 before
    adding ``g`` (a Python float times a bfloat16 array stays bfloat16), returns the rounded
    buffer as the update, and needs standard dtype promotion to add it to float32 gradients.
    """
    ours, _ = trajectory(optaxtra.sgd(0.1, momentum=0.9, accumulator_dtype=jnp.bfloat16))
    params, buffer = PARAMS, jax.tree.map(lambda p: jnp.zeros_like(p, jnp.bfloat16), PARAMS)
    for step, updates in enumerate(ours):
        total = jax.tree.map(lambda g, b: g + jnp.float32(0.9) * b.astype(jnp.float32), grads_at(step, params), buffer)
        expected = jax.tree.map(lambda t: jnp.float32(-0.1) * t, total)
        jax.tree.map(np.testing.assert_array_equal, updates, expected)
        buffer = jax.tree.map(lambda t: t.astype(jnp.bfloat16), total)
        params = optax.apply_updates(params, updates)


def test_sgd_momentum_none_keeps_no_buffer_and_zero_keeps_one_as_optax():
    for momentum, buffered in [(None, False), (0.0, True)]:
        ours = optaxtra.sgd(0.1, momentum=momentum).init(PARAMS)
        theirs = optax.sgd(0.1, momentum=momentum).init(PARAMS)
        trace_state = next(s for s in ours if isinstance(s, optaxtra.TraceState))
        assert (trace_state.trace is not None) == buffered
        assert len(jax.tree.leaves(theirs)) == (2 if buffered else 0)


def test_complex_mu_dtype_is_accepted_for_complex_params():
    params = {"z": jnp.array([1.0 + 1.0j, -2.0 + 0.5j], jnp.complex64), "r": jnp.ones(2)}
    tx = optaxtra.adam(0.1, mu_dtype=jnp.complex64)
    state = tx.init(params)
    assert state[1].mu["z"].dtype == jnp.complex64
    assert state[1].mu["r"].dtype == jnp.float32  # its real counterpart for the real leaf
    grads = jax.tree.map(jnp.ones_like, params)
    updates, _ = tx.update(grads, state, params)
    assert updates["z"].dtype == jnp.complex64 and updates["r"].dtype == jnp.float32


def test_complex_params_with_a_real_mu_dtype_keep_a_complex_first_moment():
    """The documented convention: optax casts the moment to the real dtype and drops its imaginary
    part (with a warning); optaxtra keeps the average of complex gradients complex."""
    params = jnp.array([1.0 + 1.0j, -2.0 + 0.5j], jnp.complex64)
    grads = jnp.array([0.5 - 1.0j, 1.0 + 2.0j], jnp.complex64)
    tx = optaxtra.adam(0.1, mu_dtype=jnp.float32)
    updates, state = tx.update(grads, tx.init(params), params)
    assert state[1].mu.dtype == jnp.complex64
    np.testing.assert_allclose(state[1].mu, 0.1 * grads, rtol=1e-6)
    # Adam's first step is -lr * g / |g| for complex g too: the imaginary part is kept.
    np.testing.assert_allclose(updates, -0.1 * grads / jnp.abs(grads).astype(grads.dtype), rtol=1e-5)


# Every alias of the table (the rows that are an alias with its defaults), and SWATS.
ALIASES = sorted({name for name in optaxtra.OPTIMIZERS if hasattr(optaxtra, name)} | {"swats"})


def _float32(value):
    """A hyperparameter as ``inject_hyperparams`` stores it: a float32 number."""
    return float(np.float32(value))


@pytest.mark.parametrize("name", ALIASES)
def test_inject_hyperparams_builds_the_same_state_and_updates(name):
    """Wrapped without ``static_args``, every number becomes a float32 (or int32) array.

    The state must have the unwrapped optimizer's structure, and the updates
    must be the unwrapped optimizer's given the same float32 hyperparameters
    (``b2 = 0.999`` is ``0.99900001`` in float32, 1.3e-5 away in ``1 - b2``; the
    unwrapped optimizer takes ``1 - b2`` from the Python float, in float64).
    """
    factory = getattr(optaxtra, name)
    wrapped = optax.inject_hyperparams(factory)(learning_rate=1e-2)
    hyperparams = wrapped.init(PARAMS).hyperparams
    as_numbers = {key: _float32(value) if jnp.issubdtype(value.dtype, jnp.floating) else int(value)
                  for key, value in hyperparams.items()}
    plain = factory(**as_numbers)
    assert jax.tree.structure(plain.init(PARAMS)) == jax.tree.structure(wrapped.init(PARAMS).inner_state)
    ours, _ = trajectory(plain)
    theirs, _ = trajectory(wrapped)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)):
        np.testing.assert_allclose(a, b, rtol=2e-6, atol=1e-9)


def test_inject_hyperparams_of_adam_takes_a_traced_freeze_steps():
    wrapped = optax.inject_hyperparams(optaxtra.adam_2k)(learning_rate=0.1, freeze_steps=2)
    updates, _ = trajectory(wrapped, steps=3)
    assert all(float(jnp.abs(u).max()) == 0 for u in jax.tree.leaves(updates[:2]))
    assert float(jnp.abs(updates[2]["w"]).max()) > 0


def test_lookahead_slow_step_size_zero_is_optax_lookahead_with_zero():
    """``alpha = 0``: the slow weights never move, every sync returns the params to them (optax)."""
    ours_tx = optaxtra.lookahead(optax.sgd(0.1), sync_period=3, slow_step_size=0.0)
    theirs_tx = optax.lookahead(optax.sgd(0.1), sync_period=3, slow_step_size=0.0)
    params = PARAMS
    theirs = optax.LookaheadParams.init_synced(PARAMS)
    ours_state, theirs_state = ours_tx.init(params), theirs_tx.init(theirs)
    for step in range(7):
        updates, ours_state = ours_tx.update(grads_at(step), ours_state, params)
        params = optax.apply_updates(params, updates)
        with jax.numpy_dtype_promotion("standard"):  # optax multiplies a float by a bool
            their_updates, theirs_state = theirs_tx.update(grads_at(step), theirs_state, theirs)
        theirs = optax.apply_updates(theirs, their_updates)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), params, theirs.fast)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
                 optaxtra.slow_params(ours_state), PARAMS)
