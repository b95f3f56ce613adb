"""bfloat16 and float16 params, for every optimizer in ``optaxtra.OPTIMIZERS``.

The params keep their dtype; the second moment is kept in float32 and is the
float32 run's bit for bit; float16 gradients near float16's largest value do
not overflow it; and the trajectory stays within the rounding that storing
params in half precision costs.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optaxtra

NAMES = sorted(optaxtra.OPTIMIZERS)
HALF = [jnp.bfloat16, jnp.float16]
LEARNING_RATE = 0.2
STEPS = 10
_rng = np.random.default_rng(7)
P0 = _rng.uniform(-1.0, 1.0, size=(4, 8)).astype(np.float32)
GRADS = _rng.normal(size=(STEPS, 4, 8)).astype(np.float32)


def representable(x: np.ndarray, dtype) -> np.ndarray:
    """``x`` rounded to ``dtype`` and back: the same numbers in both runs."""
    return np.asarray(jnp.asarray(x, dtype).astype(jnp.float32))


@functools.cache
def _compiled(name: str):
    """The table's optimizer and its jitted update, built once (compiled once per dtype)."""
    tx = optaxtra.OPTIMIZERS[name](LEARNING_RATE)
    return tx, jax.jit(tx.update)


def run(name, dtype, grads=GRADS):
    tx, update = _compiled(name)
    params = {"w": jnp.asarray(representable(P0, dtype), dtype)}
    state = tx.init(params)
    largest = 0.0
    for g in grads:
        updates, state = update({"w": jnp.asarray(g, dtype)}, state, params)
        assert updates["w"].dtype == dtype
        params = optax.apply_updates(params, updates)
        largest = max(largest, float(jnp.max(jnp.abs(params["w"].astype(jnp.float32)))))
    return params, state, largest


def second_moments(state):
    """Every second moment in the state: ``nu`` of the Adam-family pieces."""
    adaptive = (optaxtra.ScaleByAdamState, optaxtra.ScaleByRadamRectifierState)
    nodes = jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, adaptive))
    return [node.nu for node in nodes if isinstance(node, adaptive)]


def ulp(value: float, dtype) -> float:
    """The spacing of ``dtype`` numbers at ``value``."""
    return float(2.0 ** (np.floor(np.log2(value)) - jnp.finfo(dtype).nmant))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", HALF, ids=["bfloat16", "float16"])
def test_half_precision_params_track_the_float32_run(name, dtype):
    """Within one ulp of the largest param per step: the rounding of the update and of the param.

    The learning rate moves params by many ulps per step (0.2 against
    bfloat16's 0.0078 at 1), so the bound is several times tighter than the
    distance travelled (for the optimizers that move at all in 10 steps).
    """
    grads = np.stack([representable(g, dtype) for g in GRADS])
    half, half_state, largest = run(name, dtype, grads)
    single, single_state, _ = run(name, jnp.float32, grads)
    assert half["w"].dtype == dtype
    tolerance = STEPS * ulp(largest, dtype)
    np.testing.assert_allclose(half["w"].astype(jnp.float32), single["w"], rtol=0, atol=tolerance)
    for nu_half, nu_single in zip(second_moments(half_state), second_moments(single_state)):
        for leaf_half, leaf_single in zip(jax.tree.leaves(nu_half), jax.tree.leaves(nu_single)):
            assert leaf_half.dtype == jnp.float32
            np.testing.assert_array_equal(leaf_half, leaf_single)


@pytest.mark.parametrize("name", NAMES)
def test_float16_gradients_near_the_float16_range(name):
    """|g| up to 60000 (float16's largest value is 65504): g**2 = 3.6e9 must not overflow.

    Every optimizer whose state keeps a second moment is checked at full
    scale. Those without one (SGD) are checked at a tenth of it: a momentum
    sum is up to 1 / (1 - momentum) = 10 gradients, and that sum is the update
    SGD hands to the learning-rate scaling (see docs/robustness.md).
    """
    tx, _ = _compiled(name)
    has_second_moment = bool(second_moments(tx.init({"w": jnp.zeros((4, 8), jnp.float16)})))
    peak = 60000.0 if has_second_moment else 6000.0
    grads = np.stack([representable(g / np.abs(g).max() * peak, jnp.float16) for g in GRADS])
    half, half_state, largest = run(name, jnp.float16, grads)
    single, _, _ = run(name, jnp.float32, grads)
    for leaf in jax.tree.leaves(half_state):
        if jnp.issubdtype(leaf.dtype, jnp.inexact):
            assert bool(jnp.all(jnp.isfinite(leaf)))
    np.testing.assert_allclose(
        half["w"].astype(jnp.float32), single["w"], rtol=0, atol=STEPS * ulp(largest, jnp.float16)
    )


def test_optax_trace_overflows_in_float16_and_optaxtra_trace_does_not():
    """Why sgd and lars use ``optaxtra.trace``: optax keeps the momentum sum in float16."""
    params = jnp.zeros(3, jnp.float16)
    grads = jnp.full(3, 20000.0, jnp.float16)
    for tx, finite in [(optax.trace(0.9), False), (optaxtra.trace(0.9), True)]:
        state = tx.init(params)
        for _ in range(4):
            _, state = tx.update(grads, state, params)
        assert bool(jnp.all(jnp.isfinite(state.trace))) is finite
    assert state.trace.dtype == jnp.float32


@pytest.mark.parametrize("decay", [0.9, 0.5])
@pytest.mark.parametrize("nesterov", [False, True])
def test_optaxtra_trace_equals_optax_trace_in_float32(decay, nesterov):
    ours, theirs = optaxtra.trace(decay, nesterov), optax.trace(decay, nesterov)
    params = jnp.zeros(5)
    state_ours, state_theirs = ours.init(params), theirs.init(params)
    for step in range(5):
        grads = jnp.asarray(np.cos(np.arange(5.0) * (step + 1)), jnp.float32)
        updates_ours, state_ours = ours.update(grads, state_ours)
        updates_theirs, state_theirs = theirs.update(grads, state_theirs)
        np.testing.assert_array_equal(updates_ours, updates_theirs)


@pytest.mark.parametrize("alias", [optaxtra.adam, optaxtra.adamw, optaxtra.amsgrad, optaxtra.lamb, optaxtra.radam])
@pytest.mark.parametrize("dtype", HALF, ids=["bfloat16", "float16"])
def test_mu_dtype_keeps_the_moments_in_float32(alias, dtype):
    tx = alias(LEARNING_RATE, mu_dtype=jnp.float32)
    params = {"w": jnp.ones(3, dtype)}
    updates, state = tx.update({"w": jnp.full(3, 0.5, dtype)}, tx.init(params), params)
    assert updates["w"].dtype == dtype
    moments = [
        leaf for node in jax.tree.leaves(state, is_leaf=lambda x: hasattr(x, "mu"))
        if hasattr(node, "mu") for leaf in jax.tree.leaves((node.mu, node.nu))
    ]
    assert moments and all(leaf.dtype == jnp.float32 for leaf in moments)


@pytest.mark.parametrize("mu_dtype", [None, jnp.bfloat16])
def test_bfloat16_second_moment_decays_after_a_spike(mu_dtype):
    """Stored in bfloat16, 0.999 * v rounds back to v: after one large gradient v would never decay.

    The second moment is kept in float32 whatever ``mu_dtype`` says, so it
    decays exactly as in the float32 run.
    """
    runs = {}
    for dtype in (jnp.float32, jnp.bfloat16):
        tx = optaxtra.scale_by_adam(mu_dtype=mu_dtype if dtype == jnp.bfloat16 else None)
        state = tx.init(jnp.zeros(4, dtype))
        update = jax.jit(tx.update)
        _, state = update(jnp.full(4, 100.0, dtype), state)
        for _ in range(500):
            _, state = update(jnp.full(4, 0.01, dtype), state)
        runs[dtype] = state.nu
    assert runs[jnp.bfloat16].dtype == jnp.float32
    np.testing.assert_array_equal(runs[jnp.bfloat16], runs[jnp.float32])
    assert float(runs[jnp.float32][0]) < 10.0 * 0.999**500 * 1.01  # it did decay from 10
