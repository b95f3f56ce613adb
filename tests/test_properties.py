"""Property-based tests (hypothesis) over every optimizer in ``optaxtra.OPTIMIZERS``.

Each optimizer is built and jitted once per kind of run (``_compiled``); the
examples only change the numbers. A run is ``STEPS`` updates in one
``lax.scan``: past RAdam's switch to the adaptive step (step 6) and a
Lookahead synchronisation (step 5 or 6).
"""

from __future__ import annotations

import functools
from typing import Any

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optaxtra

NAMES = sorted(optaxtra.OPTIMIZERS)
LEARNING_RATE = 1e-2
STEPS = 7
SHAPES = {"b": (3,), "w": (2, 3)}
FEW = settings(max_examples=3, deadline=None, database=None, derandomize=True)
SOME = settings(max_examples=8, deadline=None, database=None, derandomize=True)

# Table entries whose defaults carry a weight decay, rebuilt with none. A new
# optimizer that decays by default fails the zero-gradient property until it
# is listed here.
WITHOUT_DECAY = {
    "adamw": lambda lr: optaxtra.adamw(lr, weight_decay=0.0),
    "lamb": lambda lr: optaxtra.lamb(lr, weight_decay=0.0),
    "ralamb": lambda lr: optaxtra.ralamb(lr, weight_decay=0.0),
    "lars": lambda lr: optaxtra.lars(lr, weight_decay=0.0),
    "cautious_adamw": lambda lr: optaxtra.cautious_adamw(lr, weight_decay=0.0),
    "muon": lambda lr: optaxtra.muon(lr, weight_decay=0.0, adam_weight_decay=0.0),
    "nadamw": lambda lr: optaxtra.nadamw(lr, weight_decay=0.0),
    "stable_adamw": lambda lr: optaxtra.stable_adamw(lr, weight_decay=0.0),
    "adamc": lambda lr: optaxtra.adamc(lr, weight_decay=0.0),
}


# adam_2k's default freeze (2,000 steps) outlasts STEPS: with it every update here would be zero,
# and the properties would hold of a frozen optimizer. freeze_steps=2 runs both phases.
OVERRIDES = {"adam_2k": lambda lr: optaxtra.adam_2k(lr, freeze_steps=2)}


def trees(elements: st.SearchStrategy, steps: int | None = None) -> st.SearchStrategy:
    """Dicts of float32 arrays with ``SHAPES`` (stacked over ``steps`` if given)."""
    lead = () if steps is None else (steps,)
    return st.fixed_dictionaries(
        {key: hnp.arrays(np.float32, lead + shape, elements=elements) for key, shape in SHAPES.items()}
    )


# No subnormals: compiled XLA code on CPU flushes them to zero, so even ``p + 0``
# changes a subnormal param, whatever the optimizer does. Magnitudes up to 2**60 (1.2e18):
# beyond ~1.8e19 a float32 square overflows, and the second moment or a layer's
# norm is infinite (see docs/robustness.md).
MODERATE = st.floats(-10.0, 10.0, width=32, allow_subnormal=False)
FINITE = st.floats(-2.0**60, 2.0**60, width=32, allow_subnormal=False)
AWAY_FROM_ZERO = st.floats(1.0, 10.0, width=32).flatmap(lambda x: st.sampled_from([x, -x]))


def build(name: str, wrapper: str | None = None) -> optax.GradientTransformation:
    table = OVERRIDES.get(name, optaxtra.OPTIMIZERS[name])
    tx = table(LEARNING_RATE)
    if wrapper == "no_decay":
        tx = WITHOUT_DECAY.get(name, table)(LEARNING_RATE)
    if wrapper == "lookahead_one":
        tx = optaxtra.lookahead(tx, sync_period=2, slow_step_size=1.0)
    return tx


@functools.cache
def _compiled(name: str, wrapper: str | None = None, apply: bool = True):
    """``(params, stacked grads) -> (params, state, updates per step, adaptive flag per step)``, jitted."""
    tx = build(name, wrapper)

    def run(params, grads):
        def step(carry, g):
            p, s = carry
            u, s = tx.update(g, s, p)
            adaptive = optaxtra.diagnostics(s).get("rectifier/adaptive", jnp.ones([]))
            return (optax.apply_updates(p, u) if apply else p, s), (u, adaptive)

        (params, state), (updates, adaptive) = jax.lax.scan(step, (params, tx.init(params)), grads)
        return params, state, updates, adaptive

    return jax.jit(run)


@functools.cache
def _step(name: str):
    """One jitted update of the table's optimizer."""
    return jax.jit(build(name).update)


def eager_run(tx, params, grads):
    state = tx.init(params)
    states, all_updates = [state], []
    for t in range(STEPS):
        updates, state = tx.update(jax.tree.map(lambda g: g[t], grads), state, params)
        params = optax.apply_updates(params, updates)
        states.append(state)
        all_updates.append(updates)
    return params, states, all_updates


def has_second_moment(name: str) -> bool:
    adaptive = (optaxtra.ScaleByAdamState, optaxtra.ScaleByRadamRectifierState)
    state = build(name).init({key: jnp.zeros(shape) for key, shape in SHAPES.items()})
    return any(isinstance(x, adaptive) for x in jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, adaptive)))


ADAM_FAMILY = [name for name in NAMES if has_second_moment(name)]


def signature(tree: Any) -> tuple:
    """What must not change across steps: structure, shapes, dtypes, weak types."""
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, [(jnp.shape(x), jnp.result_type(x), getattr(x, "weak_type", False)) for x in leaves]


def assert_trees_equal(actual, expected):
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), actual, expected)


def assert_trees_close(actual, expected):
    """Two compiled programs (or jit and eager) may contract a*b + c into an FMA differently:
    a few float32 ulps of values up to about 10."""
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6), actual, expected)


def test_the_adam_family_is_found():
    assert {"adam", "adamw", "amsgrad", "radam", "ranger", "lamb", "ralamb"} <= set(ADAM_FAMILY)
    assert not {"sgd", "sgd_momentum", "lars"} & set(ADAM_FAMILY)


@pytest.mark.parametrize("name", NAMES)
@FEW
@given(params=trees(MODERATE), grads=trees(MODERATE, STEPS))
def test_jit_equals_eager(name, params, grads):
    jit_params, _, jit_updates, _ = _compiled(name)(params, grads)
    eager_params, _, eager_updates = eager_run(build(name), params, grads)
    assert_trees_close(jit_params, eager_params)
    for t in range(STEPS):
        assert_trees_close(jax.tree.map(lambda u: u[t], jit_updates), eager_updates[t])


@pytest.mark.parametrize("name", NAMES)
@SOME
@given(params=trees(MODERATE), grads=trees(MODERATE, STEPS))
def test_same_inputs_same_outputs(name, params, grads):
    run = _compiled(name)
    assert_trees_equal(run(params, grads), run(params, grads))
    tx, step = build(name), _step(name)
    grads_0 = jax.tree.map(lambda g: g[0], grads)
    state = tx.init(params)
    assert_trees_equal(step(grads_0, state, params), step(grads_0, state, params))
    assert_trees_equal(state, tx.init(params))


@pytest.mark.parametrize("name", NAMES)
@FEW
@given(params=trees(MODERATE), grads=trees(MODERATE, STEPS))
def test_state_structure_never_changes(name, params, grads):
    step = _step(name)
    state = build(name).init(params)
    first = signature(state)
    for t in range(STEPS):
        updates, state = step(jax.tree.map(lambda g: g[t], grads), state, params)
        params = optax.apply_updates(params, updates)
        assert signature(state) == first


@pytest.mark.parametrize("name", NAMES)
@SOME
@given(params=trees(FINITE))
def test_zero_gradient_without_decay_leaves_params_unchanged(name, params):
    zeros = {key: jnp.zeros((STEPS,) + shape, jnp.float32) for key, shape in SHAPES.items()}
    final, _, _, _ = _compiled(name, "no_decay" if name in WITHOUT_DECAY else None)(params, zeros)
    assert_trees_equal(final, params)


@pytest.mark.parametrize("name", ADAM_FAMILY)
@SOME
@given(
    params=trees(MODERATE),
    grads=trees(AWAY_FROM_ZERO, STEPS),
    exponent=st.integers(-2, 6),
)
def test_adam_family_updates_ignore_the_gradient_scale(name, params, grads, exponent):
    """Updates for ``c * g`` equal those for ``g`` wherever the adaptive step is on, up to eps.

    ``c`` is a power of two, so scaling is exact and only eps differs. With
    ``|g| >= 1`` and ``c >= 1/4``, ``sqrt(v_hat) >= 1/4``; the largest eps in
    the table on the ``v_hat`` scale is 1.3e-4 (ranger's 1e-5 added before the
    bias correction, times 1 / sqrt(1 - 0.999**6)), so the relative
    difference is below 1.3e-4 / 0.25 = 5.2e-4. The params are held fixed so
    that steps compare like with like.
    """
    scale = np.float32(2.0**exponent)
    run = _compiled(name, apply=False)
    _, _, updates, adaptive = run(params, grads)
    _, _, scaled_updates, scaled_adaptive = run(params, jax.tree.map(lambda g: g * scale, grads))
    np.testing.assert_array_equal(adaptive, scaled_adaptive)
    # Lookahead's sync step adds (1 - alpha)(slow - fast), where fast = params + update
    # is rounded to the params' precision: up to one ulp of the largest param.
    rounding = float(np.spacing(max(np.abs(x).max() for x in jax.tree.leaves(params))))
    # rtol: the bound 5.2e-4 derived above, plus room for float32 rounding. Measured 2026-11-26 at
    # most 9.7e-5 (adam_eps; ranger 6.5e-5, every other row below 1e-5), 6x below it.
    for t in np.flatnonzero(np.asarray(adaptive) > 0):
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a[t], b[t], rtol=6e-4, atol=rounding),
            scaled_updates, updates,
        )


@pytest.mark.parametrize("name", NAMES)
@SOME
@given(params=trees(FINITE), grads=trees(FINITE, STEPS))
def test_finite_inputs_never_give_nan(name, params, grads):
    _, _, updates, _ = _compiled(name)(params, grads)
    for leaf in jax.tree.leaves(updates):
        assert not bool(jnp.any(jnp.isnan(leaf)))


@pytest.mark.parametrize("name", NAMES)
@SOME
@given(params=trees(MODERATE), grads=trees(MODERATE, STEPS))
def test_lookahead_with_slow_step_size_one_is_its_inner_optimizer(name, params, grads):
    """The sync step is exact at alpha = 1; the two programs may still fuse multiply-adds differently."""
    inner = _compiled(name)(params, grads)
    wrapped = _compiled(name, "lookahead_one")(params, grads)
    assert_trees_close(wrapped[0], inner[0])
    assert_trees_close(wrapped[2], inner[2])
