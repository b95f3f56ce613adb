"""Optimizer states can be donated: no two leaves share a buffer, and a donated loop runs.

A training loop that donates ``(params, state)`` to its jitted step (or runs
steps in ``lax.fori_loop`` under a donating ``jit``) fails with "Attempt to
donate the same buffer twice" if two leaves of what it donates are one array,
e.g. one ``jnp.zeros([])`` stored in two fields, or the params themselves
stored as a state's slow copy. Every optimizer and wrapper is checked.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optaxtra
from tests._ecosystem_cases import CASES as ECOSYSTEM_CASES

CASES = {
    **ECOSYSTEM_CASES,
    "skip_nonfinite_adam": lambda lr: optaxtra.skip_nonfinite(optaxtra.adam(lr)),
    "lookahead_sgd": lambda lr: optaxtra.lookahead(optaxtra.sgd(lr), sync_period=3),
    # The pieces alone, where they keep state.
    "scale_by_adam_amsgrad": lambda lr: optaxtra.scale_by_adam(
        second_moment=optaxtra.amsgrad_second_moment()
    ),
    "scale_by_adam_belief": lambda lr: optaxtra.scale_by_adam(
        second_moment=optaxtra.belief_second_moment()
    ),
    "scale_by_radam_rectifier": lambda lr: optaxtra.scale_by_radam_rectifier(),
    "trust_ratio": lambda lr: optaxtra.trust_ratio(weight_decay=0.1),
    "scale_by_learning_rate": lambda lr: optaxtra.scale_by_learning_rate(lambda count: lr),
    "decoupled_weight_decay": lambda lr: optaxtra.decoupled_weight_decay(0.1, lr),
    "lookahead_state": lambda lr: optaxtra.lookahead_state(optaxtra.adam(lr), sync_period=2),
    "switch_when": lambda lr: optaxtra.switch_when(
        optaxtra.adam(lr), optaxtra.sgd(lr), lambda state, done: done >= 2
    ),
}
NAMES = sorted(CASES)

PARAMS = {"w": jnp.linspace(-1.0, 1.0, 6).reshape(2, 3), "b": jnp.array([0.5, -0.25, 1.0])}
STEPS = 4


def _grads(params, step):
    return jax.tree.map(lambda p: jnp.sin(3.0 * p + step), params)


def _step(tx, params, state, step):
    updates, state = tx.update(_grads(params, step), state, params)
    return jax.tree.map(jnp.add, params, updates), state


@pytest.mark.parametrize("name", NAMES)
def test_params_and_initial_state_hold_distinct_buffers(name):
    params = jax.tree.map(jnp.array, PARAMS)
    state = CASES[name](0.1).init(params)
    leaves = jax.tree_util.tree_leaves_with_path((params, state))
    owners: dict[int, str] = {}
    for path, leaf in leaves:
        pointer = leaf.unsafe_buffer_pointer()
        where = jax.tree_util.keystr(path)
        assert pointer not in owners, f"{where} shares its buffer with {owners[pointer]}"
        owners[pointer] = where


@pytest.mark.parametrize("name", NAMES)
def test_steps_in_a_donated_device_loop_match_steps_one_by_one(name):
    tx = CASES[name](0.1)

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def looped(params, state):
        body = lambda i, carry: _step(tx, *carry, i.astype(jnp.float32))
        return jax.lax.fori_loop(0, STEPS, body, (params, state))

    expected = jax.tree.map(jnp.array, PARAMS)
    state = tx.init(expected)
    one_step = jax.jit(functools.partial(_step, tx))
    for i in range(STEPS):
        expected, state = one_step(expected, state, jnp.float32(i))

    params = jax.tree.map(jnp.array, PARAMS)
    got, _ = looped(params, tx.init(params))
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)
