"""Averaging: EMA against the Adam paper and PyTorch, SWA against AveragedModel + SWALR."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from flax.training.train_state import TrainState
from torch.optim.swa_utils import SWALR, AveragedModel, get_ema_multi_avg_fn

import optaxtra

SCALES = np.array([1.0, 3.0, 0.5], np.float32)
TARGET = np.array([1.0, -2.0, 0.5], np.float32)
START = np.array([0.5, 0.5, -1.0], np.float32)


def _grad(w):
    return SCALES * (w - TARGET)


def _run(tx, steps, params=START):
    """Jitted training on the quadratic; params and states after every update."""

    def step(carry, _):
        params, state = carry
        updates, state = tx.update(jnp.asarray(SCALES) * (params - jnp.asarray(TARGET)), state, params)
        params = optax.apply_updates(params, updates)
        return (params, state), (params, state)

    run = jax.jit(lambda p: jax.lax.scan(step, (p, tx.init(p)), None, steps))
    (params, state), history = run(jnp.asarray(params))
    return params, state, history


def test_ema_debiased_is_adam_papers_temporal_average():
    decay, steps = 0.75, 12
    _, state, (trajectory, states) = _run(optaxtra.ema_averaging(optaxtra.sgd(0.1), decay), steps)
    biased, expected = np.zeros(3), []
    for t, theta in enumerate(np.asarray(trajectory, np.float64), start=1):
        biased = decay * biased + (1 - decay) * theta
        expected.append(biased / (1 - decay**t))
    np.testing.assert_allclose(np.asarray(states.average), np.array(expected), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(states.average[0], trajectory[0])  # hat theta_1 = theta_1
    assert float(optaxtra.diagnostics(state)["ema/decay"]) == decay
    assert int(optaxtra.diagnostics(state)["ema/count"]) == steps


def test_ema_scheduled_decay_debiases_with_the_product_of_decays():
    schedule = optaxtra.ema_warmup_decay(0.9, offset=3)
    _, _, (trajectory, states) = _run(optaxtra.ema_averaging(optaxtra.sgd(0.1), schedule), 10)
    biased, product, expected = np.zeros(3), 1.0, []
    for t, theta in enumerate(np.asarray(trajectory, np.float64)):
        beta = min(0.9, (1 + t) / (3 + t))  # t is the step count, 0 on the first update
        biased, product = beta * biased + (1 - beta) * theta, product * beta
        expected.append(biased / (1 - product))
    np.testing.assert_allclose(np.asarray(states.average), np.array(expected), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(states.decay), [min(0.9, (1 + t) / (3 + t)) for t in range(10)])


def _torch_model():
    model = torch.nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor(START)[None])
    return model


def _torch_step(model, optimizer):
    optimizer.zero_grad()
    model.weight.grad = torch.tensor(_grad(model.weight.detach().numpy()[0]))[None]
    optimizer.step()


def test_ema_without_debias_matches_torch_averaged_model():
    model = _torch_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    ema_model = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.75))
    ema_model.update_parameters(model)  # start the average at the initial weights
    expected = []
    for _ in range(15):
        _torch_step(model, optimizer)
        ema_model.update_parameters(model)
        expected.append(ema_model.module.weight.detach().numpy()[0].copy())

    tx = optaxtra.ema_averaging(optaxtra.sgd(0.1, momentum=0.9), 0.75, debias=False)
    _, _, (_, states) = _run(tx, 15)
    np.testing.assert_allclose(np.asarray(states.average), np.array(expected), rtol=1e-6, atol=1e-7)


def test_swa_matches_torch_averaged_model_and_swalr():
    epochs, swa_start, swa_lr, anneal_epochs = 30, 14, 0.02, 4
    model = _torch_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    swa_model = AveragedModel(model)
    swa_scheduler = SWALR(optimizer, swa_lr=swa_lr, anneal_epochs=anneal_epochs, anneal_strategy="cos")
    rates, averages = [], []
    for epoch in range(epochs):  # one update per epoch
        rates.append(optimizer.param_groups[0]["lr"])
        _torch_step(model, optimizer)
        if epoch > swa_start:
            swa_model.update_parameters(model)
            swa_scheduler.step()
        else:
            scheduler.step()
        averages.append(swa_model.module.weight.detach().numpy()[0].copy())

    def cosine(count):  # CosineAnnealingLR's closed form
        return 0.05 * (1 + jnp.cos(jnp.pi * jnp.asarray(count, jnp.float32) / epochs))

    schedule = optaxtra.swa_learning_rate(
        cosine, swa_lr, start_step=swa_start + 1,
        anneal_steps=anneal_epochs, anneal_strategy="cos",
    )
    tx = optaxtra.swa_averaging(optaxtra.sgd(schedule), start_step=swa_start + 2)
    params, state, (trajectory, states) = _run(tx, epochs)
    # The base rate is float32 here, float64 (recursive cosine) in PyTorch.
    np.testing.assert_allclose(np.asarray(states.inner[-1].learning_rate), rates, rtol=1e-6)
    averaged = np.asarray(states.average)[swa_start + 1 :]
    np.testing.assert_allclose(averaged, np.array(averages)[swa_start + 1 :], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(params, model.weight.detach().numpy()[0], rtol=1e-6, atol=1e-7)
    assert int(state.n_averaged) == int(swa_model.n_averaged) == epochs - swa_start - 1
    np.testing.assert_array_equal(np.asarray(states.averaged), np.arange(epochs) > swa_start)
    assert float(optaxtra.diagnostics(state)["swa/n_averaged"]) == epochs - swa_start - 1


def test_swa_with_cyclic_rate_averages_the_end_of_each_cycle():
    start, cycle = 4, 3
    schedule = optaxtra.swa_cyclic_learning_rate(0.2, 0.1, 0.01, start_step=start, cycle_steps=cycle)
    tx = optaxtra.swa_averaging(optaxtra.sgd(schedule), start_step=start, period=cycle)
    _, state, (trajectory, _) = _run(tx, 13)
    # Averaged: the weights after updates 4 (the SWA phase's start, as the
    # paper's Algorithm 1 averages the pretrained weights), 7, 10 and 13.
    picked = np.asarray(trajectory, np.float64)[[3, 6, 9, 12]]
    np.testing.assert_allclose(optaxtra.averaged_params(state), picked.mean(axis=0), rtol=1e-6)
    assert int(state.n_averaged) == 4
    rates = [float(schedule(t)) for t in (6, 9, 12)]  # the last update of each cycle
    np.testing.assert_allclose(rates, [0.01] * 3, rtol=1e-6)


def test_swa_from_step_zero_includes_the_initial_params():
    tx = optaxtra.swa_averaging(optaxtra.sgd(0.1), start_step=0, period=2)
    _, state, (trajectory, _) = _run(tx, 4)
    expected = np.mean([START, trajectory[1], trajectory[3]], axis=0)
    np.testing.assert_allclose(optaxtra.averaged_params(state), expected, rtol=1e-6)


def test_averaging_around_ranger_reads_fast_or_slow_weights():
    steps, decay = 9, 0.5
    inner = optaxtra.ranger(0.1, sync_period=3)
    _, state, (trajectory, states) = _run(optaxtra.ema_averaging(inner, decay), steps)
    _, slow_state, (_, slow_states) = _run(
        optaxtra.ema_averaging(inner, decay, average_slow_weights=True), steps
    )
    slow = np.asarray(slow_states.inner.slow, np.float64)
    for weights, read in [(np.asarray(trajectory, np.float64), state), (slow, slow_state)]:
        biased = np.zeros(3)
        for t, theta in enumerate(weights, start=1):
            biased = decay * biased + (1 - decay) * theta
        np.testing.assert_allclose(optaxtra.averaged_params(read), biased / (1 - decay**steps), rtol=1e-6)
    # The slow weights only move at syncs (steps 3, 6, 9): the two averages differ.
    assert not np.allclose(optaxtra.averaged_params(state), optaxtra.averaged_params(slow_state))
    np.testing.assert_array_equal(optaxtra.slow_params(slow_state), slow[-1])


def test_reader_finds_averaging_inside_lookahead_and_chains():
    inner = optaxtra.swa_averaging(optaxtra.adam(0.1), start_step=2)
    wrapped = optax.chain(optax.clip_by_global_norm(10.0), optaxtra.lookahead_state(inner, sync_period=2))
    _, state, _ = _run(wrapped, 4)
    assert int(state[1].inner.n_averaged) == 3
    np.testing.assert_array_equal(optaxtra.averaged_params(state), state[1].inner.average)
    assert jax.jit(optaxtra.averaged_params)(state).shape == (3,)


class _Linear(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(1)(x)


def test_flax_train_state_keeps_plain_params():
    model = _Linear()
    x = jnp.array([[1.0, 2.0], [0.5, -1.0], [2.0, 0.0]])
    y = jnp.array([[1.0], [0.0], [2.0]])
    params = model.init(jax.random.key(0), x)["params"]
    tx = optaxtra.ema_averaging(optaxtra.adam(0.05), 0.9)
    state = TrainState.create(apply_fn=model.apply, params=params, tx=tx)
    plain = TrainState.create(apply_fn=model.apply, params=params, tx=optaxtra.adam(0.05))

    @jax.jit
    def train_step(state):
        loss = lambda p: jnp.mean((state.apply_fn({"params": p}, x) - y) ** 2)
        return state.apply_gradients(grads=jax.grad(loss)(state.params))

    for _ in range(5):
        state, plain = train_step(state), train_step(plain)
    jax.tree.map(np.testing.assert_array_equal, state.params, plain.params)
    averaged = optaxtra.averaged_params(state)
    jax.tree.map(np.testing.assert_array_equal, averaged, optaxtra.averaged_params(state.opt_state))
    assert jax.tree.structure(averaged) == jax.tree.structure(state.params)
    assert state.apply_fn({"params": averaged}, x).shape == (3, 1)


def test_half_precision_average_is_kept_in_float32():
    params = jnp.ones(2, jnp.bfloat16)
    tx = optaxtra.ema_averaging(optax.sgd(0.05), 0.999, debias=False)
    state = tx.init(params)
    for _ in range(3):
        updates, state = tx.update(jnp.ones(2, jnp.bfloat16), state, params)
        params = optax.apply_updates(params, updates)
    average = optaxtra.averaged_params(state)
    assert average.dtype == jnp.float32 and float(average[0]) < 1.0  # in bfloat16, 1 - 5e-5 rounds to 1


@pytest.mark.parametrize(
    "build, error, message",
    [
        (lambda: optaxtra.swa_averaging(optax.sgd(0.1), start_step=-1), ValueError, "start_step"),
        (lambda: optaxtra.swa_averaging(optax.sgd(0.1), 5, period=0), ValueError, "period"),
        (lambda: optaxtra.ema_averaging(optax.sgd(0.1), decay=1.0), ValueError, "decay"),
        (lambda: optaxtra.ema_warmup_decay(0.99, offset=0), ValueError, "offset"),
        (lambda: optaxtra.ema_averaging(optaxtra.adam(), average_slow_weights=True).init(jnp.zeros(2)),
         ValueError, "LookaheadState"),
        (lambda: optaxtra.averaged_params(optaxtra.adam().init(jnp.zeros(2))), ValueError, "averaged"),
        (lambda: optaxtra.ema_averaging("adam"), TypeError, "inner"),
    ],
)
def test_bad_arguments(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_update_without_params_raises():
    tx = optaxtra.swa_averaging(optax.sgd(0.1), 1)
    with pytest.raises(ValueError, match="needs the params"):
        tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))


def test_defaults_are_the_documented_decays():
    # ema_warmup_decay(): min(0.9999, (1 + t) / (10 + t)); ema_averaging: decay 0.999.
    warmup = optaxtra.ema_warmup_decay()
    assert float(warmup(0)) == np.float32(0.1)
    assert float(warmup(10**6)) == np.float32(0.9999)  # (1 + t) / (10 + t) = 0.999991 there
    tx = optaxtra.ema_averaging(optax.sgd(0.1))
    _, state = tx.update(jnp.ones(2), tx.init(jnp.zeros(2)), jnp.zeros(2))
    assert float(optaxtra.diagnostics(state)["ema/decay"]) == np.float32(0.999)


def test_swa_copies_the_first_averaged_weights_exactly_as_torch_averaged_model():
    # Params 1 -> 0 -> 1e-8 (SGD with rate 1); the average starts at the initial 1, and
    # 1 + (1e-8 - 1) rounds to 0 in float32: only a copy keeps 1e-8.
    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    swa_model = AveragedModel(model)
    for grad in (1.0, -1e-8):
        model.weight.grad = torch.full((1, 1), grad)
        optimizer.step()
    swa_model.update_parameters(model)
    expected = swa_model.module.weight.detach().numpy()[0]
    assert expected[0] == np.float32(1e-8)

    tx = optaxtra.swa_averaging(optax.sgd(1.0), start_step=2)
    params = jnp.ones(1)
    state = tx.init(params)
    for grad in (1.0, -1e-8):
        updates, state = tx.update(jnp.full(1, grad), state, params)
        params = optax.apply_updates(params, updates)
    np.testing.assert_array_equal(optaxtra.averaged_params(state), expected)
    assert int(state.n_averaged) == 1


def _sgd_steps(tx, steps, params=None):
    """``steps`` updates with gradient 1 from params 1 (weights 0.9, 0.8, ... under SGD(0.1))."""
    params = jnp.ones(2) if params is None else params
    state = tx.init(params)
    for _ in range(steps):
        updates, state = tx.update(jax.tree.map(jnp.ones_like, params), state, params)
        params = optax.apply_updates(params, updates)
    return params, state


def _debiased_ema(weights, decay):
    biased = 0.0
    for theta in weights:
        biased = decay * biased + (1 - decay) * theta
    return biased / (1 - decay ** len(weights))


def test_nested_averages_read_the_outermost():
    # EMA (decay 0.5) of an SWA-averaged SGD: the weights are 0.9, 0.8, 0.7; the outer EMA
    # is 0.7571 (hand-computed below), the inner SWA 0.8. Both readers take the outer one.
    tx = optaxtra.ema_averaging(optaxtra.swa_averaging(optax.sgd(0.1), start_step=1), 0.5)
    params, state = _sgd_steps(tx, 3)
    expected = _debiased_ema([0.9, 0.8, 0.7], 0.5)
    # float32 against float64: measured 1.0e-7 relative.
    np.testing.assert_allclose(optaxtra.averaged_params(state), [expected] * 2, rtol=1e-6)
    np.testing.assert_allclose(optaxtra.evaluation_params(state, params), [expected] * 2, rtol=1e-6)
    np.testing.assert_allclose(state.inner.average, [0.8, 0.8], rtol=1e-6)  # measured 6.0e-8


def test_side_by_side_averages_read_the_first_in_tree_order():
    # An EMA then an SWA in one chain, both of the weights 0.9, 0.8, 0.7: both readers take the
    # first one's (evaluation_params: "among equal priorities ... the first in tree order").
    tx = optax.chain(
        optaxtra.ema_averaging(optax.sgd(0.1), 0.5), optaxtra.swa_averaging(optax.identity(), 1)
    )
    params, state = _sgd_steps(tx, 3)
    np.testing.assert_allclose(state[1].average, [0.8, 0.8], rtol=1e-6)  # measured 6.0e-8
    expected = _debiased_ema([0.9, 0.8, 0.7], 0.5)
    # float32 against float64: measured 1.0e-7 relative.
    np.testing.assert_allclose(optaxtra.averaged_params(state), [expected] * 2, rtol=1e-6)
    np.testing.assert_allclose(optaxtra.evaluation_params(state, params), [expected] * 2, rtol=1e-6)


@pytest.mark.parametrize(
    "average, expected",
    [
        (lambda inner: optaxtra.swa_averaging(inner, start_step=1), (0.9 + 0.8 + 0.8) / 3),
        (lambda inner: optaxtra.ema_averaging(inner, 0.5), _debiased_ema([0.9, 0.8, 0.8], 0.5)),
    ],
    ids=["swa", "ema"],
)
def test_evaluation_prefers_an_average_inside_lookahead_to_its_slow_weights(average, expected):
    # Lookahead (k = 2, alpha = 0.5) around an averaged SGD(0.1) with gradient 1: the inner
    # weights are 0.9, 0.8, then 0.8 (after the sync to 0.9 at step 2); slow weights 0.9.
    tx = optaxtra.lookahead_state(average(optax.sgd(0.1)), sync_period=2)
    params, state = _sgd_steps(tx, 3)
    # float32 against float64: measured 2.6e-8 relative at most.
    np.testing.assert_allclose(state.slow, [0.9, 0.9], rtol=2e-7)
    np.testing.assert_allclose(optaxtra.evaluation_params(state, params), [expected] * 2, rtol=2e-7)


def test_evaluation_reads_the_average_of_an_optimizer_switched_to_at_step_zero():
    # switch_step=0: the EMA-averaged second optimizer runs from the first update on.
    tx = optaxtra.switch(optax.sgd(0.1), optaxtra.ema_averaging(optax.sgd(0.1), 0.5), switch_step=0)
    params, state = _sgd_steps(tx, 3)
    # float32 against float64: measured 1.0e-7 relative.
    np.testing.assert_allclose(
        optaxtra.evaluation_params(state, params), [_debiased_ema([0.9, 0.8, 0.7], 0.5)] * 2, rtol=1e-6
    )


@pytest.mark.parametrize(
    "build, average_w",
    [
        (lambda inner: optaxtra.ema_averaging(inner, 0.5), _debiased_ema([0.9, 0.8], 0.5)),
        (lambda inner: optaxtra.swa_averaging(inner, 1), (0.9 + 0.8) / 2),
    ],
    ids=["ema", "swa"],
)
def test_integer_leaves_follow_the_weights(build, average_w):
    # Integer leaves are not averaged: with the updates equal to the gradients (identity),
    # the counter moves 3 -> 5 -> 7 and its "average" is 7; the float leaf 0.9, 0.8 is averaged.
    params = {"w": jnp.ones(2), "n": jnp.array(3, jnp.int32)}
    tx = build(optax.identity())
    state = tx.init(params)
    grads = {"w": jnp.full(2, -0.1), "n": jnp.array(2, jnp.int32)}
    for _ in range(2):
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    assert int(params["n"]) == 7
    average = optaxtra.averaged_params(state)
    assert average["n"].dtype == jnp.int32 and int(average["n"]) == 7
    # float32 against float64: measured 4.2e-8 relative at most.
    np.testing.assert_allclose(average["w"], [average_w] * 2, rtol=3e-7)
