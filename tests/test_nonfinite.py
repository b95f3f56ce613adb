"""Non-finite gradients: the default policy (propagate) and ``skip_nonfinite``, for every optimizer.

The policy table in ``docs/robustness.md`` is what these tests pin.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optaxtra
from tests._hlo import wide_kernels

NAMES = sorted(optaxtra.OPTIMIZERS)
LEARNING_RATE = 1e-2
STEPS = 8
BAD_STEP = 4  # in the middle, before RAdam's adaptive switch (step 6) and across a Lookahead sync


def make_params():
    return {"kernel": jnp.linspace(-1.0, 1.0, 6).reshape(2, 3), "bias": jnp.array([0.5, -0.5, 0.1])}


def batch_grads(step: int, params):
    """A deterministic gradient per step (not constant, so that each batch matters)."""
    return jax.tree.map(lambda p: p * (1.0 + 0.1 * step) + 0.3 * np.cos(step + np.arange(p.size)).reshape(p.shape), params)


def poisoned(grads, value=jnp.nan):
    return {**grads, "bias": grads["bias"].at[1].set(value)}


@functools.cache
def _compiled(name: str, skipping: bool):
    """The table's optimizer (wrapped in ``skip_nonfinite``) and its jitted update, built once."""
    tx = optaxtra.OPTIMIZERS[name](LEARNING_RATE)
    tx = optaxtra.skip_nonfinite(tx) if skipping else tx
    return tx, jax.jit(tx.update)


def train(tx, bad_value=None, skip_bad_batch=False, update=None):
    """``STEPS`` steps; at ``BAD_STEP`` the batch is poisoned with ``bad_value`` (or left out)."""
    params = make_params()
    state = tx.init(params)
    update = update or jax.jit(tx.update)
    for step in range(STEPS):
        if step == BAD_STEP and skip_bad_batch:
            continue
        grads = batch_grads(step, params)
        if step == BAD_STEP and bad_value is not None:
            grads = poisoned(grads, bad_value)
        updates, state = update(grads, state, params)
        params = optax.apply_updates(params, updates)
    return params, state, update


def assert_trees_equal(actual, expected):
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), actual, expected)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad_value", [jnp.nan, jnp.inf, -jnp.inf], ids=["nan", "inf", "-inf"])
def test_one_bad_batch_skipped_equals_the_run_without_it(name, bad_value):
    tx, update = _compiled(name, skipping=True)
    params, state, _ = train(tx, bad_value, update=update)
    expected, expected_state, _ = train(tx, skip_bad_batch=True, update=update)
    assert_trees_equal(params, expected)
    assert_trees_equal(state.inner, expected_state.inner)
    stats = optaxtra.diagnostics(state)
    assert float(stats["nonfinite/skipped"]) == 1.0
    assert float(stats["nonfinite/consecutive"]) == 0.0
    assert update._cache_size() == 1  # one compiled program for good and bad steps


@pytest.mark.parametrize("name", NAMES)
def test_default_policy_propagates_into_the_poisoned_leaf_only(name):
    """Without the wrapper a NaN gradient is not hidden: it reaches the params of its leaf, and stays."""
    tx, update = _compiled(name, skipping=False)
    params, _, _ = train(tx, jnp.nan, update=update)
    assert bool(jnp.isnan(params["bias"][1]))
    assert bool(jnp.all(jnp.isfinite(params["kernel"])))


def test_skipped_step_leaves_params_moments_and_counts_untouched():
    tx = optaxtra.skip_nonfinite(optaxtra.radam(0.1))
    params = make_params()
    state = tx.init(params)
    updates, state = tx.update(batch_grads(0, params), state, params)
    params = optax.apply_updates(params, updates)
    before = state
    updates, state = tx.update(poisoned(batch_grads(1, params)), state, params)
    assert_trees_equal(updates, jax.tree.map(jnp.zeros_like, params))
    assert_trees_equal(state.inner, before.inner)
    assert (int(state.skipped), int(state.consecutive)) == (1, 1)
    _, state = tx.update(poisoned(batch_grads(2, params), jnp.inf), state, params)
    assert (int(state.skipped), int(state.consecutive)) == (2, 2)
    _, state = tx.update(batch_grads(3, params), state, params)
    assert (int(state.skipped), int(state.consecutive)) == (2, 0)
    assert int(state.inner[0].count) == 2  # the rectifier counted the two good steps only


def test_a_non_finite_update_from_finite_gradients_is_skipped():
    """The update is checked too: an overflow inside the optimizer is not applied."""
    tx = optaxtra.skip_nonfinite(optax.scale(jnp.inf))
    params = make_params()
    updates, state = tx.update(batch_grads(0, params), tx.init(params), params)
    assert_trees_equal(updates, jax.tree.map(jnp.zeros_like, params))
    assert int(state.skipped) == 1


@pytest.mark.parametrize("name", ["adam", "ranger", "lars"])
def test_interoperates_with_optax_apply_if_finite(name):
    """optax.apply_if_finite around an optaxtra optimizer skips the same step; diagnostics read its count."""
    inner = optaxtra.OPTIMIZERS[name](LEARNING_RATE)
    params, state, _ = train(optax.apply_if_finite(inner, max_consecutive_errors=3), jnp.nan)
    expected, _, _ = train(optaxtra.skip_nonfinite(inner), jnp.nan)
    assert_trees_equal(params, expected)
    assert float(optaxtra.diagnostics(state)["nonfinite/skipped"]) == 1.0
    nested, nested_state, _ = train(optax.apply_if_finite(optaxtra.skip_nonfinite(inner), 3), jnp.nan)
    assert_trees_equal(nested, expected)
    # apply_if_finite skips first and restores the inner state, counter included.
    assert float(optaxtra.diagnostics(nested_state)["nonfinite/skipped"]) == 1.0  # the outermost keeps the plain name
    assert float(optaxtra.diagnostics(nested_state)["inner_state/nonfinite/skipped"]) == 0.0


def test_skip_nonfinite_keeps_frozen_leaves_and_vmaps():
    tx = optaxtra.skip_nonfinite(optaxtra.adam(0.1))
    params = {"w": jnp.ones(2), "step": jnp.asarray(3)}
    grads = {"w": jnp.array([jnp.nan, 1.0]), "step": jnp.asarray(0)}
    updates, state = tx.update(grads, tx.init(params), params)
    assert updates["step"].dtype == jnp.int32 and int(updates["step"]) == 0
    batched = jax.vmap(lambda g: tx.update({"w": g, "step": jnp.asarray(0)}, tx.init(params), params))
    updates, states = batched(jnp.array([[1.0, 1.0], [jnp.nan, 1.0]]))
    np.testing.assert_array_equal(states.skipped, [0, 1])
    np.testing.assert_array_equal(updates["w"][1], [0.0, 0.0])
    assert bool(jnp.all(updates["w"][0] < 0))


def test_consecutive_counts_only_the_skips_since_the_last_step_taken():
    # bad, good, bad, bad, good: the totals run 1, 1, 2, 3, 3 and the streak 1, 0, 1, 2, 0.
    tx = optaxtra.skip_nonfinite(optaxtra.adam(0.1))
    params = make_params()
    state = tx.init(params)
    counts = []
    for step, bad in enumerate([True, False, True, True, False]):
        grads = batch_grads(step, params)
        updates, state = tx.update(poisoned(grads) if bad else grads, state, params)
        params = optax.apply_updates(params, updates)
        counts.append((int(state.skipped), int(state.consecutive)))
    assert counts == [(1, 1), (1, 0), (2, 1), (3, 2), (3, 0)]
    assert int(state.inner[1].count) == 2  # scale_by_adam counted the two steps taken


def test_skip_nonfinite_checks_each_leaf_in_a_kernel_of_its_own():
    """The per-leaf finiteness checks are not fused into one kernel over every leaf.

    Fused, that kernel took two operands per leaf, and compiling
    ``skip_nonfinite(adam)`` took 30 s for 100 leaves and over ten minutes for 400
    (2026-11-26); with the checks combined under a ``lax.cond``, 1.0 s and 5.7 s.
    This pins the structure, not a time.
    """
    params = {f"w{i}": jnp.full((20, 25), 1.0 + i / 50) for i in range(50)}
    tx = optaxtra.skip_nonfinite(optaxtra.adam(1e-2))
    wide = wide_kernels(lambda p, s, g: tx.update(g, s, p), params, tx.init(params), params)
    assert len(wide) <= 2, wide  # the combination, in the cond's two branches
