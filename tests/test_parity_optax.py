"""Parity with optax 0.2.8, and the one place (RAdam's rho_t) where we differ on purpose.

Trajectories run both libraries on the shared problem of ``tests/_problems.py``
in float32 and compare the params after every step, each row at its own
measured tolerance: the SGD and LARS rows are equal bit for bit, the Adam-family
rows a few float32 ulps apart (float32 spacing at the params' O(1) scale, felt
by entries passing near zero; see ``tests/test_parity_torch.py``).

optax 0.2.8 computes ``b1 ** count`` with a Python float and an int32 count,
which ``jax_numpy_dtype_promotion="strict"`` (set for the whole suite) rejects,
so every optax call here runs under ``standard`` promotion; optaxtra's stays
strict.

The betas given to both libraries are float32 numbers (``B1 = f32(0.9)`` and
so on). optax weighs its moving averages by ``1 - b`` computed in Python
float64 and then rounded to float32, but bias-corrects them with ``1 - b^t``
of the float32 ``b``; for 0.999 the two disagree by 1.3e-5 (``f32(0.001)``
vs ``1 - f32(0.999)``), so its ``v_hat`` is 1.3e-5 high and every Adam step
6.4e-6 short, a drift of 4e-6 over 1,000 steps. optaxtra computes both from
the float32 ``b``, so a constant gradient gives ``m_hat = g`` and ``v_hat =
g^2`` exactly (and its trajectories follow PyTorch's at the full rtol with
the betas as given). With float32 betas optax's rounding disappears and the
update rules can be compared; ``test_optax_moment_weights_round_apart_from_its_bias_correction``
pins the effect itself.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optaxtra
from tests._problems import (
    NAMES,
    assert_trajectories_close,
    initial_params,
    loss_jax,
    run_optax,
    run_updates,
)

# The tolerance of a trajectory row: None for bit for bit, else (rtol, atol) for
# ``assert_trajectories_close``. Each row's comment gives what was measured (x86-64 CPU,
# 2026-11-26): the largest absolute error over every step and leaf, and the largest fraction of
# the row's tolerance used (its inverse is the safety margin, 4.8x to 6x).
EXACT = None


def f32(x: float) -> float:
    """The float32 number nearest ``x``, as a Python float."""
    return float(np.float32(x))


B1, B2 = f32(0.9), f32(0.999)
B1_ALT, B2_ALT = f32(0.8), f32(0.99)


def run_reference(tx: optax.GradientTransformation, steps: int):
    """``run_optax`` for an optax optimizer, under standard dtype promotion."""
    with jax.numpy_dtype_promotion("standard"):
        return run_optax(tx, steps)


def _case(name, ours, reference, steps, tolerance):
    """A row of the table: (optaxtra optimizer, optax optimizer, steps, tolerance)."""
    return pytest.param(ours, reference, steps, tolerance, id=name)


OPTAX_CASES = [
    _case(
        "adam", lambda: optaxtra.adam(1e-3, B1, B2), lambda: optax.adam(1e-3, B1, B2), 1000,
        (2e-6, 2e-7),  # measured max abs error 4.8e-7, 17% of this tolerance
    ),
    # optax's adamw defaults to weight_decay=1e-4, ours to PyTorch's 1e-2: pass it explicitly.
    _case(
        "adamw_optax_default_decay",
        lambda: optaxtra.adamw(1e-3, B1, B2, weight_decay=1e-4),
        lambda: optax.adamw(1e-3, B1, B2, weight_decay=1e-4),
        1000,
        (2e-6, 1e-6),  # measured max abs error 4.8e-7 (2.3e-7 at |scale| ~ 2.4e-4), 21% of this
    ),
    # optax takes the running max of the bias-corrected v_hat.
    _case(
        "amsgrad",
        lambda: optaxtra.amsgrad(1e-3, B1, B2, max_of="bias_corrected"),
        lambda: optax.amsgrad(1e-3, B1, B2),
        1000,
        (2e-6, 2e-7),  # measured max abs error 4.8e-7, 17% of this tolerance
    ),
    _case(
        "lamb",
        lambda: optaxtra.lamb(1e-3, B1, B2, weight_decay=1e-2),
        lambda: optax.lamb(1e-3, B1, B2, weight_decay=1e-2),
        500,
        (2e-6, 2e-7),  # measured max abs error 7.2e-7, 18% of this tolerance
    ),
    _case(
        "lamb_nondefault",
        lambda: optaxtra.lamb(2e-3, B1_ALT, B2_ALT, 1e-4, weight_decay=0.1),
        lambda: optax.lamb(2e-3, B1_ALT, B2_ALT, 1e-4, weight_decay=0.1),
        500,
        (5e-6, 1e-6),  # measured max abs error 1.4e-6, 21% of this tolerance
    ),
    _case(
        "lars",
        lambda: optaxtra.lars(0.3, weight_decay=1e-4),
        lambda: optax.lars(0.3, weight_decay=1e-4),
        500,
        EXACT,  # measured equal bit for bit at every step
    ),
    _case(
        "lars_nesterov_nondefault",
        lambda: optaxtra.lars(
            0.05, 1e-3, trust_coefficient=1e-2, eps=1e-6, momentum=0.8, nesterov=True
        ),
        lambda: optax.lars(
            0.05, 1e-3, trust_coefficient=1e-2, eps=1e-6, momentum=0.8, nesterov=True
        ),
        500,
        EXACT,  # measured equal bit for bit at every step
    ),
    # Under a decaying LR, momentum over LR-scaled updates (optax's order, and ours) parts from
    # momentum scaled by the LR afterwards (PyTorch's) from the second step.
    _case(
        "lars_decaying_lr",
        lambda: optaxtra.lars(optax.exponential_decay(0.3, 10, 0.5), weight_decay=1e-4),
        lambda: optax.lars(optax.exponential_decay(0.3, 10, 0.5), weight_decay=1e-4),
        500,
        EXACT,  # measured equal bit for bit at every step
    ),
    _case(
        "sgd_momentum",
        lambda: optaxtra.sgd(1e-2, momentum=0.9),
        lambda: optax.sgd(1e-2, momentum=0.9),
        1000,
        EXACT,  # measured equal bit for bit at every step
    ),
    _case(
        "sgd_nesterov",
        lambda: optaxtra.sgd(5e-3, momentum=0.8, nesterov=True),
        lambda: optax.sgd(5e-3, momentum=0.8, nesterov=True),
        500,
        EXACT,  # measured equal bit for bit at every step
    ),
]


@pytest.mark.parametrize(("ours", "reference", "steps", "tolerance"), OPTAX_CASES)
def test_trajectory_matches_optax(ours, reference, steps, tolerance):
    actual, _ = run_optax(ours(), steps)
    expected, _ = run_reference(reference(), steps)
    if tolerance is EXACT:
        for name in NAMES:
            np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)
    else:
        rtol, atol = tolerance
        assert_trajectories_close(actual, expected, rtol=rtol, atol=atol)


def test_optax_moment_weights_round_apart_from_its_bias_correction():
    """One Adam step on a constant gradient: ours is ``sign(g)`` exactly, optax's 6.8e-6 short.

    optax's first step is ``f32(1-b1) / (1 - f32(b1))`` over the square root
    of ``f32(1-b2) / (1 - f32(b2))``, transcribed here in numpy float32.
    """
    grads = {name: np.ones((1, *p.shape), np.float32) for name, p in initial_params().items()}
    ours, _ = run_updates(optaxtra.scale_by_adam(0.9, 0.999, 0.0), grads)
    with jax.numpy_dtype_promotion("standard"):
        theirs, _ = run_updates(optax.scale_by_adam(0.9, 0.999, 0.0), grads)
        theirs_f32, _ = run_updates(optax.scale_by_adam(B1, B2, 0.0), grads)
    one = np.float32(1)
    m_hat = np.float32(0.1) / (one - np.float32(0.9))
    v_hat = np.float32(0.001) / (one - np.float32(0.999))
    expected = m_hat / np.sqrt(v_hat)
    assert expected == pytest.approx(1 - 6.8e-6, abs=2e-7)
    for name in NAMES:
        np.testing.assert_array_equal(ours[name], 1.0)
        np.testing.assert_array_equal(theirs[name], expected)
        np.testing.assert_array_equal(theirs_f32[name], 1.0)


def test_adamw_default_weight_decay_is_pytorchs_not_optaxs():
    ours = inspect.signature(optaxtra.adamw).parameters["weight_decay"].default
    theirs = inspect.signature(optax.adamw).parameters["weight_decay"].default
    assert (ours, theirs) == (1e-2, 1e-4)


# --- Lookahead -----------------------------------------------------------------------------


def _run_ours_lookahead(tx, steps):
    params = jax.tree.map(jnp.asarray, initial_params())

    def step(carry, _):
        params, state = carry
        updates, state = tx.update(jax.grad(loss_jax)(params), state, params)
        params = optax.apply_updates(params, updates)
        return (params, state), (params, optaxtra.slow_params(state))

    run = jax.jit(lambda c: jax.lax.scan(step, c, length=steps))
    _, (fast, slow) = run((params, tx.init(params)))
    return fast, slow


def _run_optax_lookahead(tx, steps):
    # optax.lookahead needs its params wrapped as LookaheadParams(fast, slow); gradients are taken
    # at the fast weights.
    params = optax.LookaheadParams.init_synced(jax.tree.map(jnp.asarray, initial_params()))

    def step(carry, _):
        params, state = carry
        updates, state = tx.update(jax.grad(loss_jax)(params.fast), state, params)
        params = optax.apply_updates(params, updates)
        return (params, state), (params.fast, params.slow)

    with jax.numpy_dtype_promotion("standard"):
        run = jax.jit(lambda c: jax.lax.scan(step, c, length=steps))
        _, (fast, slow) = run((params, tx.init(params)))
    return fast, slow


@pytest.mark.parametrize(
    ("ours_inner", "optax_inner", "sync_period", "slow_step_size"),
    [
        pytest.param(
            lambda: optaxtra.adam(3e-3, B1, B2), lambda: optax.adam(3e-3, B1, B2), 5, 0.5, id="adam"
        ),
        pytest.param(
            lambda: optaxtra.sgd(1e-2, momentum=0.9), lambda: optax.sgd(1e-2, momentum=0.9), 3, 0.8,
            id="sgd_momentum",
        ),
    ],
)
def test_lookahead_matches_optax_fast_and_slow(
    ours_inner, optax_inner, sync_period, slow_step_size
):
    steps = 500
    ours = optaxtra.lookahead(ours_inner(), sync_period, slow_step_size)
    fast, slow = _run_ours_lookahead(ours, steps)
    their_fast, their_slow = _run_optax_lookahead(
        optax.lookahead(optax_inner(), sync_period, slow_step_size), steps
    )
    # Measured (2026-11-26), fast and slow weights of both rows: max abs error 1.9e-6 (|shift| ~ 5),
    # at most 14% of this tolerance (adam's fast weights).
    assert_trajectories_close(fast, their_fast, rtol=5e-6, atol=5e-7)
    assert_trajectories_close(slow, their_slow, rtol=5e-6, atol=5e-7)
    # On synchronisation steps the fast weights land on the slow ones, up to the two roundings
    # of params + (slow - params); in between they are apart.
    synced = np.arange(1, steps + 1) % sync_period == 0
    for name in NAMES:
        on_sync = np.asarray(fast[name])[synced], np.asarray(slow[name])[synced]
        np.testing.assert_array_max_ulp(*on_sync, maxulp=2)
        assert not np.array_equal(np.asarray(fast[name])[~synced], np.asarray(slow[name])[~synced])


# --- AMSGrad: the maximum of raw v or of v_hat -----------------------------------------------


@pytest.mark.parametrize("max_of", ["raw", "bias_corrected"])
def test_amsgrad_max_of_raw_and_bias_corrected_by_hand(max_of):
    """One large gradient, then small ones: the two maxima part at once.

    With ``b1 = 0`` (so ``m_hat = g``), ``b2 = 0.9``, ``eps = 0`` and
    gradients 10, 1, 1, ...: the raw maximum is ``v_1 = 10`` for good, and
    ``10 / (1 - 0.9^t)`` shrinks towards 10 (PyTorch); the maximum of
    ``v_hat`` is ``v_hat_1 = 100`` for good (optax). The update is
    ``g / sqrt(v_hat)``.
    """
    grads = np.array([10.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    b2 = 0.9
    v, v_max, v_hat_max, expected = 0.0, 0.0, 0.0, []
    for t, g in enumerate(grads, start=1):
        v = b2 * v + (1 - b2) * g**2
        v_max = max(v_max, v)
        v_hat_max = max(v_hat_max, v / (1 - b2**t))
        v_hat = v_max / (1 - b2**t) if max_of == "raw" else v_hat_max
        expected.append(g / np.sqrt(v_hat))
    tx = optaxtra.scale_by_adam(
        0.0, b2, 0.0, second_moment=optaxtra.amsgrad_second_moment(max_of=max_of)
    )
    state = tx.init(jnp.zeros(1))
    actual = []
    for g in grads:
        update, state = tx.update(jnp.full(1, g, jnp.float32), state)
        actual.append(float(update[0]))
    np.testing.assert_allclose(actual, expected, rtol=1e-6)


def test_amsgrad_max_of_raw_and_bias_corrected_differ():
    grads = jnp.array([[10.0], [1.0], [1.0], [1.0]])
    updates = {}
    for max_of in ("raw", "bias_corrected"):
        estimator = optaxtra.amsgrad_second_moment(max_of=max_of)
        tx = optaxtra.scale_by_adam(0.0, 0.9, 0.0, second_moment=estimator)
        state = tx.init(jnp.zeros(1))
        updates[max_of] = []
        for g in grads:
            update, state = tx.update(g, state)
            updates[max_of].append(float(update[0]))
    # Equal on the first step; from the second on, 1/sqrt(10/0.19) = 0.138 vs 1/sqrt(100) = 0.1.
    assert updates["raw"][0] == pytest.approx(updates["bias_corrected"][0], rel=1e-6)
    # Measured 5.1e-8 relative off the exact value; a handful of float32 roundings allow ~3e-7.
    assert updates["raw"][1] == pytest.approx(1 / np.sqrt(10 / 0.19), rel=5e-7)
    assert updates["bias_corrected"][1] == pytest.approx(0.1, rel=1e-6)


# --- RAdam: optax's rho_t cancels in float32 -----------------------------------------------


def optax_rho_float32(steps: int, b2: float) -> np.ndarray:
    """optax 0.2.8's ``rho_t`` for ``t = 1..steps``, transcribed in numpy float32.

    optax computes ``ro_inf - 2 * count * b2**count / (1 - b2**count)`` in
    float32, ``ro_inf`` being a Python float. ``b2**count`` is taken from
    XLA's float32 ``pow``, which optax uses: numpy's float32 ``power`` differs
    from it in the last bit for a fifth of these ``t``, and the cancellation
    this test is about turns one ulp of ``b2^t`` into about 0.02 of ``rho_5``.
    """
    count = np.arange(1, steps + 1, dtype=np.float32)
    b2t = np.asarray(jnp.power(jnp.float32(b2), jnp.asarray(count)))
    ro_inf = np.float32(2.0 / (1.0 - b2) - 1.0)
    return ro_inf - (np.float32(2) * count) * b2t / (np.float32(1) - b2t)


def optax_r_float32(steps: int, b2: float) -> np.ndarray:
    """optax 0.2.8's ``r_t`` from ``optax_rho_float32``, in float32 as optax computes it."""
    ro = optax_rho_float32(steps, b2)
    ro_inf = 2.0 / (1.0 - b2) - 1.0
    numerator = (ro - np.float32(4)) * (ro - np.float32(2)) * np.float32(ro_inf)
    denominator = np.float32((ro_inf - 4.0) * (ro_inf - 2.0)) * ro
    with np.errstate(invalid="ignore"):  # rho_t < 4 on the first steps, where optax discards r
        return np.sqrt(numerator / denominator)


def exact_rho(t: np.ndarray, b2: float) -> np.ndarray:
    """``rho_t`` in float64, with ``b2^t`` as ``exp(t log b2)`` to avoid any cancellation."""
    t = np.asarray(t, np.float64)
    log_b2 = np.log(b2)
    return (2 / (1 - b2) - 1) - 2 * t * np.exp(t * log_b2) / -np.expm1(t * log_b2)


def exact_r(rho: np.ndarray, b2: float) -> np.ndarray:
    rho_inf = 2 / (1 - b2) - 1
    return np.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))


def _random_grads(steps: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = {name: value.shape for name, value in initial_params().items()}
    return {
        name: rng.normal(size=(steps, *shape)).astype(np.float32) for name, shape in shapes.items()
    }


@pytest.mark.parametrize("b2", [0.99, 0.999])
def test_optax_radam_rectification_is_the_naive_float32_formula(b2):
    """optax's ``r_t``, read off its updates, is the float32 transcription of its formula.

    ``scale_by_radam`` returns ``(r * m_hat) / d`` and ``scale_by_adam``
    ``m_hat / d`` from the same moments, so their ratio is optax's ``r_t`` to
    within two roundings (rtol 3e-7). The ``r_t`` of the exact ``rho_t``
    differs by far more early on (0.57% low at step 6 for ``b2 = 0.999``,
    7e-5 for 0.99), so the comparison tells the two apart.
    """
    steps, switch = 300, 6
    grads = _random_grads(steps)
    with jax.numpy_dtype_promotion("standard"):
        radam_updates, _ = run_updates(optax.scale_by_radam(B1, b2), grads)
        adam_updates, _ = run_updates(optax.scale_by_adam(B1, b2), grads)
    expected = optax_r_float32(steps, b2)
    for name in NAMES:
        ratio = radam_updates[name] / adam_updates[name]
        ratio = ratio.reshape(steps, -1)[switch - 1:]
        expected_ratio = expected[switch - 1:, None] * np.ones_like(ratio)
        np.testing.assert_allclose(ratio, expected_ratio, rtol=3e-7)
    exact = exact_r(exact_rho(np.arange(switch, steps + 1), b2), b2)
    assert abs(expected[switch - 1] / exact[0] - 1) > (5e-3 if b2 == 0.999 else 5e-5)


@pytest.mark.parametrize("b2", [0.9, 0.99, 0.999, 0.9999])
def test_radam_rho_matches_float64_for_ten_thousand_steps(b2):
    t = np.arange(1, 10_001)
    rho, rho_inf = optaxtra.radam_rho(jnp.asarray(t, jnp.int32), b2)
    np.testing.assert_allclose(np.asarray(rho, np.float64), exact_rho(t, b2), rtol=1e-6)
    np.testing.assert_allclose(float(rho_inf), 2 / (1 - b2) - 1, rtol=1e-6)
    # The direct float32 formula (optax's) does not meet this tolerance.
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(optax_rho_float32(10_000, b2), exact_rho(t, b2), rtol=1e-6)


@pytest.mark.parametrize(
    ("step", "optax_value", "exact_value"), [(5, 4.961, 4.996), (6, 5.975, 5.994)]
)
def test_optax_rho_values_quoted_in_the_docs(step, optax_value, exact_value):
    assert optax_rho_float32(step, 0.999)[-1] == pytest.approx(optax_value, abs=5e-4)
    assert float(optaxtra.radam_rho(step, 0.999)[0]) == pytest.approx(exact_value, abs=5e-4)


@pytest.mark.parametrize("b2", [B2_ALT, B2])
def test_radam_at_optax_conventions_differs_from_optax_only_by_r(b2):
    """With optax's ``>= 5`` and eps after the bias correction, only ``r_t`` differs.

    Both see the same gradients (open loop). Until the switch both return
    ``m_hat``; after it, ours rescaled by ``r_optax / r_ours`` is optax's
    update to float32 rounding (rtol 1e-6: a handful of roundings apart).
    """
    steps = 300
    grads = _random_grads(steps, seed=1)
    ours = optaxtra.scale_by_radam_rectifier(
        B1, b2, threshold=5.0, threshold_comparison=">=", eps_placement="corrected"
    )
    our_updates, our_states = run_updates(ours, grads)
    with jax.numpy_dtype_promotion("standard"):
        their_updates, _ = run_updates(optax.scale_by_radam(B1, b2), grads)
    r_ours = np.asarray(our_states.rectification)
    r_theirs = optax_r_float32(steps, b2)
    tractable = optax_rho_float32(steps, b2) >= 5
    np.testing.assert_array_equal(tractable, r_ours > 0)  # the same switch step, 6
    scale = np.where(tractable, r_theirs / np.where(tractable, r_ours, 1), 1).astype(np.float32)
    for name in NAMES:
        shape = (steps,) + (1,) * (our_updates[name].ndim - 1)
        np.testing.assert_allclose(
            our_updates[name] * scale.reshape(shape), their_updates[name], rtol=1e-6, atol=1e-7
        )
    # Without the rescaling they do not meet that tolerance.
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(
            our_updates["shift"], their_updates["shift"], rtol=1e-6, atol=1e-7
        )


def test_optax_radam_at_b2_0_9999_switches_on_from_step_2():
    """Where the cancellation is worst, optax's switch itself is wrong.

    At ``b2 = 0.9999`` optax's float32 ``rho_t`` for ``t = 1..6`` is 4.32,
    6.32, 4.35, 7.34, 7.55, 8.36 (exactly: 1.0, 2.0, ..., 6.0): it takes
    the rectified adaptive step at steps 2, 4, 5, 6, ..., with ``r_t`` from a
    meaningless ``rho_t``. optaxtra's ``rho_t`` passes 5 at step 6.
    """
    steps, b2 = 8, 0.9999
    grads = _random_grads(steps, seed=2)
    ours = optaxtra.scale_by_radam_rectifier(
        0.9, b2, threshold_comparison=">=", eps_placement="corrected"
    )
    our_updates, our_states = run_updates(ours, grads)
    with jax.numpy_dtype_promotion("standard"):
        their_updates, _ = run_updates(optax.scale_by_radam(0.9, b2), grads)
    m_hat = {
        name: np.asarray(our_states.mu[name]) / (1 - 0.9 ** np.arange(1, steps + 1)).reshape(
            (steps,) + (1,) * (grads[name].ndim - 1)
        )
        for name in NAMES
    }
    def adaptive_steps(updates):
        return [
            t for t in range(1, steps + 1)
            if not np.allclose(updates["shift"][t - 1], m_hat["shift"][t - 1], rtol=1e-5)
        ]

    assert adaptive_steps(our_updates) == [6, 7, 8]
    assert adaptive_steps(their_updates) == [2, 4, 5, 6, 7, 8]
