"""AdamC (corrected weight decay) against pytorch-optimizer 4.1's ``AdamC`` and timm's ``corrected_weight_decay``.

Both references decay by ``wd * lr_t**2 / max_lr`` with ``lr_t`` the group's
learning rate when stepping (set by the scheduler) and ``max_lr`` the
learning rate the optimizer was constructed with. The rows drive them with a
``LambdaLR`` schedule (stepped after each update, so update ``k`` uses
factor ``k``) and optaxtra with the same schedule read at the step count.
Closed loop on ``tests/_problems.py``'s problem, float32, params compared after
every step at ``rtol=1e-5, atol=1e-6``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import pytorch_optimizer
import torch

import optaxtra
from tests._bad_input import assert_refused
from tests._problems import NAMES, assert_trajectories_close, run_optax, run_torch
from tests._timm import timm_optim_module

RTOL = 1e-5
ATOL = 1e-6
STEPS = 500


class _Scheduled:
    """An optimizer and its LR scheduler, stepped together (what ``run_torch`` calls)."""

    def __init__(self, optimizer, factor):
        self.optimizer = optimizer
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    def zero_grad(self):
        self.optimizer.zero_grad()

    def step(self):
        self.optimizer.step()
        self.scheduler.step()


def _factor(k):
    """Linear decay to a fifth over the run (a float for torch, traced for JAX)."""
    return 1.0 - 0.8 * k / STEPS


def _schedule(lr):
    return lambda count: lr * _factor(jnp.asarray(count, jnp.float32))


def _pytorch_optimizer(params, lr, **kwargs):
    group = {"params": params, "normalized": True}
    return _Scheduled(pytorch_optimizer.AdamC([group], lr=lr, weight_decouple=True, foreach=False, **kwargs), _factor)


def _timm(params, lr, **kwargs):
    adamw = timm_optim_module("adamw").AdamWLegacy
    return _Scheduled(adamw(params, lr=lr, corrected_weight_decay=True, foreach=False, **kwargs), _factor)


CASES = [
    pytest.param(
        lambda: optaxtra.adamc(_schedule(2e-3), weight_decay=0.1, max_lr=2e-3),
        lambda p: _pytorch_optimizer(p, 2e-3, weight_decay=0.1),
        id="pytorch_optimizer",
    ),
    # pytorch-optimizer adds eps to sqrt(v) before the bias correction; visible at eps = 1e-6.
    pytest.param(
        lambda: optaxtra.adamc(
            _schedule(2e-3), 0.8, 0.99, 1e-6, weight_decay=0.5, max_lr=2e-3, eps_placement="uncorrected"
        ),
        lambda p: _pytorch_optimizer(p, 2e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.5),
        id="pytorch_optimizer_nondefault_eps_uncorrected",
    ),
    pytest.param(
        lambda: optaxtra.adamc(_schedule(2e-3), weight_decay=0.1, max_lr=2e-3),
        lambda p: _timm(p, 2e-3, weight_decay=0.1),
        id="timm",
    ),
    pytest.param(
        lambda: optaxtra.adamc(_schedule(2e-3), 0.8, 0.99, 1e-6, weight_decay=0.5, max_lr=2e-3),
        lambda p: _timm(p, 2e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.5),
        id="timm_nondefault",
    ),
]


@pytest.mark.parametrize("ours, reference", CASES)
def test_trajectory_matches_reference(ours, reference):
    actual, _ = run_optax(ours(), STEPS)
    assert_trajectories_close(actual, run_torch(reference, STEPS), rtol=RTOL, atol=ATOL)


def test_the_correction_is_visible_against_plain_adamw_decay():
    """AdamW's decay (``lr_t`` instead of ``lr_t**2 / max_lr``) leaves the reference far behind."""
    actual, _ = run_optax(optaxtra.adamw(_schedule(2e-3), weight_decay=0.5), STEPS)
    expected = run_torch(lambda p: _timm(p, 2e-3, weight_decay=0.5), STEPS)
    assert max(float(np.max(np.abs(actual[n] - expected[n]))) for n in NAMES) > 1e-4


def test_max_lr_is_the_constructor_rate():
    """Both references divide by the rate they were constructed with (2e-3 here, the peak)."""
    actual, _ = run_optax(optaxtra.adamc(_schedule(2e-3), weight_decay=0.5, max_lr=1e-3), STEPS)
    expected = run_torch(lambda p: _timm(p, 2e-3, weight_decay=0.5), STEPS)
    assert max(float(np.max(np.abs(actual[n] - expected[n]))) for n in NAMES) > 1e-4


def test_eps_placement_is_visible_against_pytorch_optimizer():
    actual, _ = run_optax(optaxtra.adamc(_schedule(2e-3), 0.8, 0.99, 1e-6, weight_decay=0.5, max_lr=2e-3), STEPS)
    expected = run_torch(lambda p: _pytorch_optimizer(p, 2e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.5), STEPS)
    used = max(float(np.max(np.abs(actual[n] - expected[n]) / (ATOL + RTOL * np.abs(expected[n])))) for n in NAMES)
    assert used > 2  # measured 2.4 times the tolerance


def test_constant_learning_rate_is_adamw_bit_for_bit():
    ours, _ = run_optax(optaxtra.adamc(1e-3, weight_decay=0.1), STEPS)
    adamw, _ = run_optax(optaxtra.adamw(1e-3, weight_decay=0.1), STEPS)
    for name in NAMES:
        np.testing.assert_array_equal(ours[name], adamw[name])


def test_corrected_decay_schedule_values():
    lr = optax.linear_schedule(1e-2, 2e-3, 8)
    schedule = optaxtra.corrected_weight_decay(optax.constant_schedule(0.5), lr, max_lr=1e-2)
    for count in (0, 3, 8):
        np.testing.assert_allclose(schedule(jnp.int32(count)), 0.5 * float(lr(count)) / 1e-2, rtol=1e-6)
    np.testing.assert_allclose(optaxtra.corrected_weight_decay(0.1, jnp.float32(3e-3))(jnp.int32(5)), 0.1)


@pytest.mark.parametrize(
    "make, error, words",
    [
        (lambda: optaxtra.adamc(optax.linear_schedule(1e-3, 0.0, 10)), ValueError, ("max_lr", "schedule")),
        (lambda: optaxtra.adamc(max_lr=0.0), ValueError, ("max_lr", "0.0", "(0, inf)")),
        (lambda: optaxtra.adamc(max_lr=lambda c: 1e-3), TypeError, ("max_lr", "schedule")),
        (lambda: optaxtra.adamc(weight_decay=-1.0), ValueError, ("weight_decay", "-1.0")),
        (lambda: optaxtra.adamc(-1e-3), ValueError, ("learning_rate", "-0.001")),
    ],
)
def test_bad_input_names_the_argument_the_value_and_the_range(make, error, words):
    assert_refused(make, error, words)


def test_traced_learning_rate_and_max_lr_pass_construction():
    @jax.jit
    def step(lr, max_lr):
        tx = optaxtra.adamc(lr, weight_decay=0.5, max_lr=max_lr)
        params = jnp.array([1.0, -2.0])
        updates, _ = tx.update(jnp.zeros(2), tx.init(params), params)
        return updates

    np.testing.assert_allclose(step(jnp.float32(0.5), jnp.float32(1.0)), [-0.125, 0.25], rtol=1e-6)
