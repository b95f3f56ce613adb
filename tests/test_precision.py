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

# adam_2k's default freeze (2,000 steps) outlasts STEPS: with it the params never move and its
# rows compare P0 with P0. freeze_steps=2 runs both phases.
# lars's default trust coefficient (1e-3) moves these params by about an ulp in 10 steps: in
# bfloat16 they did not move at all (2026-11-26), so its row could not tell a working step from
# none. At 0.1 they move 45 bfloat16 and 359 float16 ulps.
OVERRIDES = {
    "adam_2k": lambda lr: optaxtra.adam_2k(lr, freeze_steps=2),
    "lars": lambda lr: optaxtra.lars(lr, weight_decay=1e-4, trust_coefficient=0.1),
}

# How far the half-precision params end from the float32 run's, in ulps of the largest param,
# measured 2026-11-26 (x86-64) for every row and both dtypes: at most 1.42 (radam and
# lookahead_adam, float16) in the tracking test and 1.32 (radam) in the float16-range test
# (lars, with the trust coefficient above: 1.22 and 0.81), but for sgd in the float16-range
# test (2.23). 6 ulps is 4.2x the first; sgd's keeps the rounding bound of one ulp per step
# (STEPS = 10 ulps, 4.5x what was measured).
HALF_ULPS = 6
FLOAT16_RANGE_ULPS = {"sgd": STEPS}


def representable(x: np.ndarray, dtype) -> np.ndarray:
    """``x`` rounded to ``dtype`` and back: the same numbers in both runs."""
    return np.asarray(jnp.asarray(x, dtype).astype(jnp.float32))


@functools.cache
def _compiled(name: str):
    """The table's optimizer and its jitted update, built once (compiled once per dtype)."""
    tx = OVERRIDES.get(name, optaxtra.OPTIMIZERS[name])(LEARNING_RATE)
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
    """Within ``HALF_ULPS`` ulps of the largest param.

    The learning rate moves params by many ulps per step (0.2 against
    bfloat16's 0.0078 at 1), so the bound is many times tighter than the
    distance travelled (for the optimizers that move at all in 10 steps).
    """
    grads = np.stack([representable(g, dtype) for g in GRADS])
    half, half_state, largest = run(name, dtype, grads)
    single, single_state, _ = run(name, jnp.float32, grads)
    assert half["w"].dtype == dtype
    tolerance = HALF_ULPS * ulp(largest, dtype)
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
    tolerance = FLOAT16_RANGE_ULPS.get(name, HALF_ULPS) * ulp(largest, jnp.float16)
    np.testing.assert_allclose(half["w"].astype(jnp.float32), single["w"], rtol=0, atol=tolerance)


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


def test_stochastic_rounding_is_unbiased_and_picks_a_neighbour():
    """1 + 2**-10 lies 1/8 of the way from bfloat16's 1 to 1 + 2**-7: rounded up 1/8 of the time."""
    from optaxtra._stochastic_rounding import stochastic_round_to_bfloat16

    x = jnp.full((4096,), 1.0 + 2.0**-10, jnp.float32)
    draws = np.stack(
        [np.asarray(stochastic_round_to_bfloat16(x, jnp.asarray(t), 3), np.float64) for t in range(32)]
    )
    assert set(np.unique(draws)) == {1.0, 1.0 + 2.0**-7}
    # 131,072 draws of a Bernoulli(1/8): the standard error of the mean is 7e-6 of 1.
    assert abs(draws.mean() - (1.0 + 2.0**-10)) < 5 * np.sqrt(0.125 * 0.875 / draws.size) * 2.0**-7
    negative = np.asarray(stochastic_round_to_bfloat16(-x, jnp.asarray(0), 3), np.float64)
    assert set(np.unique(negative)) <= {-1.0, -1.0 - 2.0**-7}
    special = jnp.array([jnp.inf, -jnp.inf, jnp.nan, 0.0, -0.0], jnp.float32)
    rounded = np.asarray(stochastic_round_to_bfloat16(special, jnp.asarray(5), 0), np.float32)
    np.testing.assert_array_equal(rounded, np.asarray(special))


@pytest.mark.parametrize("alias", ["adam", "adamw", "amsgrad", "radam", "lamb"])
def test_bfloat16_state_is_half_of_float32(alias):
    make = getattr(optaxtra, alias)
    params = {"w": jnp.zeros((64, 32)), "b": jnp.zeros((32,))}
    size = lambda tx: sum(leaf.nbytes for leaf in jax.tree.leaves(tx.init(params)))
    half = make(1e-3, mu_dtype=jnp.bfloat16, nu_dtype=jnp.bfloat16)
    full = make(1e-3)
    assert all(
        leaf.dtype == jnp.bfloat16 for leaf in jax.tree.leaves(half.init(params)) if leaf.size > 1
    )
    assert abs(size(half) - size(full) / 2) <= 16  # the step counts stay int32


def test_bfloat16_second_moment_decays_with_stochastic_rounding():
    """``nu_dtype=bfloat16``: from v = 1 and g = 0, v must fall as 0.999**t, which plain rounding cannot do.

    The plain-rounding control stores ``0.999 * v`` with ``astype``: it stays
    at 1 forever. Stochastic rounding follows the float32 decay in the mean
    over 4,096 entries, to 5 standard deviations of that mean: each step
    rounds ``0.999 * v`` down one bfloat16 step (2**-8 or 2**-9 here) with
    probability ``0.001 v / step`` and otherwise leaves it, unbiased; after
    1,000 steps an entry's sd is 0.024 at 0.368, so the mean's is 1.0e-3
    relative (0.024 / 64 / 0.368; a numpy simulation of the rounding over
    262,144 entries gives 1.03e-3, the entries of this run 1.01e-3, measured
    2026-11-26). This run's mean is 0.6 sd off.
    """
    params = jnp.zeros(4096)
    tx = optaxtra.scale_by_adam(nu_dtype=jnp.bfloat16)
    state = tx.init(params)
    assert state.nu.dtype == jnp.bfloat16
    state = state._replace(nu=jnp.ones_like(state.nu))
    update = jax.jit(lambda state: tx.update(jnp.zeros(4096), state)[1])
    plain = jnp.ones(4096, jnp.bfloat16)
    for _ in range(1000):
        state = update(state)
        plain = (0.999 * plain.astype(jnp.float32)).astype(jnp.bfloat16)
    assert float(plain[0]) == 1.0
    mean = float(jnp.mean(state.nu.astype(jnp.float32)))
    assert mean == pytest.approx(0.999**1000, rel=5 * 1.03e-3)  # 5 sd of the mean, see above


def test_bfloat16_second_moment_tracks_float32_adam():
    """Adam with both moments in bfloat16 ends within 4 bfloat16 steps of float32 Adam's params.

    300 steps on a quadratic: measured 0.021 at most, about 2 steps of
    bfloat16 at the largest target (2.7); the bfloat16 first moment alone
    moves the params by 0.011.
    """
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    target = jax.random.normal(keys[0], (256,))
    loss = lambda w: jnp.mean((w - target) ** 2)

    def train(tx):
        params, state = jnp.zeros(256), tx.init(jnp.zeros(256))

        @jax.jit
        def step(params, state):
            updates, state = tx.update(jax.grad(loss)(params), state, params)
            return optax.apply_updates(params, updates), state

        for _ in range(300):
            params, state = step(params, state)
        return params

    full = train(optaxtra.adam(1e-2))
    half = train(optaxtra.adam(1e-2, mu_dtype=jnp.bfloat16, nu_dtype=jnp.bfloat16))
    assert float(loss(full)) < 0.05 * float(loss(jnp.zeros(256)))
    np.testing.assert_allclose(half, full, atol=4 * 2.0**-8 * float(jnp.max(jnp.abs(target))))
    assert float(loss(half)) == pytest.approx(float(loss(full)), rel=0.1)


def test_float16_second_moment_is_refused():
    with pytest.raises(ValueError, match="nu_dtype must be None, jnp.bfloat16.*float16"):
        optaxtra.adam(1e-3, nu_dtype=jnp.float16)
    with pytest.raises(TypeError, match="nu_dtype must be None or a floating-point dtype"):
        optaxtra.scale_by_adam(nu_dtype=jnp.int32)
