"""Every optimizer (``optaxtra.OPTIMIZERS``, averaging, switching) inside optax's pipeline wrappers.

Each wrapper is checked against what it promises, computed without it: a
chain with ``clip_by_global_norm`` equals the optimizer fed clipped gradients;
``masked`` and ``multi_transform`` equal the optimizer run on its subtree alone;
``MultiSteps`` equals the optimizer fed the accumulated mean every k steps;
``apply_if_finite`` skips a NaN step as if it never happened;
``inject_hyperparams`` equals the plain optimizer, and a learning rate changed
in its state equals the plain optimizer rebuilt with that rate; ``flatten``
leaves every elementwise optimizer unchanged and makes the trust-ratio ones
act on one layer holding every param.

The trajectories run op by op (``jax.disable_jit``: ``lax.cond`` runs one
branch in Python and no program is compiled per combination) and must agree
bit for bit. Each
combination is also traced as a jitted step (``jax.eval_shape``: the branches of
every ``cond`` must agree, no Python branch on a traced value, and the new state
has exactly the old state's types, so a jitted loop never recompiles), and
one optimizer per wrapper is compiled and run.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optaxtra
from tests._ecosystem_cases import CASES, NAMES

LEARNING_RATE = 1e-2
STEPS = 6  # up to a Lookahead synchronisation for k = 5 (lookahead_adam) and k = 6 (ranger)
MASK = {"kernel": True, "bias": False}


@functools.cache  # the trees are only read: tests rebind, never mutate them
def make_params() -> dict[str, Any]:
    """One layer: the fewer leaves and shapes, the fewer ops run (and compile) op by op.

    The shapes of ``tests/test_optimizer_table.py``'s dense layer, whose op-by-op
    compilations a test run can then share.
    """
    keys = jax.random.split(jax.random.key(0), 2)
    return {"kernel": jax.random.normal(keys[0], (4, 3)), "bias": jax.random.normal(keys[1], (3,))}


def make_grads(steps: int, seed: int = 1) -> list[Any]:
    """Gradients of global norm about 10, so ``clip_by_global_norm(1.0)`` is active."""
    return list(_make_grads(steps, seed))


@functools.cache
def _make_grads(steps: int, seed: int) -> tuple[Any, ...]:
    params = make_params()
    keys = jax.random.split(jax.random.key(seed), steps)
    return tuple(
        jax.tree.map(lambda p, k=key: 3.0 * jax.random.normal(k, p.shape, p.dtype), params)
        for key in keys
    )


def selected(tree: Any) -> dict[str, Any]:
    """The leaves ``MASK`` selects, as a tree of their own."""
    return {"kernel": tree["kernel"]}


def trajectory(tx: optax.GradientTransformation, params: Any, grads: list[Any]) -> tuple[list[Any], Any]:
    """The updates of each step (params moved by them) and the final state, op by op."""
    state = tx.init(params)
    history = []
    with jax.disable_jit():
        for g in grads:
            updates, state = tx.update(g, state, params)
            params = optax.apply_updates(params, updates)
            history.append(updates)
    return history, state


def assert_identical(actual: Any, expected: Any) -> None:
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    jax.tree.map(np.testing.assert_array_equal, actual, expected)


def assert_jit_stable(tx: optax.GradientTransformation, grads: Any) -> None:
    """Traces a jitted step: it must trace, and return a state of the very same types."""
    params = make_params()
    state = tx.init(params)
    step = jax.jit(lambda g, s, p: tx.update(g, s, p))
    updates, new_state = jax.eval_shape(step, grads, state, params)
    same_type = lambda a, b: (a.shape, a.dtype, a.weak_type) == (b.shape, b.dtype, b.weak_type)
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    assert all(jax.tree.leaves(jax.tree.map(same_type, new_state, jax.eval_shape(lambda: state))))
    assert all(jax.tree.leaves(jax.tree.map(same_type, updates, jax.eval_shape(lambda: params))))


def optimizer(name: str, learning_rate: Any = LEARNING_RATE) -> optax.GradientTransformation:
    return CASES[name](learning_rate)


@pytest.mark.parametrize("name", NAMES)
def test_chain_with_clip_by_global_norm(name):
    grads = make_grads(STEPS)
    clip = optax.clip_by_global_norm(1.0)
    clipped = [clip.update(g, clip.init(g))[0] for g in grads]
    assert float(optax.tree.norm(grads[0])) > 1.0  # the clip is active
    tx = optax.chain(clip, optimizer(name))
    actual, _ = trajectory(tx, make_params(), grads)
    expected, _ = trajectory(optimizer(name), make_params(), clipped)
    assert_identical(actual, expected)
    assert_jit_stable(tx, grads[0])


@functools.cache
def trajectory_on_selected(name: str) -> list[Any]:
    """The optimizer alone on the leaves ``MASK`` selects (shared by two tests)."""
    grads = [selected(g) for g in make_grads(STEPS)]
    updates, _ = trajectory(optimizer(name), selected(make_params()), grads)
    return updates


@pytest.mark.parametrize("name", NAMES)
def test_masked(name):
    grads = make_grads(STEPS)
    tx = optax.masked(optimizer(name), MASK)
    actual, _ = trajectory(tx, make_params(), grads)
    assert_identical([selected(u) for u in actual], trajectory_on_selected(name))
    # optax.masked passes the other leaves' updates through untouched.
    assert_identical([u["bias"] for u in actual], [g["bias"] for g in grads])
    assert_jit_stable(tx, grads[0])


@pytest.mark.parametrize("name", NAMES)
def test_multi_transform(name):
    grads = make_grads(STEPS)
    labels = jax.tree.map(lambda keep: "optaxtra" if keep else "sgd", MASK)
    tx = optax.multi_transform({"optaxtra": optimizer(name), "sgd": optax.sgd(0.1)}, labels)
    actual, _ = trajectory(tx, make_params(), grads)
    assert_identical([selected(u) for u in actual], trajectory_on_selected(name))
    sgd_steps = [-0.1 * g["bias"] for g in grads]
    assert_identical([u["bias"] for u in actual], sgd_steps)
    assert_jit_stable(tx, grads[0])


# optax 0.2.8's MultiSteps divides its float accumulator by an int32 count, which
# strict promotion (tests/conftest.py) rejects: MultiSteps runs under standard
# promotion; optaxtra's own code inside it still runs strict-clean.
MULTISTEPS_PROMOTION = "standard"


@pytest.mark.parametrize("name", NAMES)
def test_multi_steps_gradient_accumulation(name):
    k = 2
    micro = make_grads(k * STEPS)
    tx = optax.MultiSteps(optimizer(name), every_k_schedule=k).gradient_transformation()
    with jax.numpy_dtype_promotion(MULTISTEPS_PROMOTION):
        actual, _ = trajectory(tx, make_params(), micro)
        assert_jit_stable(tx, micro[0])
    # MultiSteps averages with Welford's running mean; for k = 2: g1 + (g2 - g1) / 2.
    means = [
        jax.tree.map(lambda a, b: a + (b - a) / jnp.float32(2), micro[i], micro[i + 1])
        for i in range(0, len(micro), k)
    ]
    expected, _ = trajectory(optimizer(name), make_params(), means)
    assert_identical(actual[k - 1 :: k], expected)
    for between in actual[::k]:  # the micro-steps that only accumulate
        assert all(not np.any(leaf) for leaf in jax.tree.leaves(between))


@pytest.mark.parametrize("name", NAMES)
def test_apply_if_finite_skips_a_nan_step(name):
    grads = make_grads(STEPS + 1)  # one step is skipped
    poisoned = list(grads)
    poisoned[3] = jax.tree.map(lambda g: g.at[0].set(jnp.nan), grads[3])
    tx = optax.apply_if_finite(optimizer(name), max_consecutive_errors=2)
    actual, state = trajectory(tx, make_params(), poisoned)
    expected, expected_inner = trajectory(optimizer(name), make_params(), grads[:3] + grads[4:])
    assert all(not np.any(leaf) for leaf in jax.tree.leaves(actual[3]))
    assert_identical(actual[:3] + actual[4:], expected)
    assert_identical(state.inner_state, expected_inner)
    assert int(state.total_notfinite) == 1
    assert_jit_stable(tx, grads[0])


@pytest.mark.parametrize("name", NAMES)
def test_inject_hyperparams(name):
    grads = make_grads(STEPS)
    tx = optax.inject_hyperparams(CASES[name])(LEARNING_RATE)
    (hyperparameter,) = tx.init(make_params()).hyperparams  # the factories take one rate

    # Up to step 3 it is the plain optimizer; a rate changed in the state then
    # acts like handing the plain optimizer's state to one built with the new
    # rate (the state holds no hyperparameters, so the two share it).
    def changed_at_step_3(tx_for_rate, set_rate):
        params, state, history = make_params(), None, []
        with jax.disable_jit():
            for step, g in enumerate(grads):
                rate = LEARNING_RATE if step < 3 else 2 * LEARNING_RATE
                tx = tx_for_rate(rate)
                state = tx.init(params) if state is None else set_rate(state, rate)
                updates, state = tx.update(g, state, params)
                params = optax.apply_updates(params, updates)
                history.append(updates)
        return history, state

    def set_injected(state, rate):
        state.hyperparams[hyperparameter] = jnp.asarray(rate, jnp.float32)
        return state

    actual, state = changed_at_step_3(lambda rate: tx, set_injected)
    expected, _ = changed_at_step_3(lambda rate: optimizer(name, rate), lambda state, rate: state)
    assert_identical(actual, expected)
    reported = optaxtra.diagnostics(state)[f"hyperparams/{hyperparameter}"]
    assert float(reported) == np.float32(2 * LEARNING_RATE)
    assert_jit_stable(tx, grads[0])


# Optimizers with a per-layer trust ratio or rescaling: under optax.flatten the whole model is one layer.
CAUTIOUS = {"cautious_adamw", "cautious_lion"}  # a rescaling per leaf
PER_LAYER = {"lamb", "ralamb", "lars", "stable_adamw", "muon"} | CAUTIOUS  # stable_adamw: RMS per tensor; muon: a flat vector is no matrix
PER_LAYER |= {"adam_mini"}  # its blocks are found by path: the flat vector is one block


@pytest.mark.parametrize("name", NAMES)
def test_flatten(name):
    """``optax.flatten`` (one flat state, for many small leaves): elementwise optimizers unchanged."""
    grads = make_grads(STEPS)
    actual, _ = trajectory(optax.flatten(optimizer(name)), make_params(), grads)
    if name not in PER_LAYER:  # swats too: its projection's sums change order, not its updates here
        expected, _ = trajectory(optimizer(name), make_params(), grads)
        assert_identical(actual, expected)
    else:
        # What flatten means for these: the optimizer run on one leaf holding every param.
        flat_params, unravel = jax.flatten_util.ravel_pytree(make_params())
        flat_grads = [jax.flatten_util.ravel_pytree(g)[0] for g in grads]
        one_layer, _ = trajectory(optimizer(name), flat_params, flat_grads)
        assert_identical(actual, [unravel(u) for u in one_layer])
        per_layer, _ = trajectory(optimizer(name), make_params(), grads)  # and not the per-layer one
        # On these gradients the cautious ones keep every entry (tests/test_parity_cautious.py) and
        # stable_adamw clips no tensor (its RMS stays <= 1; tests/test_parity_stable_adamw.py).
        if name not in CAUTIOUS | {"stable_adamw"}:
            assert not np.allclose(actual[0]["kernel"], per_layer[0]["kernel"], rtol=1e-3)
    assert_jit_stable(optax.flatten(optimizer(name)), grads[0])


WRAPPERS: dict[str, Callable[[optax.GradientTransformation], optax.GradientTransformation]] = {
    "clip": lambda tx: optax.chain(optax.clip_by_global_norm(1.0), tx),
    "masked": lambda tx: optax.masked(tx, MASK),
    "multi_transform": lambda tx: optax.multi_transform(
        {"a": tx, "b": optax.sgd(0.1)}, jax.tree.map(lambda keep: "a" if keep else "b", MASK)
    ),
    "multi_steps": lambda tx: optax.MultiSteps(tx, every_k_schedule=2).gradient_transformation(),
    "apply_if_finite": lambda tx: optax.apply_if_finite(tx, max_consecutive_errors=2),
}


@pytest.mark.parametrize("wrapper", sorted(WRAPPERS))
def test_compiled_wrapper_matches_op_by_op(wrapper):
    """One compiled run per wrapper (ranger: Lookahead's cond inside the wrapper's)."""
    tx = WRAPPERS[wrapper](optimizer("ranger"))
    grads = make_grads(STEPS)
    promotion = MULTISTEPS_PROMOTION if wrapper == "multi_steps" else "strict"
    with jax.numpy_dtype_promotion(promotion):
        expected, _ = trajectory(tx, make_params(), grads)
        step = jax.jit(tx.update)
        params, state = make_params(), tx.init(make_params())
        for g, reference in zip(grads, expected):
            updates, state = step(g, state, params)
            params = optax.apply_updates(params, updates)
            # XLA may fuse differently from op-by-op execution: a few float32 ulps, no more.
            close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
            jax.tree.map(close, updates, reference)
    assert step._cache_size() == 1


def test_compiled_inject_hyperparams_changes_rate_without_recompiling():
    tx = optax.inject_hyperparams(CASES["ranger"])(LEARNING_RATE)
    step = jax.jit(tx.update)
    params, state = make_params(), tx.init(make_params())
    for index, g in enumerate(make_grads(STEPS)):
        state.hyperparams["lr"] = jnp.asarray(LEARNING_RATE / (index + 1), jnp.float32)
        updates, state = step(g, state, params)
        params = optax.apply_updates(params, updates)
    assert step._cache_size() == 1
    assert np.isclose(float(optaxtra.diagnostics(state)["learning_rate"]), LEARNING_RATE / STEPS)
