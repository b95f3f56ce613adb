"""Unusual but valid params, for every optimizer in ``optaxtra.OPTIMIZERS``.

Empty trees, ``None`` leaves, zero-size arrays, scalars, Python floats,
integer and boolean leaves (left untouched, with zero or ``float0``
gradients), complex params, and inputs that must come back unmodified.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optaxtra

NAMES = sorted(optaxtra.OPTIMIZERS)
LEARNING_RATE = 1e-2
STEPS = 6  # through RAdam's switch to the adaptive step (step 6) and a Lookahead sync (step 5 or 6)


def quadratic_grads(params):
    """Gradients of ``sum |p - 1|**2 / 2`` for inexact leaves; zeros of their dtype for the rest."""
    inexact = lambda p: jnp.issubdtype(jnp.result_type(p), jnp.inexact)
    return jax.tree.map(lambda p: p - jnp.ones_like(p) if inexact(p) else jnp.zeros_like(p), params)


def run(tx, params, grads_fn=quadratic_grads, steps=STEPS, jit=False):
    update = jax.jit(tx.update) if jit else tx.update
    state = tx.init(params)
    for _ in range(steps):
        updates, state = update(grads_fn(params), state, params)
        params = optax.apply_updates(params, updates)
    return params, state


def assert_trees_equal(actual, expected):
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for a, b in zip(jax.tree.leaves(actual), jax.tree.leaves(expected)):
        assert jnp.result_type(a) == jnp.result_type(b)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("name", NAMES)
def test_empty_param_trees(name):
    tx = optaxtra.OPTIMIZERS[name](LEARNING_RATE)
    for empty in [{}, (), [], {"a": {}, "b": ()}]:
        params, _ = run(tx, empty, steps=2)
        assert jax.tree.structure(params) == jax.tree.structure(empty)


FROZEN = {"step": jnp.asarray(7, jnp.int32), "ids": jnp.arange(4, dtype=jnp.uint8), "on": jnp.array([True, False])}


def float0_grads(params):
    return jax.grad(
        lambda p: sum(jnp.sum((x - 1.0) ** 2) / 2 for x in jax.tree.leaves(p) if jnp.issubdtype(jnp.result_type(x), jnp.inexact)),
        allow_int=True,
    )(params)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("grads_fn", [quadratic_grads, float0_grads], ids=["integer_grads", "float0_grads"])
def test_unusual_leaves(name, grads_fn):
    """None, zero-size, scalar, Python-float, integer and boolean leaves beside a float vector.

    Integer and boolean leaves stay as they were; the float leaves follow
    exactly the run without the unusual ones; a scalar moves as a one-element
    vector; a Python float as the equal 0-d array.
    """
    tx = optaxtra.OPTIMIZERS[name](LEARNING_RATE)
    w = jnp.linspace(-1.0, 2.0, 3)
    unusual = {
        "w": w, "scalar": jnp.asarray(3.0), "as_vector": jnp.asarray([3.0]), "python": 3.0,
        "none": None, "empty": jnp.zeros((0, 4)), **FROZEN,
    }
    params, state = run(tx, unusual, grads_fn)
    alone, _ = run(tx, {"w": w, "scalar": jnp.asarray(3.0)})
    assert params["none"] is None
    assert params["empty"].shape == (0, 4)
    assert_trees_equal({k: params[k] for k in FROZEN}, FROZEN)
    assert_trees_equal({k: params[k] for k in ("w", "scalar")}, alone)
    np.testing.assert_array_equal(params["as_vector"], [params["scalar"]])
    np.testing.assert_array_equal(params["python"], params["scalar"])
    inexact = [x for x in jax.tree.leaves(state) if jnp.issubdtype(x.dtype, jnp.inexact)]
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in inexact)


@pytest.mark.parametrize("name", NAMES)
def test_float0_gradients_under_jit(name):
    tx = optaxtra.OPTIMIZERS[name](LEARNING_RATE)
    params, _ = run(tx, {"w": jnp.linspace(-1.0, 2.0, 3), "step": FROZEN["step"]}, float0_grads, steps=2, jit=True)
    assert_trees_equal(params["step"], FROZEN["step"])
    assert bool(jnp.all(jnp.isfinite(params["w"])))


@pytest.mark.parametrize("name", NAMES)
def test_complex_params_with_zero_imaginary_part_follow_the_real_run(name):
    """|g|**2 of a real-valued complex gradient is g**2: the real run, up to complex-division rounding."""
    tx = optaxtra.OPTIMIZERS[name](LEARNING_RATE)
    real = jnp.linspace(-1.0, 2.0, 4)
    complex_params, state = run(tx, {"z": real.astype(jnp.complex64)})
    real_params, _ = run(tx, {"z": real})
    assert complex_params["z"].dtype == jnp.complex64
    np.testing.assert_array_equal(jnp.imag(complex_params["z"]), 0.0)
    np.testing.assert_allclose(jnp.real(complex_params["z"]), real_params["z"], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
def test_complex_updates_rotate_with_the_params(name):
    """The |g|**2 convention (optax's): rotating params and gradients by a phase rotates the trajectory.

    PyTorch's view-as-real convention (a second moment per real and imaginary
    part) would not: this pins the convention for every optimizer.
    """
    tx = optaxtra.OPTIMIZERS[name](LEARNING_RATE)
    z = jnp.array([1.0 + 2.0j, -0.5 + 0.1j, 3.0 - 1.0j, 0.2 + 0.0j], jnp.complex64)
    phase = jnp.asarray(np.exp(0.7j), jnp.complex64)
    target = jnp.asarray(0.3 - 0.4j, jnp.complex64)

    def grads(params, rotation):
        return {"z": params["z"] - rotation * target}

    base, _ = run(tx, {"z": z}, lambda p: grads(p, jnp.asarray(1.0, jnp.complex64)))
    rotated, _ = run(tx, {"z": phase * z}, lambda p: grads(p, phase))
    np.testing.assert_allclose(rotated["z"], phase * base["z"], rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("name", NAMES)
def test_inputs_are_not_modified_or_donated(name):
    tx = optaxtra.OPTIMIZERS[name](LEARNING_RATE)
    numpy_params = {"w": np.linspace(-1.0, 1.0, 6, dtype=np.float32).reshape(2, 3), "b": np.ones(3, np.float32)}
    numpy_grads = {"w": np.full((2, 3), 0.5, np.float32), "b": np.full(3, -0.25, np.float32)}
    copies = jax.tree.map(np.copy, (numpy_params, numpy_grads))
    jax_params = jax.tree.map(jnp.asarray, numpy_params)
    jax_grads = jax.tree.map(jnp.asarray, numpy_grads)
    state = tx.init(jax_params)
    for update in (tx.update, jax.jit(tx.update)):
        update(numpy_grads, tx.init(numpy_params), numpy_params)
        update(jax_grads, state, jax_params)
    assert_trees_equal((numpy_params, numpy_grads), copies)
    for leaf in jax.tree.leaves((jax_params, jax_grads, state)):
        assert not leaf.is_deleted()
    assert_trees_equal((jax_params, jax_grads), copies)
