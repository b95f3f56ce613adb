"""Table-driven contract tests: every optimizer in ``optaxtra.OPTIMIZERS``.

Each optimizer must be jittable (jit equals eager), compile once, keep the
params' dtype, keep its state a pytree of arrays that survives a round trip
through numpy, and drop into a Flax ``TrainState`` with plain params.
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
def test_jit_equals_eager(name):
    tx = build(name)
    params = make_params()
    eager, _ = run(tx, params, STEPS)
    jitted, _ = run(tx, params, STEPS, jax.jit(tx.update))
    assert_trees_close(eager, jitted)
    moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), jitted, params)
    assert any(jax.tree.leaves(moved)), f"{name} did not move any parameter"


@pytest.mark.parametrize("name", NAMES)
def test_compiles_once(name):
    tx = build(name)
    params = make_params()
    state = tx.init(params)
    traces = []

    @jax.jit
    def step(params, state):
        traces.append(1)
        updates, state = tx.update(jax.grad(loss)(params), state, params)
        return optax.apply_updates(params, updates), state

    for _ in range(3):
        params, state = step(params, state)
    assert len(traces) == 1


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_dtype_and_state_structure_kept(name, dtype):
    tx = build(name)
    params = make_params(dtype)
    initial_state = tx.init(params)
    final, state = run(tx, params, 3, jax.jit(tx.update))
    for before, after in zip(jax.tree.leaves(params), jax.tree.leaves(final)):
        assert after.dtype == before.dtype and after.shape == before.shape
    assert jax.tree.structure(state) == jax.tree.structure(initial_state)
    for before, after in zip(jax.tree.leaves(initial_state), jax.tree.leaves(state)):
        assert after.dtype == before.dtype and after.shape == before.shape
    assert all(bool(jnp.all(jnp.isfinite(leaf.astype(jnp.float32)))) for leaf in jax.tree.leaves(final))


@pytest.mark.parametrize("name", NAMES)
def test_state_round_trips_through_numpy(name):
    """A state converted to numpy arrays and back continues the run identically."""
    tx = build(name)
    step = jax.jit(tx.update)
    params, state = run(tx, make_params(), 7, step)
    saved = jax.tree.map(np.asarray, (params, state))
    assert all(isinstance(leaf, np.ndarray) for leaf in jax.tree.leaves(saved))
    restored_params, restored_state = jax.tree.map(jnp.asarray, saved)

    def continue_run(params, state):
        for _ in range(7):
            updates, state = step(jax.grad(loss)(params), state, params)
            params = optax.apply_updates(params, updates)
        return params

    expected = continue_run(params, state)
    actual = continue_run(restored_params, restored_state)
    jax.tree.map(np.testing.assert_array_equal, expected, actual)


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
