"""Each piece arranged for XLA gives the numbers of its plain transcription (``tests/_oracles.py``).

The arrangements (Lookahead's sync, the trust ratio's decayed norm, moments
read back as stored, SWATS's fused switch) change how a step is compiled,
never what it computes: each optimizer that holds one is run jitted, with its
params and state donated as a training loop does, once as the library builds
it and once built from the plain forms; params and state must agree to float
rounding, and the library form must keep fewer temporaries. No test here
measures speed.

"Float rounding" is measured per leaf, in ulps at the leaf's largest magnitude
(``ulps``), so that a small leaf such as Adam's ``nu`` (|nu| < 5e-4) is held
to its own scale rather than to the params'. Optimizers whose two paths trace
to the same program, or that were measured bit for bit equal, are compared
exactly.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optaxtra
from tests import _oracles
from tests._hlo import wide_kernels

# The table's optimizers that hold an arranged piece, each with its plain twin.
NAMES = sorted(name for name in optaxtra.OPTIMIZERS if _oracles.plain_optimizer(name, 1e-2) is not None)
STEPS = 13  # covers the syncs of lookahead (k = 5: steps 5, 10) and ranger (k = 6: 6, 12)

# lars's arranged form computes u - (-wd) p, which is u + wd p to the last bit (see
# transforms/_trust_ratio.py): measured equal here and for 6 other gradient seeds (2026-11-26).
BIT_IDENTICAL = {"lars"}

# Tolerances in ulps at each leaf's largest magnitude (``ulps``), measured on x86-64 (2026-11-26).
# Float32 (every other row of the table, the float32 SWATS rows and the Lookahead sync options):
# at most 3.1 float32 ulps (radam's mu['dense']['bias']; params at most 1.7), max abs error 1.9e-6
# (ralamb's trust ratio, 28 in size). 16 is 5x that.
FLOAT32_ULPS = 16
# bfloat16 params (test_fast_path_equals_plain_path_bfloat16): the two runs' params part by a
# bfloat16 rounding and everything computed from them (float32 nu and trust ratios included)
# inherits it, so every leaf is measured in bfloat16 ulps: at most 0.95 (lamb's ratios['dense']
# ['bias']; params at most 0.53, abs 7.8e-3 at 1.9). 6 is 6.3x that.
BFLOAT16_PARAMS_ULPS = 6
# Adam with both moments stored in bfloat16, float32 params: params at most 0.29 bfloat16 ulps
# (abs 1.3e-4); the state is equal bit for bit with this seed, but not by construction (the
# params, hence the gradients, differ): with 8 other gradient seeds 1 or 2 moment entries land
# one bfloat16 step apart, at most 0.48 bfloat16 ulps of the leaf. 2 is 4.2x that (7x the params').
BFLOAT16_MOMENTS_ULPS = 2
# SWATS with a bfloat16 first moment: at most 0.18 bfloat16 ulps (params['dense']['bias']);
# the state at most 0.03. 1 is 5.7x that.
BFLOAT16_MU_ULPS = 1


def make_params(dtype=jnp.float32):
    keys = jax.random.split(jax.random.PRNGKey(1), 3)
    return {
        "dense": {"kernel": jax.random.normal(keys[0], (6, 5), dtype), "bias": jnp.zeros((5,), dtype)},
        "embed": jax.random.normal(keys[1], (7, 3), dtype),
        "scale": jnp.ones((), dtype),
    }


def grads_at(params, step):
    """Deterministic gradients that change every step (so moments and ratios move)."""
    key = jax.random.fold_in(jax.random.PRNGKey(7), step)
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    noise = [jax.random.normal(k, x.shape, jnp.float32) for k, x in zip(keys, leaves)]
    return treedef.unflatten(
        [(0.1 * n + 0.05 * x.astype(jnp.float32)).astype(x.dtype) for n, x in zip(noise, leaves)]
    )


def run(tx, params, steps=STEPS):
    """``steps`` donated, jitted steps of ``tx``."""

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    state = tx.init(params)
    params = jax.tree.map(lambda x: jnp.array(x, copy=True), params)
    compiled = jax.jit(step, donate_argnums=(0, 1))
    for i in range(steps):
        params, state = compiled(params, state, grads_at(params, i))
    return params, state


def ulps(actual, expected, unit) -> float:
    """``max |actual - expected|`` in ulps of ``unit`` at ``expected``'s largest magnitude."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    difference = np.abs(actual - expected).max(initial=0.0)
    if difference == 0:
        return 0.0
    scale = np.abs(expected).max(initial=0.0)
    return float(difference / (float(jnp.finfo(unit).eps) * scale)) if scale else float("inf")


def _pairs(actual, expected):
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(actual), jax.tree.leaves(expected)):
        assert a.dtype == b.dtype and a.shape == b.shape, jax.tree_util.keystr(path)
        yield jax.tree_util.keystr(path), a, b


def assert_within_ulps(actual, expected, limit, unit=None):
    """Leaf by leaf: floating leaves within ``limit`` ulps of ``unit`` (default: the leaf's own
    dtype) at that leaf's largest magnitude; integer and boolean leaves equal."""
    for path, a, b in _pairs(actual, expected):
        if jnp.issubdtype(a.dtype, jnp.inexact):
            error = ulps(a, b, unit or a.dtype)
            assert error <= limit, f"{path}: {error:.3g} ulps > {limit}"
        else:
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=path)


def assert_equal(actual, expected):
    """Leaf by leaf, bit for bit (compared in float64, which holds every float32 and bfloat16)."""
    for path, a, b in _pairs(actual, expected):
        np.testing.assert_array_equal(np.asarray(a, np.float64), np.asarray(b, np.float64), err_msg=path)


@pytest.mark.parametrize("name", NAMES)
def test_fast_path_equals_plain_path(name):
    fast = run(optaxtra.OPTIMIZERS[name](1e-2), make_params())
    plain = run(_oracles.plain_optimizer(name, 1e-2), make_params())
    if name in BIT_IDENTICAL:
        assert_equal(fast, plain)
    else:
        assert_within_ulps(fast, plain, FLOAT32_ULPS)


SWATS = {
    "swats": {},
    "swats_switching_at_step_2": {"switch_atol": 1e3},
    "swats_decay_bfloat16_mu": dict(
        learning_rate=optax.linear_schedule(1e-2, 1e-3, 10), b1=lambda count: 0.9, weight_decay=1e-2,
        eps_placement="corrected", mu_dtype=jnp.bfloat16, switch_atol=1e3,
    ),
}


def switch_state(state):
    return next(s for s in state if isinstance(s, optaxtra.SwitchState))


@pytest.mark.parametrize("name", sorted(SWATS))
def test_fast_swats_equals_plain_swats(name):
    """SWATS's fused switch against ``switch_when`` of its phases, before and after the switch."""
    kwargs = {"learning_rate": 1e-2, **SWATS[name]}
    fast_params, fast_state = run(optaxtra.swats(**kwargs), make_params())
    plain_params, plain_state = run(_oracles.swats(**kwargs), make_params())
    switched_at = int(switch_state(fast_state).switched_at)
    assert switched_at == int(switch_state(plain_state).switched_at)
    assert switched_at == (-1 if name == "swats" else 2)
    fast, plain = (fast_params, fast_state), (plain_params, plain_state)
    if "bfloat16" in name:  # a bfloat16 rounding of m apart
        assert_within_ulps(fast, plain, BFLOAT16_MU_ULPS, jnp.bfloat16)
    else:
        assert_within_ulps(fast, plain, FLOAT32_ULPS)


def plain_adam(learning_rate, **kwargs):
    return optax.chain(optaxtra.add_decayed_weights(0.0), _oracles.scale_by_adam(**kwargs),
                       optaxtra.scale_by_learning_rate(learning_rate))


@pytest.mark.parametrize("name", ["adam", "lamb", "lookahead_adam", "ranger"])
def test_fast_path_equals_plain_path_bfloat16(name):
    """bfloat16 params: the moments of Adam's first moment are stored in bfloat16 too."""
    fast = run(optaxtra.OPTIMIZERS[name](1e-2), make_params(jnp.bfloat16))
    plain_tx = plain_adam(1e-2) if name == "adam" else _oracles.plain_optimizer(name, 1e-2)
    plain = run(plain_tx, make_params(jnp.bfloat16))
    assert_within_ulps(fast, plain, BFLOAT16_PARAMS_ULPS, jnp.bfloat16)


@pytest.mark.parametrize("reset_inner_state", [False, True])
@pytest.mark.parametrize("slow_step_size", [0.5, 1.0])
def test_lookahead_sync_options(reset_inner_state, slow_step_size):
    fast = run(optaxtra.lookahead_state(
        optaxtra.adam(1e-2), 3, slow_step_size, reset_inner_state=reset_inner_state), make_params(), steps=7)
    plain = run(_oracles.lookahead_state(
        optaxtra.adam(1e-2), 3, slow_step_size, reset_inner_state=reset_inner_state), make_params(), steps=7)
    assert_within_ulps(fast, plain, FLOAT32_ULPS)  # measured at most 1.5 float32 ulps


def test_lookahead_slow_weights_are_the_new_params_after_a_sync():
    tx = optaxtra.lookahead(optaxtra.adam(1e-2), sync_period=2)
    params = make_params()
    state = tx.init(params)
    for i in range(2):
        updates, state = jax.jit(tx.update)(grads_at(params, i), state, params)
        params = optax.apply_updates(params, updates)
    assert bool(state.synced)
    jax.tree.map(np.testing.assert_array_equal, optaxtra.slow_params(state), params)


def test_lookahead_slow_step_size_one_is_the_inner_optimizer_bit_for_bit():
    """Eagerly (under ``jit`` two programs may fuse, and so round, differently)."""

    def eager(tx):
        params = make_params()
        state = tx.init(params)
        for i in range(7):
            updates, state = tx.update(grads_at(params, i), state, params)
            params = optax.apply_updates(params, updates)
        return params

    with_lookahead = eager(optaxtra.lookahead(optaxtra.adam(1e-2), 3, 1.0))
    jax.tree.map(np.testing.assert_array_equal, with_lookahead, eager(optaxtra.adam(1e-2)))


def test_lookahead_state_does_not_alias_the_params():
    """``init`` copies the slow weights, so params and state can be donated together."""
    params = make_params()
    state = optaxtra.lookahead(optaxtra.sgd(0.1)).init(params)
    for p, s in zip(jax.tree.leaves(params), jax.tree.leaves(state.slow)):
        assert p.unsafe_buffer_pointer() != s.unsafe_buffer_pointer()


BIG_PARAMS = {"w": jnp.ones((256, 256)), "b": jnp.ones((256,))}
BIG_PARAM_BYTES = sum(x.nbytes for x in jax.tree.leaves(BIG_PARAMS))


def temp_bytes(tx):
    """Bytes of temporaries XLA allocates for one donated step of ``tx`` on ``BIG_PARAMS``."""

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    lowered = jax.jit(step, donate_argnums=(0, 1)).lower(BIG_PARAMS, tx.init(BIG_PARAMS), BIG_PARAMS)
    return lowered.compile().memory_analysis().temp_size_in_bytes


@pytest.mark.parametrize("name", ["lookahead_adam", "ranger"])
def test_fast_lookahead_keeps_no_param_sized_temporary(name):
    """The plain sync routes param-sized arrays through ``lax.cond``; the fast one does not."""
    assert temp_bytes(_oracles.plain_optimizer(name, 1e-2)) >= BIG_PARAM_BYTES
    assert temp_bytes(optaxtra.OPTIMIZERS[name](1e-2)) < BIG_PARAM_BYTES // 4


def test_fast_swats_keeps_only_adams_step():
    """The plain switch stores the updates and both phases' states; the fused one only Adam's step.

    The step feeds the two dot products and the update, so XLA stores it (as LAMB's direction).
    """
    assert temp_bytes(_oracles.swats(1e-2)) >= 3 * BIG_PARAM_BYTES
    assert temp_bytes(optaxtra.swats(1e-2)) < BIG_PARAM_BYTES + BIG_PARAM_BYTES // 4


def test_fast_lars_keeps_no_param_sized_temporary():
    """LARS's decayed gradient ``g + wd p`` feeds the norm and the step; the fast form stores it nowhere."""
    assert temp_bytes(_oracles.plain_optimizer("lars", 1e-2)) >= BIG_PARAMS["w"].nbytes
    assert temp_bytes(optaxtra.lars(1e-2, weight_decay=1e-4)) < BIG_PARAM_BYTES // 4


def test_fast_bfloat16_moments_keep_no_float32_temporary():
    """Moments stored in bfloat16 are read back as stored, not kept in float32 for the step."""
    bf16 = dict(mu_dtype=jnp.bfloat16, nu_dtype=jnp.bfloat16)
    assert temp_bytes(plain_adam(1e-2, **bf16)) >= BIG_PARAMS["w"].nbytes
    own = temp_bytes(optaxtra.adam(1e-2))  # what the float32 optimizer keeps
    assert temp_bytes(optaxtra.adam(1e-2, **bf16)) < own + BIG_PARAM_BYTES // 4


def test_fast_path_equals_plain_path_bfloat16_state():
    bf16 = dict(mu_dtype=jnp.bfloat16, nu_dtype=jnp.bfloat16)
    fast = run(optaxtra.adam(1e-2, **bf16), make_params())
    plain = run(plain_adam(1e-2, **bf16), make_params())
    assert_within_ulps(fast, plain, BFLOAT16_MOMENTS_ULPS, jnp.bfloat16)


def test_fast_swats_sums_its_products_outside_the_reductions():
    """No kernel both finishes a leaf's dot product and sums the leaves' products.

    Fused, that kernel takes two operands per leaf and its code grows faster than
    the leaf count (SWATS on 800 leaves compiled in 23 s with it, 14 s without;
    benchmarks/README.md). The sum runs under a ``lax.cond`` on the phase, which
    XLA does not fuse across; this pins the structure, not a time.
    """
    params = {f"w{i}": jnp.full((20, 25), 1.0 + i / 50) for i in range(50)}
    tx = optaxtra.swats(1e-2)
    wide = wide_kernels(lambda p, s, g: tx.update(g, s, p), params, tx.init(params), params, reducing=True)
    assert not wide, wide
