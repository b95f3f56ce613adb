"""Optimizer states can be donated: no two leaves share a buffer, and a donated loop runs.

A training loop that donates ``(params, state)`` to its jitted step (or runs
steps in ``lax.fori_loop`` under a donating ``jit``) fails with "Attempt to
donate the same buffer twice" if two leaves of what it donates are one array,
e.g. one ``jnp.zeros([])`` stored in two fields, or the params themselves
stored as a state's slow copy. Every optimizer and wrapper is checked.
"""

from __future__ import annotations

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
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
    "decoupled_weight_decay": lambda lr: optax.chain(optaxtra.scale_by_learning_rate(lr),
                                                     optaxtra.decoupled_weight_decay(0.1)),
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


def _outputs_without_a_donated_buffer(step, *args) -> list[str]:
    """The outputs of ``jit(step, donate_argnums=(0, 1))`` that no donated input is aliased to."""
    text = jax.jit(step, donate_argnums=(0, 1)).lower(*args).as_text()
    signature = text[text.index("@main("):]
    signature = signature[: signature.index("{\n")]
    aliased = {int(i) for i in re.findall(r"tf\.aliasing_output = (\d+)", signature)}
    outputs = re.findall(r'jax\.result_info = "([^"]*)"', signature)
    assert outputs, "the lowered step names no outputs: has jax's lowering format changed?"
    return [name for index, name in enumerate(outputs) if index not in aliased]


@pytest.mark.parametrize("name", NAMES)
def test_every_output_of_a_donated_step_is_written_over_a_donated_input(name):
    """No field is only written (a record for ``diagnostics``) without reading its old value.

    A field the step never reads is dropped from the jitted step's inputs, so
    its new value gets a fresh buffer on every call: on a GPU, the one recorded
    learning rate made an Adam call take 1.2x optax's time to dispatch
    (``optaxtra/_xla.py``).
    """
    tx = CASES[name](0.1)
    params = jax.tree.map(jnp.array, PARAMS)
    step = lambda params, state, t: _step(tx, params, state, t)
    assert _outputs_without_a_donated_buffer(step, params, tx.init(params), jnp.float32(0)) == []


def test_the_check_sees_a_field_that_is_only_written():
    def step(params, state, t):
        return params + t, {"count": state["count"] + 1, "recorded": jnp.float32(0.5)}

    state = {"count": jnp.int32(0), "recorded": jnp.float32(0)}
    assert _outputs_without_a_donated_buffer(step, jnp.zeros(2), state, jnp.float32(1)) == [
        "result[1]['recorded']"
    ]


def _entry_copies(step, params, state) -> list[str]:
    """The ``copy`` operations in the compiled donated step's entry computation."""
    text = jax.jit(step, donate_argnums=(0, 1)).lower(params, state, jnp.float32(0)).compile().as_text()
    entry = text[text.index("\nENTRY"):]
    return [line.strip() for line in entry.splitlines() if re.search(r"\scopy\(", line)]


@pytest.mark.parametrize("name", sorted(optaxtra.OPTIMIZERS))
def test_a_donated_step_copies_nothing(name):
    """Counts are incremented as one shared value (``optaxtra._xla.increment``).

    Written ``count + 1``, the add was copied into each reader of the new
    count, which then read the donated old one after its buffer had been
    reused, so XLA copied the count first: one more operation per step than
    optax's Adam (a kernel launch on a GPU).
    """
    tx = optaxtra.OPTIMIZERS[name](0.1)
    params = jax.tree.map(jnp.array, PARAMS)
    step = lambda params, state, t: _step(tx, params, state, t)
    copies = _entry_copies(step, params, tx.init(params))
    if name in COPIES_AS_OPTAX:
        reference = COPIES_AS_OPTAX[name](0.1)
        theirs = _entry_copies(lambda p, s, t: _step(reference, p, s, t), params, reference.init(params))
        assert 0 < len(copies) <= len(theirs), (copies, theirs)
    else:
        assert copies == []


# Lion's update reads the old momentum, whose buffer the new momentum takes; XLA:CPU leaves
# the two fusions unordered and copies the donated momentum first (and, in this harness, the
# params, whose gradient both fusions recompute). optax's Lion makes the same copies; with the
# gradient passed in, one copy (the momentum) remains in both. Barriers, a cond and a data
# dependency did not remove it (measured 2026-12-07).
COPIES_AS_OPTAX = {"lion": optax.lion, "cautious_lion": optax.lion}


def test_the_copy_check_sees_a_copied_count():
    def step(params, state, t):
        count = state["count"] + 1
        return params * count.astype(jnp.float32) + t, {"count": count, "t": state["t"] + count.astype(jnp.float32)}

    state = {"count": jnp.int32(0), "t": jnp.float32(0)}
    assert len(_entry_copies(step, jnp.zeros(2), state)) == 1


def test_counts_saturate_at_the_int32_maximum():
    """A count at 2**31 - 1 stays there instead of wrapping to a negative step."""
    tx = optaxtra.adamw(0.1)
    params = jax.tree.map(jnp.array, PARAMS)
    top = jnp.iinfo(jnp.int32).max
    state = jax.tree.map(
        lambda x: jnp.full_like(x, top) if x.dtype == jnp.int32 else x, tx.init(params)
    )
    updates, state = tx.update(_grads(params, 0), state, params)
    counts = [x for x in jax.tree.leaves(state) if x.dtype == jnp.int32]
    assert counts and all(int(c) == top for c in counts)
    assert all(bool(jnp.all(jnp.isfinite(u))) for u in jax.tree.leaves(updates))
