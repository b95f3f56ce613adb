"""Switching: the generic switch against running both optimizers by hand; SWATS against
the paper's formulas and torch-optimizer's SWATS."""


import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
import torch_optimizer

import optaxtra
from tests import _oracles

SCALES = np.array([1.0, 2.0, 0.5, 3.0], np.float32)
TARGET = np.array([1.0, -1.0, 2.0, 0.5], np.float32)
START = np.array([0.3, 0.2, -0.4, 1.0], np.float32)


def _grad(w):
    return SCALES * (w - TARGET)


def _run(tx, steps, grad=_grad, params=START):
    """Jitted: params and optimizer states after every update (one compiled program)."""

    def step(carry, _):
        params, state = carry
        updates, state = tx.update(grad(params), state, params)
        params = optax.apply_updates(params, updates)
        return (params, state), (params, state)

    run = jax.jit(lambda p: jax.lax.scan(step, (p, tx.init(p)), None, steps))
    (_, state), history = run(jnp.asarray(params))
    return state, history


def test_switch_runs_first_then_second_with_the_hand_off():
    adam, sgd = optaxtra.adam(0.05), optaxtra.sgd(0.02, momentum=0.9)
    tx = optaxtra.switch(adam, sgd, 3, hand_off=optaxtra.carry_first_moment(scale=10.0))
    state, (trajectory, states) = _run(tx, 7)

    params, adam_state = jnp.asarray(START), adam.init(jnp.asarray(START))
    expected = []
    for _ in range(3):
        updates, adam_state = adam.update(_grad(params), adam_state, params)
        params = optax.apply_updates(params, updates)
        expected.append(params)
    sgd_state = sgd.init(params)
    momentum = 10.0 * adam_state[1].mu  # chain(identity, scale_by_adam, ...)
    sgd_state = (sgd_state[0], sgd_state[1]._replace(trace=momentum), sgd_state[2])
    for _ in range(4):
        updates, sgd_state = sgd.update(_grad(params), sgd_state, params)
        params = optax.apply_updates(params, updates)
        expected.append(params)
    np.testing.assert_allclose(np.asarray(trajectory), np.array(expected), rtol=1e-6, atol=1e-7)

    np.testing.assert_array_equal(states.switched_at, [-1, -1, 3, 3, 3, 3, 3])
    stats = optaxtra.diagnostics(state)
    assert float(stats["switch/switched"]) == 1.0 and int(stats["switch/switched_at"]) == 3
    # The first optimizer's state is frozen at the switch.
    assert int(state.first[1].count) == 3 and int(state.second[2].count) == 4


def test_switch_compiles_once_and_branches_with_cond():
    tx = optaxtra.switch(optaxtra.adam(0.05), optaxtra.sgd(0.02), 2)
    traces = []

    @jax.jit
    def step(params, state):
        traces.append(None)
        updates, state = tx.update(jnp.asarray(SCALES) * params, state, params)
        return optax.apply_updates(params, updates), state

    params = jnp.asarray(START)
    state = tx.init(params)
    switched = []
    for _ in range(5):
        params, state = step(params, state)
        switched.append(float(optaxtra.diagnostics(state)["switch/switched"]))
    assert len(traces) == 1
    assert switched == [0.0, 1.0, 1.0, 1.0, 1.0]
    assert "cond" in str(jax.make_jaxpr(tx.update)(params, state, params))


def test_switch_at_step_zero_hands_off_at_init():
    tx = optaxtra.switch(optaxtra.adam(0.1), optaxtra.sgd(0.1, momentum=0.5), 0,
                         hand_off=optaxtra.carry_first_moment())
    state = tx.init(jnp.zeros(2))
    assert int(state.switched_at) == 0
    updates, state = tx.update(jnp.ones(2), state, jnp.zeros(2))
    np.testing.assert_allclose(updates, [-0.1, -0.1])  # plain SGD: the moved moment was zero


def test_hand_off_must_keep_the_second_state_shape():
    def bad(first_state, second_state):
        return (second_state[0], second_state[1]._replace(trace=jnp.zeros(3)), second_state[2])

    tx = optaxtra.switch(optaxtra.adam(), optaxtra.sgd(0.1, momentum=0.9), 2, hand_off=bad)
    with pytest.raises(TypeError, match="shape and dtype"):
        tx.init(jnp.zeros(2))
    no_momentum = optaxtra.switch(optaxtra.adam(), optaxtra.sgd(0.1), 2,
                                  hand_off=optaxtra.carry_first_moment())
    with pytest.raises(ValueError, match="'trace'"):
        no_momentum.init(jnp.zeros(2))


def test_switch_bad_arguments():
    with pytest.raises(ValueError, match="switch_step"):
        optaxtra.switch(optaxtra.adam(), optaxtra.sgd(0.1), -1)
    with pytest.raises(TypeError, match="second"):
        optaxtra.switch(optaxtra.adam(), "sgd", 3)
    with pytest.raises(ValueError, match="switch_atol"):
        optaxtra.swats(switch_atol=-1e-9)


def _torch_swats(steps, grad, eps, lr=0.05):
    param = torch.nn.Parameter(torch.tensor(START if grad is _grad else START[:3]))
    optimizer = torch_optimizer.SWATS([param], lr=lr, betas=(0.9, 0.999), eps=eps)
    weights, estimates, phases = [], [], []
    for step in range(1, steps + 1):
        optimizer.zero_grad()
        param.grad = torch.tensor(grad(param.detach().numpy()))
        optimizer.step()
        weights.append(param.detach().numpy().copy())
        estimates.append(float(optimizer.state[param]["exp_avg2"][0]) / (1 - 0.999**step))
        phases.append(optimizer.param_groups[0]["phase"])
    return np.array(weights), np.array(estimates), phases, optimizer.param_groups[0]["lr"]


def test_swats_adam_phase_matches_torch_optimizer():
    # torch-optimizer's conventions: eps 1e-3 added to sqrt(v) before the bias
    # correction, allclose(rtol=1e-6, atol=1e-8) as the criterion.
    weights, estimates, phases, _ = _torch_swats(30, _grad, eps=1e-3)
    assert set(phases) == {"ADAM"}
    tx = optaxtra.swats(0.05, eps=1e-3, switch_atol=1e-8, switch_rtol=1e-6)
    state, (trajectory, states) = _run(tx, 30)
    # Rounding only (float32 both; PyTorch folds the bias corrections into one
    # float64 step size): within 2 float32 ulps of the params' scale.
    np.testing.assert_allclose(np.asarray(trajectory), weights, rtol=1e-6, atol=1.5e-7)
    estimate = np.asarray(states[1].first.sgd_learning_rate)
    np.testing.assert_allclose(estimate, estimates, rtol=1e-6)
    assert float(optaxtra.diagnostics(state)["switch/switched"]) == 0.0


def _constant_grad(w):
    del w
    return np.array([1.0, -2.0, 0.5], np.float32)


def test_swats_switch_matches_torch_optimizer_then_differs_as_documented():
    lr, b1, steps = 0.05, 0.9, 7
    weights, _, phases, torch_rate = _torch_swats(steps, _constant_grad, eps=0.0, lr=lr)
    tx = optaxtra.swats(lr, b1, eps=0.0, switch_atol=1e-8, switch_rtol=1e-6)
    state, (trajectory, states) = _run(tx, steps, grad=lambda p: jnp.asarray(_constant_grad(p)),
                                       params=START[:3])
    switched = np.asarray(states[1].switched_at)
    # Both settle on the second Adam step: Lambda = gamma = lr * n / sum|g| for a constant g.
    assert phases == ["ADAM"] + ["SGD"] * 6 and list(switched) == [-1] + [2] * 6
    rate = float(state[1].second.learning_rate)
    assert rate == pytest.approx(torch_rate, rel=1e-6) and rate == pytest.approx(lr * 3 / 3.5, rel=1e-6)
    np.testing.assert_allclose(np.asarray(trajectory)[:4], weights[:4], rtol=1e-6, atol=1e-7)

    g = _constant_grad(None).astype(np.float64)
    paper, buffer = [np.asarray(trajectory[1], np.float64)], np.zeros(3)
    aliased, torch_buffer = [weights[1].astype(np.float64)], None
    for _ in range(steps - 2):
        buffer = b1 * buffer + g  # paper: v = b1 v + g; p -= (1 - b1) Lambda v
        paper.append(paper[-1] - (1 - b1) * rate * buffer)
        if torch_buffer is None:  # torch-optimizer: first SGD step uses a fresh copy of g
            torch_buffer, step = g.copy(), (1 - b1) * g
        else:  # then grad aliases the buffer, which mul_(1 - b1) rescales in place
            torch_buffer = (1 - b1) * (b1 * torch_buffer + g)
            step = torch_buffer
        aliased.append(aliased[-1] - torch_rate * step)
    np.testing.assert_allclose(np.asarray(trajectory)[1:], np.array(paper), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(weights[1:], np.array(aliased), rtol=1e-6, atol=1e-7)
    assert not np.allclose(np.asarray(trajectory)[4:], weights[4:], rtol=1e-3)


def test_swats_defaults_follow_the_paper():
    # Adam lr 1e-3, eps 1e-9 and |Lambda - gamma| < 1e-9, with a gradient whose
    # projection is constant: the switch comes at step 2 at Lambda = lr n / sum|g|.
    tx = optaxtra.swats()
    state, (trajectory, states) = _run(tx, 4, grad=lambda p: jnp.array([1.0, -2.0, 0.5, 4.0]))
    stats = optaxtra.diagnostics(state)
    assert float(stats["switch/switched"]) == 1.0 and int(stats["switch/switched_at"]) == 2
    assert float(stats["swats/sgd_learning_rate"]) == pytest.approx(1e-3 * 4 / 7.5, rel=1e-6)
    assert float(stats["swats/projected_learning_rate"]) == pytest.approx(1e-3 * 4 / 7.5, rel=1e-6)
    np.testing.assert_array_equal(np.asarray(states[1].second.count), [0, 2, 3, 4])


def _paper_swats_adam_phase(grads, lr, b1=0.9, b2=0.999, eps=1e-3):
    """Algorithm 1's Adam phase in float64 (eps added to sqrt(v) before the bias correction).

    Per step: (lambda_k, Lambda_k, gamma_k), where a step with p.g = 0 updates none of the
    three (Lambda and gamma keep their last values), but k still advances.
    """
    m = v = np.zeros_like(np.asarray(grads[0], np.float64))
    ema, estimate, gamma, out = 0.0, 0.0, 0.0, []
    for k, g in enumerate(np.asarray(grads, np.float64), start=1):
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        p = -lr * np.sqrt(1 - b2**k) / (1 - b1**k) * m / (np.sqrt(v) + eps)
        if p @ g != 0:
            gamma = (p @ p) / -(p @ g)
            ema = b2 * ema + (1 - b2) * gamma
            estimate = ema / (1 - b2**k)
        out.append((ema, estimate, gamma))
    return np.array(out)


SWATS_GRADS = np.array([[1.0, -2.0, 0.5], [0.0, 0.0, 0.0], [0.5, 1.0, -1.0], [2.0, 1.0, 1.0]], np.float32)


def _run_swats_on(tx, grads):
    """Jitted: ``tx`` fed the fixed gradients ``grads`` (one per step); the states after each."""

    def step(carry, g):
        params, state = carry
        updates, state = tx.update(g, state, params)
        params = optax.apply_updates(params, updates)
        return (params, state), (updates, state)

    params = jnp.zeros(grads.shape[1])
    _, (updates, states) = jax.jit(lambda g: jax.lax.scan(step, (params, tx.init(params)), g))(jnp.asarray(grads))
    return updates, states[1]


@pytest.mark.parametrize("plain", [False, True], ids=["fused", "plain"])
def test_swats_skips_the_projection_on_a_zero_gradient(plain):
    # Step 2's gradient is zero, so p.g = 0: lambda, Lambda and gamma keep their step-1
    # values (Lambda is not re-corrected with 1 - b2**2), as in Algorithm 1 and
    # torch-optimizer (``if pg != 0``); step 3 then corrects with 1 - b2**3.
    expected = _paper_swats_adam_phase(SWATS_GRADS, lr=0.05)
    assert expected[1, 1] == expected[0, 1] and not np.isclose(expected[0, 0] / (1 - 0.999**2), expected[0, 1])
    make = _oracles.swats if plain else optaxtra.swats
    _, state = _run_swats_on(make(0.05, eps=1e-3, switch_atol=0.0), SWATS_GRADS)  # never switches here
    np.testing.assert_array_equal(state.switched_at, [-1] * 4)
    actual = np.stack([state.first.ema, state.first.sgd_learning_rate, state.first.projected_learning_rate], 1)
    # float32 against float64: measured at most 3.7e-7 relative; a wrong step-2 Lambda is off by 50%.
    np.testing.assert_allclose(actual, expected, rtol=2e-6)


@pytest.mark.parametrize("plain", [False, True], ids=["fused", "plain"])
def test_swats_hands_sgd_the_bias_corrected_estimate_not_the_last_projection(plain):
    # A loose criterion switches at step 2 (the first allowed), where Lambda_2 = (b2 gamma_1 +
    # gamma_2) / (1 + b2) is far from gamma_2 for this non-constant gradient: SGD gets Lambda_2,
    # and its first step is -(1 - b1) Lambda_2 g_3 (the momentum starts at 0).
    grads = SWATS_GRADS[[0, 2, 3]]
    expected = _paper_swats_adam_phase(grads, lr=0.05)
    rate, gamma = expected[1, 1], expected[1, 2]
    assert abs(rate - gamma) > 0.05 * rate
    make = _oracles.swats if plain else optaxtra.swats
    updates, state = _run_swats_on(make(0.05, eps=1e-3, switch_atol=1.0), grads)
    np.testing.assert_array_equal(state.switched_at, [-1, 2, 2])
    # float32 against float64: measured at most 3.8e-8 relative; gamma_2 is 39% off.
    np.testing.assert_allclose(state.second.learning_rate[1:], [rate, rate], rtol=2e-7)
    np.testing.assert_allclose(updates[2], -(1 - 0.9) * rate * grads[2], rtol=2e-7)


def test_swats_criterion_by_hand():
    """The projection's criterion on a hand-made step: b2 = 1/2, lambda_1 = 7/8, then p.g = -1 and
    p.p = 1, so gamma_2 = 1, lambda_2 = (7/8 + 1) / 2 = 15/16 and Lambda_2 = (15/16) / (3/4) = 5/4."""
    from optaxtra.switching._swats_phases import SwatsAdamState, projection

    zero = jnp.zeros([], jnp.float32)
    after_one = SwatsAdamState(jnp.asarray(1, jnp.int32), (), jnp.float32(0.875), zero, zero, jnp.bool_(False))
    state = projection(0.5, 0.0, 0.0)(jnp.float32(-1.0), jnp.float32(1.0), after_one)
    assert (int(state.count), float(state.projected_learning_rate), float(state.ema)) == (2, 1.0, 0.9375)
    assert float(state.sgd_learning_rate) == pytest.approx(1.25, rel=1e-6)  # 1 - b2**2 in float32
    gap = float(state.sgd_learning_rate) - 1.0
    below = float(np.nextafter(np.float32(gap), np.float32(0)))

    def settled(atol, rtol, dots=(-1.0, 1.0), before=after_one):
        return bool(projection(0.5, atol, rtol)(*map(jnp.float32, dots), before).settled)

    # Inclusive: |Lambda - gamma| <= atol + rtol |gamma|.
    assert not settled(0.0, 0.0) and settled(gap, 0.0) and not settled(below, 0.0)
    # rtol scales |gamma| = 1, not |Lambda| = 5/4: 0.21 |Lambda| would cover the gap of 1/4.
    assert settled(0.0, gap) and not settled(0.0, below) and not settled(0.0, 0.21)
    # Never on the first step (Lambda_1 = gamma_1 always), nor at a negative estimate.
    assert not settled(1e3, 0.0, before=after_one._replace(count=jnp.asarray(0, jnp.int32), ema=zero))
    assert not settled(1e3, 0.0, dots=(1.0, 1.0), before=after_one._replace(ema=jnp.float32(-0.875)))


def test_carry_first_moment_refuses_two_candidate_states():
    # Two Adams in the first optimizer (two ``mu`` fields) or two momentum SGDs in the second
    # (two ``trace`` fields): which one to carry is ambiguous, so neither is picked silently.
    params = jnp.zeros(2)
    hand_off = optaxtra.carry_first_moment()
    two_adams = optax.chain(optaxtra.adam(0.1), optaxtra.adam(0.1)).init(params)
    two_sgds = optax.chain(optaxtra.sgd(0.1, momentum=0.9), optaxtra.sgd(0.1, momentum=0.5)).init(params)
    with pytest.raises(ValueError, match="exactly one state with a 'mu' field in the first .* found 2"):
        hand_off(two_adams, optaxtra.sgd(0.1, momentum=0.9).init(params))
    with pytest.raises(ValueError, match="exactly one state with a 'trace' field in the second .* found 2"):
        hand_off(optaxtra.adam(0.1).init(params), two_sgds)


def test_hand_off_must_keep_the_second_state_dtype():
    def to_bfloat16(first_state, second_state):
        trace = second_state[1].trace.astype(jnp.bfloat16)
        return (second_state[0], second_state[1]._replace(trace=trace), second_state[2])

    tx = optaxtra.switch(optaxtra.adam(), optaxtra.sgd(0.1, momentum=0.9), 2, hand_off=to_bfloat16)
    with pytest.raises(TypeError, match=r"shape and dtype: expected float32\[2\], got bfloat16\[2\]"):
        tx.init(jnp.zeros(2))
