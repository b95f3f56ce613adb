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
