"""Hyperparameters as traced arrays: a vmapped sweep is one compiled program, equal to
separate runs, and changing values never recompiles."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optaxtra

CURVATURE = jnp.array([0.1, 1.0, 3.0, 10.0])
TARGET = jnp.array([1.0, -2.0, 0.5, 3.0])
START = {"w": jnp.zeros(4), "b": jnp.zeros(())}
STEPS = 25


def _loss(params):
    """An ill-conditioned quadratic whose gradient is elementwise (no reductions)."""
    return jnp.sum(CURVATURE * (params["w"] - TARGET) ** 2) + (params["b"] - 0.5) ** 2


def _train(make_optimizer, *hyperparams):
    """STEPS updates of ``make_optimizer(*hyperparams)``, built inside the traced function."""
    tx = make_optimizer(*hyperparams)

    def step(carry, _):
        params, state = carry
        updates, state = tx.update(jax.grad(_loss)(params), state, params)
        params = optax.apply_updates(params, updates)
        return (params, state), _loss(params)

    (params, _), losses = jax.lax.scan(step, (START, tx.init(START)), None, STEPS)
    return params, losses


def _counting(function):
    traces = []

    def counted(*args):
        traces.append(None)
        return function(*args)

    return jax.jit(counted), traces


def test_vmapped_sweep_of_8_learning_rates_is_one_program_equal_to_8_runs():
    make = lambda lr: optaxtra.adamw(lr, weight_decay=1e-2)
    sweep, sweep_traces = _counting(jax.vmap(lambda lr: _train(make, lr)))
    single, single_traces = _counting(lambda lr: _train(make, lr))

    rates = jnp.logspace(-3, -0.5, 8)
    params, losses = sweep(rates)
    for i, rate in enumerate(rates):
        one_params, one_losses = single(rate)
        # The same float32 maths; XLA may fuse the batched program differently
        # (an FMA here or there), which moves a param by an ulp. The loss near
        # its minimum cancels (w - target), so that ulp is ~1e-6 of it.
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a[i], b, rtol=1e-6, atol=1e-7),
                     params, one_params)
        np.testing.assert_allclose(losses[i], one_losses, rtol=1e-6, atol=1e-5)
    assert float(losses[-1, -1]) < float(losses[0, -1])  # the sweep is not degenerate

    sweep(jnp.linspace(1e-3, 1e-1, 8))  # new values: no new trace, no recompilation
    assert len(sweep_traces) == 1 and sweep._cache_size() == 1
    assert len(single_traces) == 1


def test_b1_b2_and_weight_decay_sweep_together():
    make = lambda b1, b2, wd: optaxtra.adamw(0.05, b1, b2, weight_decay=wd)
    grid = [jnp.array(values, jnp.float32) for values in
            ([0.8, 0.9, 0.95, 0.99], [0.99, 0.999, 0.98, 0.9], [0.0, 1e-2, 0.1, 1.0])]
    sweep, traces = _counting(jax.vmap(lambda *h: _train(make, *h)))
    _, losses = sweep(*grid)
    single = jax.jit(lambda *h: _train(make, *h))
    for i in range(4):
        _, one_losses = single(*(values[i] for values in grid))
        np.testing.assert_allclose(losses[i], one_losses, rtol=1e-6, atol=1e-5)
    sweep(*(values[::-1] for values in grid))
    assert len(traces) == 1


@pytest.mark.parametrize("name, make", [
    # At lr 0.05 momentum SGD sits at the edge of stability on the stiffest coordinate
    # (2 * 0.05 * 10 = 1), where the two programs' roundings (a constant against an input)
    # grow to 3e-6 in 25 steps; at 0.02 it converges and they agree to float32 rounding.
    ("sgd momentum", lambda mu, wd: optaxtra.sgd(0.02, momentum=mu, weight_decay=wd)),
    ("lars momentum and decay", lambda mu, wd: optaxtra.lars(0.5, weight_decay=wd, momentum=mu)),
    ("lars, the paper's norms", lambda mu, wd: optaxtra.lars(
        0.5, weight_decay=wd, momentum=mu, separate_norms=True)),
])
def test_momentum_and_trust_ratio_decay_sweep_as_arrays(name, make):
    """A traced momentum or trust-ratio decay keeps its piece; each run equals one with Python numbers.

    0 is in the grid: as an array it keeps the momentum buffer and the decay in the program,
    which must then give what leaving them out gives.
    """
    momenta, decays = jnp.array([0.0, 0.5, 0.9], jnp.float32), jnp.array([0.0, 1e-3, 0.1], jnp.float32)
    _, losses = jax.jit(jax.vmap(lambda mu, wd: _train(make, mu, wd)))(momenta, decays)
    for i, (mu, wd) in enumerate(zip(momenta.tolist(), decays.tolist())):
        _, one = jax.jit(lambda: _train(make, mu, wd))()
        np.testing.assert_allclose(losses[i], one, rtol=1e-6, atol=1e-6, err_msg=f"{name}, run {i}")


def test_every_optimizer_takes_a_batched_learning_rate():
    # Tracing (no compilation) is what fails if an optimizer branches in Python
    # on a hyperparameter's value; the runs above check the numbers.
    rates = jnp.array([1e-3, 1e-2], jnp.float32)
    for name, make in sorted(optaxtra.OPTIMIZERS.items()):
        shapes = jax.eval_shape(jax.vmap(lambda lr: _train(make, lr)), rates)
        assert shapes[1].shape == (2, STEPS), name


def test_schedule_parameters_sweep_too():
    def make(peak, momentum):
        cycle = optaxtra.one_cycle(STEPS, peak, max_momentum=momentum)
        return optaxtra.adam(cycle.learning_rate, b1=cycle.momentum)

    peaks, momenta = jnp.array([0.01, 0.1, 0.3]), jnp.array([0.9, 0.95, 0.99])
    _, losses = jax.jit(jax.vmap(lambda p, m: _train(make, p, m)))(peaks, momenta)
    for i in range(3):
        _, one_losses = _train(make, float(peaks[i]), float(momenta[i]))
        np.testing.assert_allclose(losses[i], one_losses, rtol=1e-6, atol=1e-5)


def test_inject_hyperparams_sweep_interoperates():
    # optax's way: the values live in the state, set per sweep member.
    tx = optax.inject_hyperparams(optaxtra.adam, static_args="freeze_steps")(learning_rate=0.0)

    def train(lr):
        state = tx.init(START)
        state.hyperparams["learning_rate"] = lr

        def step(carry, _):
            params, state = carry
            updates, state = tx.update(jax.grad(_loss)(params), state, params)
            params = optax.apply_updates(params, updates)
            return (params, state), _loss(params)

        (_, state), losses = jax.lax.scan(step, (START, state), None, STEPS)
        return losses, optaxtra.diagnostics(state)["hyperparams/learning_rate"]

    rates = jnp.array([1e-3, 1e-2, 1e-1])
    losses, logged = jax.jit(jax.vmap(train))(rates)
    np.testing.assert_array_equal(logged, rates)
    # inject_hyperparams hands b2 on as a float32 array: optaxtra's result with
    # the same array. A Python 0.999 keeps 1 - b2 from float64 and differs.
    direct = jax.jit(jax.vmap(lambda lr: _train(lambda r: optaxtra.adam(r, b2=jnp.float32(0.999)), lr)))
    np.testing.assert_allclose(losses, direct(rates)[1], rtol=1e-6, atol=1e-5)


def test_inject_hyperparams_casts_to_the_params_dtype_optaxtra_does_not():
    params = jnp.ones(3, jnp.bfloat16)
    # optax's wrapper stores numbers in the params' dtype: 0.999 is 1.0 in bfloat16.
    state = optax.inject_hyperparams(optax.scale_by_adam)(b2=0.999).init(params)
    assert state.hyperparams["b2"].dtype == jnp.bfloat16 and float(state.hyperparams["b2"]) == 1.0
    # Around optaxtra, ask for float32 hyperparameters.
    injected = optax.inject_hyperparams(
        optaxtra.adam, static_args="freeze_steps", hyperparam_dtype=jnp.float32
    )(learning_rate=0.1)
    grads = jnp.full(3, 2.0, jnp.bfloat16)
    updates, injected_state = injected.update(grads, injected.init(params), params)
    # optaxtra itself resolves hyperparameters in float32 whatever the params'
    # dtype: b2 = 0.999 averages v (b2 = 1 would keep it at zero).
    tx = optaxtra.adam(0.1)
    direct_updates, adam_state = tx.update(grads, tx.init(params), params)
    assert float(adam_state[1].nu[0]) == pytest.approx(0.004, rel=1e-2)
    np.testing.assert_array_equal(updates, direct_updates)
    assert updates.dtype == jnp.bfloat16
