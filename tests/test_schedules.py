"""Schedules: one-cycle against PyTorch's OneCycleLR, the rest against hand-computed values."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

import optaxtra


def _values(schedule, steps):
    """A schedule at steps 0..steps-1, from one compiled program."""
    return np.asarray(jax.jit(jax.vmap(schedule))(jnp.arange(steps)), np.float64)


def _torch_one_cycle(total_steps, pct_start, anneal_strategy, three_phase, peak=0.1):
    """OneCycleLR's rate and Adam beta1 used by each of the ``total_steps`` updates."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([param], lr=peak)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=peak, total_steps=total_steps, pct_start=pct_start,
        anneal_strategy=anneal_strategy, three_phase=three_phase,
    )
    rates, momenta = [], []
    for _ in range(total_steps):
        rates.append(optimizer.param_groups[0]["lr"])
        momenta.append(optimizer.param_groups[0]["betas"][0])
        optimizer.step()
        scheduler.step()
    return np.array(rates), np.array(momenta)


@pytest.mark.parametrize("anneal_strategy", ["cos", "linear"])
@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("total_steps, pct_start", [(100, 0.3), (37, 0.25)])
def test_one_cycle_matches_torch_one_cycle_lr(anneal_strategy, three_phase, total_steps, pct_start):
    rates, momenta = _torch_one_cycle(total_steps, pct_start, anneal_strategy, three_phase)
    cycle = optaxtra.one_cycle(
        total_steps, 0.1, pct_start, anneal_strategy=anneal_strategy, three_phase=three_phase
    )
    # float32 against PyTorch's float64: the worst step (cos, near the 4e-7 floor)
    # is 8 float32 ulps away; the rate spans 5 decades, so no absolute slack.
    np.testing.assert_allclose(_values(cycle.learning_rate, total_steps), rates, rtol=1e-6, atol=0)
    np.testing.assert_allclose(_values(cycle.momentum, total_steps), momenta, rtol=1e-6, atol=0)


def _quadratic_grad(w):
    return np.array([1.0, 3.0, 0.5], np.float32) * (w - np.array([1.0, -2.0, 0.5], np.float32))


def test_one_cycle_adam_follows_torch_adam_with_cycled_beta1():
    total_steps, start = 40, np.array([0.5, 0.5, -1.0], np.float32)
    param = torch.nn.Parameter(torch.tensor(start))
    optimizer = torch.optim.Adam([param], lr=0.1)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=total_steps)
    expected = []
    for _ in range(total_steps):
        param.grad = torch.tensor(_quadratic_grad(param.detach().numpy()))
        optimizer.step()
        scheduler.step()
        expected.append(param.detach().numpy().copy())

    cycle = optaxtra.one_cycle(total_steps, 0.1)
    tx = optaxtra.adam(learning_rate=cycle.learning_rate, b1=cycle.momentum)

    def step(carry, _):
        params, state = carry
        grads = jnp.array([1.0, 3.0, 0.5]) * (params - jnp.array([1.0, -2.0, 0.5]))
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        return (params, state), params

    params = jnp.asarray(start)
    _, trajectory = jax.jit(lambda p: jax.lax.scan(step, (p, tx.init(p)), None, total_steps))(params)
    # Both in float32; the bias corrections use 1 - b1_t**t of the current b1
    # (PyTorch in float64 scalars), so only rounding separates them: ~2 ulps
    # of the params' scale.
    np.testing.assert_allclose(np.asarray(trajectory), np.array(expected), rtol=1e-6, atol=3e-7)


def test_one_cycle_b1_and_rate_visible_through_inject_hyperparams():
    cycle = optaxtra.one_cycle(10, 0.1, anneal_strategy="linear")
    injected = optax.inject_hyperparams(optaxtra.adam, static_args="freeze_steps")(
        learning_rate=cycle.learning_rate, b1=cycle.momentum
    )
    # inject_hyperparams hands every number on as a float32 array, b2 included.
    direct = optaxtra.adam(learning_rate=cycle.learning_rate, b1=cycle.momentum, b2=jnp.float32(0.999))
    params = jnp.array([1.0, -2.0])
    state_i, state_d = injected.init(params), direct.init(params)
    for t in range(4):
        grads = jnp.array([0.3, -1.0]) * (t + 1)
        updates_i, state_i = injected.update(grads, state_i, params)
        updates_d, state_d = direct.update(grads, state_d, params)
        # Eager, op by op: the same float32 operations, bit for bit.
        np.testing.assert_array_equal(updates_i, updates_d)
        stats = optaxtra.diagnostics(state_i)
        assert float(stats["hyperparams/b1"]) == float(cycle.momentum(t))
        assert float(stats["hyperparams/learning_rate"]) == float(cycle.learning_rate(t))
        assert float(optaxtra.diagnostics(state_d)["learning_rate"]) == float(cycle.learning_rate(t))


def test_linear_warmup_hand_values():
    schedule = optaxtra.linear_warmup(0.8, 4, init_value=0.4)
    np.testing.assert_allclose(_values(schedule, 7), [0.4, 0.5, 0.6, 0.7, 0.8, 0.8, 0.8], rtol=1e-7)
    np.testing.assert_allclose(_values(optaxtra.linear_warmup(0.5, 0), 3), [0.5] * 3)


@pytest.mark.parametrize("b2", [0.999, 0.99])
def test_untuned_warmup_is_ma_and_yarats_rule(b2):
    steps = np.arange(3000)
    t = steps + 1.0  # the paper's 1-based step
    linear = optaxtra.untuned_warmup(2e-3, b2)
    exponential = optaxtra.untuned_warmup(2e-3, b2, kind="exponential")
    np.testing.assert_allclose(_values(linear, 3000), 2e-3 * np.minimum(1, (1 - b2) / 2 * t), rtol=1e-6)
    np.testing.assert_allclose(_values(exponential, 3000), 2e-3 * (1 - np.exp(-(1 - b2) * t)), rtol=1e-6)
    assert optaxtra.untuned_warmup_steps(b2) == {0.999: 2000, 0.99: 200}[b2]
    # The linear form reaches its peak exactly after untuned_warmup_steps(b2) updates.
    first_full = int(np.argmax(_values(linear, 3000) >= 2e-3 * (1 - 1e-7)))
    assert first_full + 1 == optaxtra.untuned_warmup_steps(b2)


def test_warmup_stable_decay_hand_values():
    linear = optaxtra.warmup_stable_decay(1.0, 10, 2, 4, init_value=0.2, end_value=0.2)
    np.testing.assert_allclose(
        _values(linear, 12), [0.2, 0.6, 1, 1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2, 0.2], rtol=1e-6
    )
    cosine = optaxtra.warmup_stable_decay(1.0, 10, 2, 4, anneal_strategy="cos")
    decay = 0.5 * (1 + np.cos(np.pi * np.arange(5) / 4))
    np.testing.assert_allclose(_values(cosine, 12)[6:11], decay, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(_values(cosine, 12)[:6], [0, 0.5, 1, 1, 1, 1])
    no_plateau = optaxtra.warmup_stable_decay(1.0, 4, 2, 2)
    np.testing.assert_allclose(_values(no_plateau, 5), [0, 0.5, 1, 0.5, 0])


def test_warmup_stable_decay_warms_up_linearly_whatever_the_decay_shape():
    # The docstring's first case, eta_0 + (eta_peak - eta_0) t / W for t < W, holds for
    # anneal_strategy="cos" too: only the decay is a half cosine. With W = 4 a cosine ramp
    # would give 0.2 + 0.8 * sin^2(pi t / 8) = 0.2586, 0.6, 0.9414 at t = 1, 2, 3.
    cosine = optaxtra.warmup_stable_decay(1.0, 12, 4, 4, init_value=0.2, anneal_strategy="cos")
    np.testing.assert_allclose(_values(cosine, 6), [0.2, 0.4, 0.6, 0.8, 1.0, 1.0], rtol=1e-6)


def test_batch_size_scaling():
    assert optaxtra.linear_batch_scaling(0.1, 8192) == pytest.approx(3.2)  # Goyal et al.'s ResNet-50
    assert optaxtra.sqrt_batch_scaling(5e-4, 2048, base_batch_size=512) == pytest.approx(1e-3)
    schedule = optaxtra.sqrt_batch_scaling(optaxtra.linear_warmup(1.0, 2), 1024)
    np.testing.assert_allclose(_values(schedule, 3), [0.0, 1.0, 2.0])
    traced = jax.jit(lambda lr: optaxtra.linear_batch_scaling(lr, 512))(jnp.float32(0.25))
    assert float(traced) == 0.5


def test_swa_cyclic_learning_rate_is_the_papers_cycle():
    alpha_1, alpha_2, start, cycle = 0.05, 0.01, 3, 4
    warmup = optaxtra.linear_warmup(0.1, 3)
    schedule = optaxtra.swa_cyclic_learning_rate(warmup, alpha_1, alpha_2, start, cycle)
    i = np.arange(1, 9)  # 1-based index within the SWA phase
    u = ((i - 1) % cycle + 1) / cycle
    expected = np.concatenate([[0.0, 1 / 30, 2 / 30], (1 - u) * alpha_1 + u * alpha_2])
    np.testing.assert_allclose(_values(schedule, 11), expected, rtol=1e-6)


@pytest.mark.parametrize("anneal_epochs", [0, 3])
def test_swa_learning_rate_defaults_match_torch_swalr_taking_over(anneal_epochs):
    """SWALR built when the SWA phase starts (step count 3), stepped after each update from then on.

    Both sides with their default anneal_strategy (cos); anneal_epochs=0 is SWALR's
    switch to swa_lr at once, the rate of the very first SWA update.
    """
    start, steps = 3, 9
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=0.1)
    swa_scheduler, rates = None, []
    for count in range(steps):
        if count == start:
            swa_scheduler = torch.optim.swa_utils.SWALR(optimizer, swa_lr=0.02, anneal_epochs=anneal_epochs)
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if swa_scheduler is not None:
            swa_scheduler.step()
    schedule = optaxtra.swa_learning_rate(0.1, 0.02, start, anneal_steps=anneal_epochs)
    # float32 against PyTorch's float64: measured 1.2e-7 relative at most (2 ulps, the
    # mid-anneal 0.04); the cosine and linear anneals differ by 17% there.
    np.testing.assert_allclose(_values(schedule, steps), rates, rtol=1e-6, atol=0)


def test_schedule_values_can_be_traced_without_recompiling():
    traces = []

    @jax.jit
    def rate(peak, momentum, step):
        traces.append(None)
        cycle = optaxtra.one_cycle(100, peak, max_momentum=momentum)
        return cycle.learning_rate(step), cycle.momentum(step)

    for peak, momentum in [(0.1, 0.95), (0.3, 0.9), (1.0, 0.99)]:
        lr, m = rate(jnp.float32(peak), jnp.float32(momentum), 0)
        assert float(lr) == pytest.approx(peak / 25) and float(m) == pytest.approx(momentum)
    assert len(traces) == 1


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: optaxtra.one_cycle(100, 0.1, pct_start=0.0), "pct_start"),
        (lambda: optaxtra.one_cycle(100, 0.1, pct_start=1.0), "pct_start"),
        (lambda: optaxtra.one_cycle(100, 0.1, pct_start=0.6, three_phase=True), "pct_start"),
        (lambda: optaxtra.one_cycle(0, 0.1), "total_steps"),
        (lambda: optaxtra.one_cycle(100, -0.1), "peak_value"),
        (lambda: optaxtra.one_cycle(100, 0.1, anneal_strategy="exp"), "anneal_strategy"),
        (lambda: optaxtra.one_cycle(100, 0.1, base_momentum=1.0), "base_momentum"),
        (lambda: optaxtra.linear_warmup(0.1, -1), "warmup_steps"),
        (lambda: optaxtra.warmup_stable_decay(0.1, 10, 6, 5), "before the warm-up ends"),
        (lambda: optaxtra.warmup_stable_decay(0.1, 10, 2, -1), "decay_steps"),
        (lambda: optaxtra.untuned_warmup(0.1, b2=1.0), "b2"),
        (lambda: optaxtra.untuned_warmup(0.1, kind="cosine"), "kind"),
        (lambda: optaxtra.linear_batch_scaling(0.1, 0), "batch_size"),
        (lambda: optaxtra.sqrt_batch_scaling(-0.1, 64), "learning_rate"),
        (lambda: optaxtra.linear_batch_scaling(0.1, 64, base_batch_size=0), "base_batch_size"),
        (lambda: optaxtra.sqrt_batch_scaling(0.1, 64, base_batch_size=-256), "base_batch_size"),
        (lambda: optaxtra.swa_learning_rate(0.1, 0.05, start_step=-1), "start_step"),
        (lambda: optaxtra.swa_learning_rate(0.1, 0.05, 10, anneal_steps=-2), "anneal_steps"),
        (lambda: optaxtra.swa_cyclic_learning_rate(0.1, 0.05, 0.01, 10, cycle_steps=0), "cycle_steps"),
    ],
)
def test_bad_arguments_raise_value_error(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_one_cycle_holds_final_values_after_the_cycle():
    cycle = optaxtra.one_cycle(10, 1.0)
    values = _values(cycle.learning_rate, 15)
    assert values[9] == pytest.approx(1.0 / 25 / 1e4, rel=1e-6)
    np.testing.assert_array_equal(values[9:], values[9])
    assert math.isclose(float(cycle.momentum(14)), 0.95, rel_tol=1e-7)
