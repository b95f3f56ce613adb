"""Table-driven contract tests: every optimizer in ``optaxtra.OPTIMIZERS``.

Each optimizer must compile once, move the params, keep their dtype (float32
and bfloat16), keep its state a pytree of arrays that survives a round trip
through numpy, and drop into a Flax ``TrainState`` with plain params. That
jit equals eager is ``tests/test_properties.py``'s, on generated trees.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax.training import train_state

import optaxtra

NAMES = sorted(optaxtra.OPTIMIZERS)
LEARNING_RATE = 1e-2
STEPS = 12

# adam_2k's default freeze (2,000 steps) outlasts every run here: with it the params never move.
# freeze_steps=2 runs both phases.
OVERRIDES = {"adam_2k": lambda lr: optaxtra.adam_2k(lr, freeze_steps=2)}


def build(name):
    return OVERRIDES.get(name, optaxtra.OPTIMIZERS[name])(LEARNING_RATE)


def make_params(dtype=jnp.float32):
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    return {
        "dense": {
            "kernel": jax.random.normal(keys[0], (4, 3), dtype),
            "bias": jnp.zeros((3,), dtype),
        },
        "scale": jax.random.normal(keys[1], (), dtype),
        "embed": jax.random.normal(keys[2], (5, 2), dtype),
    }


def loss(params):
    leaves = jax.tree.leaves(params)
    return sum(jnp.sum(jnp.sin(leaf.astype(jnp.float32)) ** 2 + 0.1 * leaf.astype(jnp.float32)) for leaf in leaves)


def assert_trees_close(actual, expected):
    """jit may fuse differently from eager: allow a few float32 ulps, no more."""
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), actual, expected)


def run(tx, params, steps, step_fn=None):
    state = tx.init(params)
    step_fn = step_fn or tx.update
    for _ in range(steps):
        grads = jax.grad(loss)(params)
        updates, state = step_fn(grads, state, params)
        params = optax.apply_updates(params, updates)
    return params, state


def test_table_lists_every_alias():
    expected = {"adam", "adamw", "amsgrad", "radam", "ranger", "lamb", "ralamb", "lars", "sgd_momentum", "lookahead_adam"}
    assert expected <= set(optaxtra.OPTIMIZERS)


@pytest.mark.parametrize("name", NAMES)
def test_one_compiled_step_moves_the_params_keeps_dtypes_and_round_trips_through_numpy(name):
    """One jitted step per optimizer, compiled once, checked for everything a step must keep.

    It is traced once for its 21 calls; it moves the params; params and state keep
    their dtypes, shapes and structure; and a state converted to numpy arrays
    and back continues the run identically. (That the compiled step equals the
    op-by-op one is ``tests/test_properties.py::test_jit_equals_eager``.)
    """
    tx = build(name)
    params = make_params()
    initial_state = tx.init(params)
    traces = []

    @jax.jit
    def step(params, state):
        traces.append(1)
        updates, state = tx.update(jax.grad(loss)(params), state, params)
        return optax.apply_updates(params, updates), state

    def continue_run(params, state, steps=7):
        for _ in range(steps):
            params, state = step(params, state)
        return params, state

    final, state = continue_run(params, initial_state)
    moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), final, params)
    assert any(jax.tree.leaves(moved)), f"{name} did not move any parameter"
    for before, after in zip(jax.tree.leaves(params), jax.tree.leaves(final)):
        assert after.dtype == before.dtype and after.shape == before.shape
    assert jax.tree.structure(state) == jax.tree.structure(initial_state)
    for before, after in zip(jax.tree.leaves(initial_state), jax.tree.leaves(state)):
        assert after.dtype == before.dtype and after.shape == before.shape
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(final))

    saved = jax.tree.map(np.asarray, (final, state))
    assert all(isinstance(leaf, np.ndarray) for leaf in jax.tree.leaves(saved))
    restored = jax.tree.map(jnp.asarray, saved)
    expected, _ = continue_run(final, state)
    actual, _ = continue_run(*restored)
    jax.tree.map(np.testing.assert_array_equal, expected, actual)
    assert len(traces) == 1


@pytest.mark.parametrize("name", NAMES)
def test_bfloat16_params_keep_their_dtype_and_the_state_its_structure(name):
    tx = build(name)
    params = make_params(jnp.bfloat16)
    initial_state = tx.init(params)
    final, state = run(tx, params, 3, jax.jit(tx.update))
    for before, after in zip(jax.tree.leaves(params), jax.tree.leaves(final)):
        assert after.dtype == before.dtype and after.shape == before.shape
    assert jax.tree.structure(state) == jax.tree.structure(initial_state)
    for before, after in zip(jax.tree.leaves(initial_state), jax.tree.leaves(state)):
        assert after.dtype == before.dtype and after.shape == before.shape
    assert all(bool(jnp.all(jnp.isfinite(leaf.astype(jnp.float32)))) for leaf in jax.tree.leaves(final))


@pytest.mark.parametrize("name", ["lookahead_adam", "ranger"])
def test_lookahead_in_flax_train_state_with_plain_params(name):
    tx = build(name)
    params = make_params()
    state = train_state.TrainState.create(apply_fn=None, params=params, tx=tx)
    plain, _ = run(tx, params, STEPS)
    apply = jax.jit(lambda s: s.apply_gradients(grads=jax.grad(loss)(s.params)))
    for _ in range(STEPS):
        state = apply(state)
    assert jax.tree.structure(state.params) == jax.tree.structure(params)
    assert_trees_close(state.params, plain)
    slow = optaxtra.slow_params(state.opt_state)
    assert jax.tree.structure(slow) == jax.tree.structure(params)


def test_all_lists_exactly_the_public_api():
    """``optaxtra.__all__`` names every public object of the flat namespace, and nothing else."""
    import types

    public = {
        name for name, value in vars(optaxtra).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType) and name != "annotations"
    }
    assert sorted(optaxtra.__all__) == sorted(public)
    assert len(set(optaxtra.__all__)) == len(optaxtra.__all__)
