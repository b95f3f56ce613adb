"""AdEMAMix and simplified AdEMAMix against pytorch-optimizer 4.1, ``optax.contrib`` and the authors' code.

Closed loop on ``tests/_problems.py``'s problem, float32, the params compared
after every step at ``rtol=1e-5, atol=1e-6`` (see ``tests/test_parity_torch.py``).
Rounding differences grow with the distance the params travel; AdEMAMix's
step is up to ``1 + alpha`` times Adam's and simplified AdEMAMix's up to
``1 / (1 - b1) = 100`` times, so the learning rates are chosen to keep that
distance near 1 (measured: at most 40% of the tolerance used by AdEMAMix's
rows, 55% by simplified AdEMAMix's against its float64 transcription).

The authors' code (apple/ml-ademamix, DepenM/Simplified-AdEMAMix) is not
packaged. Its PyTorch AdEMAMix is pytorch-optimizer's per-parameter rule with
decoupled decay and ``log(b + 1e-8)`` in the ``b3`` warm-up, which the
``_AuthorsAdEMAMix`` subclass below adds; its simplified AdEMAMix is
transcribed in float64 (``_authors_simplified``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import pytorch_optimizer
import torch

import optaxtra
from tests._bad_input import assert_refused
from tests._problems import (
    assert_trajectories_close,
    case as _case,
    grad_numpy,
    NAMES,
    run_numpy,
    run_optax,
    run_torch,
)

RTOL = 1e-5
ATOL = 1e-6


def f32(x: float) -> float:
    return float(np.float32(x))


def applied_decay(lr: float, weight_decay: float) -> float:
    """``1 - float32(1 - lr * wd)``: the decay pytorch-optimizer's ``p.mul_(1 - lr * wd)`` applies."""
    return 1.0 - float(np.float32(1.0 - lr * weight_decay))


class _AuthorsAdEMAMix(pytorch_optimizer.AdEMAMix):
    """The authors' PyTorch warm-up of ``b3``: ``f(b) = log(0.5) / log(b + 1e-8) - 1``, linear in ``f``."""

    @staticmethod
    def schedule_beta3(t_alpha_beta3, step, beta1, beta3):
        if t_alpha_beta3 is None or step >= t_alpha_beta3:
            return beta3
        f = lambda b: math.log(0.5) / math.log(b + 1e-8) - 1
        a = step / t_alpha_beta3
        return math.pow(0.5, 1 / ((1 - a) * f(beta1) + a * f(beta3) + 1))


T = 200  # warm-up length of the warm-up rows


def _warmed_up(lr, *, log_eps=0.0, **kwargs):
    return optaxtra.ademamix(
        lr, alpha=optaxtra.ademamix_alpha_warmup(5.0, T),
        b3=optaxtra.half_life_warmup(0.9, 0.9999, T, log_eps=log_eps), **kwargs,
    )


TORCH_CASES = [
    _case(
        "pytorch_optimizer_defaults",
        lambda: optaxtra.ademamix(1e-3),
        lambda p: pytorch_optimizer.AdEMAMix(p, lr=1e-3, foreach=False),
        1000,
    ),
    _case(
        "pytorch_optimizer_warmups",
        lambda: _warmed_up(1e-3),
        lambda p: pytorch_optimizer.AdEMAMix(p, lr=1e-3, t_alpha_beta3=T, foreach=False),
        500,
    ),
    _case(
        "pytorch_optimizer_l2_nondefault",
        lambda: optaxtra.ademamix(
            2e-3, 0.8, 0.99, 0.999, alpha=3.0, eps=1e-6, weight_decay=1e-2, decouple=False
        ),
        lambda p: pytorch_optimizer.AdEMAMix(
            p, lr=2e-3, betas=(0.8, 0.99, 0.999), alpha=3.0, eps=1e-6, weight_decay=1e-2, foreach=False
        ),
        500,
    ),
    _case(
        "pytorch_optimizer_decoupled",
        lambda: _warmed_up(1e-3, weight_decay=applied_decay(1e-3, 0.1) / 1e-3),
        lambda p: pytorch_optimizer.AdEMAMix(
            p, lr=1e-3, t_alpha_beta3=T, weight_decay=0.1, weight_decouple=True, foreach=False
        ),
        500,
    ),
    _case(
        "authors_pytorch_warmups_log_eps",
        lambda: _warmed_up(1e-3, log_eps=1e-8, weight_decay=applied_decay(1e-3, 0.1) / 1e-3),
        lambda p: _AuthorsAdEMAMix(
            p, lr=1e-3, t_alpha_beta3=T, weight_decay=0.1, weight_decouple=True, foreach=False
        ),
        500,
    ),
]


@pytest.mark.parametrize("ours, reference, steps", TORCH_CASES)
def test_ademamix_matches_pytorch(ours, reference, steps):
    actual, _ = run_optax(ours(), steps)
    assert_trajectories_close(actual, run_torch(reference, steps), rtol=RTOL, atol=ATOL)


def _trajectory_gap(ours, reference, steps=500) -> float:
    actual, _ = run_optax(ours, steps)
    expected = run_torch(reference, steps)
    return max(float(np.max(np.abs(actual[n] - expected[n]))) for n in NAMES)


@pytest.mark.parametrize(
    "ours",
    [
        pytest.param(lambda: optaxtra.ademamix(
            1e-3, alpha=optaxtra.ademamix_alpha_warmup(5.0, T, first_step=0),
            b3=optaxtra.half_life_warmup(0.9, 0.9999, T, first_step=0, log_eps=0.0)), id="first_step_0"),
        pytest.param(lambda: _warmed_up(1e-3, log_eps=1e-8), id="log_eps"),
    ],
)
def test_each_warmup_convention_is_visible_against_pytorch_optimizer(ours):
    """Each option moves the trajectory by far more than the tolerance: the rows above pin its value."""
    reference = lambda p: pytorch_optimizer.AdEMAMix(p, lr=1e-3, t_alpha_beta3=T, foreach=False)
    assert _trajectory_gap(ours(), reference) > 20 * ATOL


def test_decoupled_or_l2_is_visible_against_pytorch_optimizer():
    reference = lambda p: pytorch_optimizer.AdEMAMix(p, lr=1e-3, weight_decay=0.1, foreach=False)
    assert _trajectory_gap(optaxtra.ademamix(1e-3, weight_decay=0.1), reference) > 1e-3
    actual, _ = run_optax(optaxtra.ademamix(1e-3, weight_decay=0.1, decouple=False), 500)
    assert_trajectories_close(actual, run_torch(reference, 500), rtol=RTOL, atol=ATOL)


def _optax_warmups(first_step: int):
    """The authors' optax schedules, read at ``count_m2`` (0 on the first update) by optax.contrib."""

    def alpha(count):
        return 5.0 * jnp.minimum(count / T, 1.0)

    def b3(count):
        f = lambda b: jnp.log(0.5) / jnp.log(b) - 1
        a = count / T
        warm = jnp.power(0.5, 1 / ((1 - a) * f(jnp.float32(0.9)) + a * f(jnp.float32(0.9999)) + 1))
        return jnp.where(count < T, warm, 0.9999)

    return alpha, b3


def _run_optax_reference(tx, steps):
    with jax.numpy_dtype_promotion("standard"):
        return run_optax(tx, steps)[0]


def test_ademamix_matches_optax_contrib_defaults():
    ours, _ = run_optax(optaxtra.ademamix(1e-3, f32(0.9), f32(0.999), f32(0.9999), weight_decay=1e-2), 1000)
    reference = optax.contrib.ademamix(1e-3, f32(0.9), f32(0.999), f32(0.9999), weight_decay=1e-2)
    assert_trajectories_close(ours, _run_optax_reference(reference, 1000), rtol=RTOL, atol=ATOL)


def test_ademamix_matches_optax_contrib_warmups_read_one_update_earlier():
    """optax.contrib reads the warm-ups at ``count`` (first_step=0) and rounds ``1 - b3_t`` in float32.

    Given the same float32 ``b3_t`` (a plain schedule, so ``1 - b3_t`` is also
    taken in float32), the rules agree; ``half_life_warmup``'s accurate
    ``1 - b3_t`` is what pytorch-optimizer's float64 schedule gives (rows above).
    """
    alpha, b3 = _optax_warmups(0)
    warm = optaxtra.half_life_warmup(f32(0.9), f32(0.9999), T, first_step=0, log_eps=0.0)
    ours_tx = optaxtra.ademamix(
        1e-3, f32(0.9), f32(0.999), lambda c: warm(c),
        alpha=optaxtra.ademamix_alpha_warmup(5.0, T, first_step=0),
    )
    ours, _ = run_optax(ours_tx, 500)
    reference = optax.contrib.ademamix(1e-3, f32(0.9), f32(0.999), b3, alpha)
    assert_trajectories_close(ours, _run_optax_reference(reference, 500), rtol=RTOL, atol=ATOL)


def test_half_life_warmup_values():
    """Against a float64 transcription of the paper's formula, with and without the authors' 1e-8."""
    for log_eps, first_step in ((1e-8, 1), (0.0, 1), (0.0, 0)):
        warm = optaxtra.half_life_warmup(0.9, 0.9999, T, first_step=first_step, log_eps=log_eps)
        for count in (0, 1, 57, T - 2, T - 1, T, 5 * T):
            s = count + first_step
            f = lambda b: math.log(0.5) / math.log(b + log_eps) - 1
            a = s / T
            expected = 0.9999 if s >= T else 0.5 ** (1 / ((1 - a) * f(0.9) + a * f(0.9999) + 1))
            decay = warm.decay(jnp.int32(count))
            np.testing.assert_allclose(float(decay.rate), expected, rtol=1e-7)
            np.testing.assert_allclose(float(decay.complement), 1 - expected, rtol=2e-6)
            assert float(warm(jnp.int32(count))) == float(decay.rate)


def test_half_life_warmup_keeps_one_minus_b3_accurate():
    """``1 - float32(b3_t)`` is off by up to 3e-4 of itself near 0.9999; ``decay().complement`` is not."""
    warm = optaxtra.half_life_warmup(0.9, 0.9999, T, log_eps=0.0)
    count = T - 3
    a = (count + 1) / T
    exact = 1 - math.exp(1 / ((1 - a) / math.log(0.9) + a / math.log(0.9999)))
    assert abs(float(warm.decay(jnp.int32(count)).complement) / exact - 1) < 2e-6
    assert abs((1 - float(warm(jnp.int32(count)))) / exact - 1) > 1e-5


def test_diagnostics_report_alpha_and_b3():
    b3 = optaxtra.half_life_warmup(0.5, 0.5 ** (1 / 3), 4, log_eps=0.0)
    tx = optaxtra.ademamix(1e-3, alpha=optaxtra.ademamix_alpha_warmup(4.0, 4), b3=b3)
    params = jnp.zeros(2)
    state = tx.init(params)
    _, state = tx.update(jnp.ones(2), state, params)
    stats = optaxtra.diagnostics(state)
    np.testing.assert_allclose(stats["ademamix/alpha"], 1.0)
    np.testing.assert_allclose(stats["ademamix/b3"], 0.5 ** (1 / 1.5), rtol=1e-6)  # half-life 1.5 at s = 1


# --- Simplified AdEMAMix ---------------------------------------------------------------------


def _authors_simplified(lr, b1, b2, alpha, eps, weight_decay, b1_warmup=None, min_b1=0.9):
    """A float64 transcription of DepenM/Simplified-AdEMAMix's default rule (bias_correction2 only)."""
    state = {"m": None, "v": None, "num": 0.0, "den": 0.0}

    def beta1(t):
        if b1_warmup is None or t >= b1_warmup:
            return b1
        f = lambda b: math.log(0.5) / math.log(b + 1e-8) - 1
        a = t / b1_warmup
        return 0.5 ** (1 / ((1 - a) * f(min_b1) + a * f(b1) + 1))

    def step(params, grads, t):
        if state["m"] is None:
            state["m"] = {k: np.zeros_like(v) for k, v in params.items()}
            state["v"] = {k: np.zeros_like(v) for k, v in params.items()}
        b1_t = beta1(t)
        state["den"] = b2 * state["den"] + (1 - b2)
        new = {}
        for k in NAMES:
            g = grads[k]
            state["m"][k] = b1_t * state["m"][k] + g
            state["v"][k] = b2 * state["v"][k] + (1 - b2) * g * g
            denom = np.sqrt(state["v"][k]) + eps * math.sqrt(state["den"])
            update = (alpha * g + state["m"][k]) / denom * math.sqrt(state["den"])
            new[k] = params[k] - lr * (update + weight_decay * params[k])
        return new

    return step


def test_simplified_ademamix_matches_optax_contrib():
    ours, _ = run_optax(optaxtra.simplified_ademamix(1e-5, f32(0.99), f32(0.95), alpha=2.0, weight_decay=0.1), 1000)
    reference = optax.contrib.simplified_ademamix(1e-5, f32(0.99), f32(0.95), alpha=2.0, weight_decay=0.1)
    assert_trajectories_close(ours, _run_optax_reference(reference, 1000), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    "ours, transcription",
    [
        pytest.param(
            lambda: optaxtra.simplified_ademamix(1e-5),
            _authors_simplified(1e-5, 0.99, 0.95, 0.0, 1e-8, 0.0),
            id="defaults",
        ),
        pytest.param(
            lambda: optaxtra.simplified_ademamix(
                1e-5, optaxtra.half_life_warmup(0.9, 0.99, 100), 0.9, alpha=3.0, eps=1e-6, weight_decay=0.1
            ),
            _authors_simplified(1e-5, 0.99, 0.9, 3.0, 1e-6, 0.1, b1_warmup=100),
            id="b1_warmup_decay",
        ),
    ],
)
def test_simplified_ademamix_matches_the_authors_rule(ours, transcription):
    actual, _ = run_optax(ours(), 500)
    assert_trajectories_close(actual, run_numpy(transcription, 500), rtol=RTOL, atol=ATOL)


def test_pytorch_optimizers_simplified_ademamix_is_another_rule():
    """pytorch-optimizer 4.1 averages ``m`` with ``1 - b1`` and divides by ``sqrt(1 - b2^t)`` instead of
    multiplying: its first step is ``(1 - b1 + alpha) / (1 - b2) sign(g)``, the authors' ``(1 + alpha) sign(g)``.
    """
    p = torch.tensor([1.0, 2.0], requires_grad=True)
    reference = pytorch_optimizer.SimplifiedAdEMAMix([p], lr=0.1, alpha=1.0, foreach=False)
    p.grad = torch.tensor([3.0, -1.0])
    reference.step()
    np.testing.assert_allclose(p.detach().numpy(), [1.0 - 0.1 * 1.01 / 0.05, 2.0 + 0.1 * 1.01 / 0.05], rtol=1e-5)
    tx = optaxtra.simplified_ademamix(0.1, alpha=1.0)
    params = jnp.array([1.0, 2.0])
    updates, _ = tx.update(jnp.array([3.0, -1.0]), tx.init(params), params)
    np.testing.assert_allclose(optax.apply_updates(params, updates), [0.8, 2.2], rtol=1e-6)


@pytest.mark.parametrize(
    "make, error, words",
    [
        (lambda: optaxtra.ademamix(b3=1.0), ValueError, ("b3", "1.0", "[0, 1)")),
        (lambda: optaxtra.ademamix(alpha=-1.0), ValueError, ("alpha", "-1.0", "[0, inf)")),
        (lambda: optaxtra.ademamix(decouple="yes"), TypeError, ("decouple",)),
        (lambda: optaxtra.ademamix(weight_decay=-0.1), ValueError, ("weight_decay", "-0.1")),
        (lambda: optaxtra.simplified_ademamix(b1=-0.5), ValueError, ("b1", "-0.5", "[0, 1)")),
        (lambda: optaxtra.simplified_ademamix(alpha=float("inf")), ValueError, ("alpha", "inf")),
        (lambda: optaxtra.half_life_warmup(0.9, 1.5, 10), ValueError, ("end", "1.5", "[0, 1)")),
        (lambda: optaxtra.half_life_warmup(0.9, 0.99, 0), ValueError, ("warmup_steps", "0")),
        (lambda: optaxtra.half_life_warmup(0.9, 0.99, 10, log_eps=-1e-8), ValueError, ("log_eps",)),
        (lambda: optaxtra.ademamix_alpha_warmup(5.0, 2.5), TypeError, ("warmup_steps", "2.5")),
        (lambda: optaxtra.ademamix_alpha_warmup(-5.0, 10), ValueError, ("alpha", "-5.0")),
    ],
)
def test_bad_input_names_the_argument_the_value_and_the_range(make, error, words):
    assert_refused(make, error, words)


def test_traced_hyperparameters_pass_construction():
    @jax.jit
    def one_step(b3, alpha, start):
        tx = optaxtra.ademamix(0.1, b3=optaxtra.half_life_warmup(start, b3, 10), alpha=alpha)
        params = jnp.ones(2)
        updates, _ = tx.update(jnp.ones(2), tx.init(params), params)
        return updates

    np.testing.assert_allclose(one_step(jnp.float32(0.99), jnp.float32(5.0), jnp.float32(0.9)).shape, (2,))
