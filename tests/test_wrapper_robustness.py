"""The averaging and switching wrappers take the leaves and give the errors the core pieces do.

For ``ema_averaging``, ``swa_averaging``, ``switch`` and ``swats``: Python-float
params, integer and boolean leaves (left untouched, with zero or ``float0``
gradients), another optimizer's state (a ``TypeError`` naming the piece) and
gradients of the wrong shape (a ``ValueError`` naming the path), eagerly and
under ``jit``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optaxtra

STEPS = 4  # past switch_step=2 and SWATS's earliest switch (after step 2): both phases run


def _ema():
    return optaxtra.ema_averaging(optaxtra.adam(1e-3), decay=0.5)


def _swa():
    return optaxtra.swa_averaging(optaxtra.adam(1e-3), start_step=1)


def _switch():
    return optaxtra.switch(optaxtra.adam(1e-3), optaxtra.sgd(1e-3, momentum=0.9), switch_step=2)


def _swats():
    # A criterion any positive estimate meets: SWATS switches after its second step.
    return optaxtra.swats(1e-3, switch_atol=1.0)


WRAPPERS = {"ema_averaging": _ema, "swa_averaging": _swa, "switch": _switch, "swats": _swats}
NAMES = list(WRAPPERS)
AVERAGING = {"ema_averaging", "swa_averaging"}
SWITCHING = {"switch", "swats"}

# A state each wrapper may be handed by mistake: a sibling's, or a plain optimizer's.
# swats is chain(add_decayed_weights, scale_by_swats), so it gets a chain that starts the same.
OTHER_STATES = {
    "ema_averaging": (_swa, "EmaAveragingState"),
    "swa_averaging": (_ema, "SwaAveragingState"),
    "switch": (lambda: optaxtra.adam(1e-3), "SwitchState"),
    "swats": (lambda: optax.chain(optaxtra.add_decayed_weights(0.0), optax.scale(-1e-3)), "SwitchState"),
}

FROZEN = {"step": jnp.asarray(7, jnp.int32), "ids": jnp.arange(4, dtype=jnp.uint8), "on": jnp.array([True, False])}
W = jnp.linspace(-1.0, 2.0, 3)


def quadratic_grads(params):
    """Gradients of ``sum (p - 1)**2 / 2`` for inexact leaves; zeros of their dtype for the rest."""
    inexact = lambda p: jnp.issubdtype(jnp.result_type(p), jnp.inexact)
    return jax.tree.map(lambda p: p - jnp.ones_like(p) if inexact(p) else jnp.zeros_like(p), params)


def float0_grads(params):
    """The same gradients from ``jax.grad(..., allow_int=True)``: ``float0`` for the frozen leaves."""
    inexact = lambda p: jnp.issubdtype(jnp.result_type(p), jnp.inexact)
    loss = lambda p: sum(jnp.sum((x - 1.0) ** 2) / 2 for x in jax.tree.leaves(p) if inexact(x))
    return jax.grad(loss, allow_int=True)(params)


def run(tx, params, grads_fn=quadratic_grads, *, jit=True, steps=STEPS):
    """Params and state after ``steps`` updates, and how many times the step was traced."""
    traces = []

    def step(params, state):
        traces.append(None)
        updates, state = tx.update(grads_fn(params), state, params)
        return optax.apply_updates(params, updates), state

    step = jax.jit(step) if jit else step
    state = tx.init(params)
    for _ in range(steps):
        params, state = step(params, state)
    return params, state, len(traces)


def check_phases(name, state):
    """Both of a switching wrapper's optimizers ran: the switch happened within ``STEPS``."""
    if name in SWITCHING:
        assert bool(optaxtra.diagnostics(state)["switch/switched"])


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("name", NAMES)
def test_python_float_params_move_as_the_equal_array(name, jit):
    """Eagerly, the first update gets the Python float itself (later ones get the array it became)."""
    tx = WRAPPERS[name]()
    steps = STEPS if jit else 1
    params, state, _ = run(tx, {"w": W, "python": 3.0, "scalar": jnp.asarray(3.0)}, jit=jit, steps=steps)
    assert params["python"].dtype == jnp.float32
    assert float(params["scalar"]) != 3.0
    np.testing.assert_array_equal(params["python"], params["scalar"])
    if name in AVERAGING:
        average = optaxtra.averaged_params(state)
        np.testing.assert_array_equal(average["python"], average["scalar"])
    if jit:
        check_phases(name, state)


@pytest.mark.parametrize("grads_fn", [quadratic_grads, float0_grads], ids=["integer_grads", "float0_grads"])
@pytest.mark.parametrize("name", NAMES)
def test_integer_leaves_are_left_untouched(name, grads_fn):
    """Integer and boolean leaves keep value and dtype; the float leaf follows its run alone."""
    tx = WRAPPERS[name]()
    params, state, traces = run(tx, {"w": W, **FROZEN}, grads_fn)
    alone, _, _ = run(tx, {"w": W})
    assert traces == 1  # compiles once: the frozen leaves' updates keep their dtypes
    for key, value in FROZEN.items():
        assert params[key].dtype == value.dtype
        np.testing.assert_array_equal(params[key], value)
    np.testing.assert_array_equal(params["w"], alone["w"])
    if name in AVERAGING:
        average = optaxtra.averaged_params(state)
        for key, value in FROZEN.items():
            np.testing.assert_array_equal(average[key], value)
    check_phases(name, state)


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("name", NAMES)
def test_another_optimizers_state_is_a_type_error_naming_the_piece(name, jit):
    tx = WRAPPERS[name]()
    other, state_type = OTHER_STATES[name]
    params = {"w": W}
    update = jax.jit(tx.update) if jit else tx.update
    with pytest.raises(TypeError, match=f"^{name}: expected a {state_type} state, got "):
        update({"w": W}, other().init(params), params)


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("name", NAMES)
def test_mismatched_gradient_shape_is_a_value_error_naming_the_path(name, jit):
    tx = WRAPPERS[name]()
    params = {"dense": {"kernel": jnp.ones((2, 3)), "bias": jnp.zeros(3)}}
    grads = {"dense": {"kernel": jnp.ones((3, 2)), "bias": jnp.zeros(3)}}
    update = jax.jit(tx.update) if jit else tx.update
    with pytest.raises(ValueError, match=r"gradient \(update\) at 'dense/kernel' has shape \(3, 2\), "
                                          r"but that parameter has shape \(2, 3\)") as raised:
        update(grads, tx.init(params), params)
    assert "another optimizer's init" not in str(raised.value)  # the state is not at fault
