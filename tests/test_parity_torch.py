"""Parity with PyTorch 2.13 ``torch.optim``, torch-optimizer 0.3.0 and pytorch_ranger 0.1.1.

Each test runs an optaxtra optimizer and its PyTorch reference on the shared
problem of ``tests/_problems.py``, both in float32 and each on its own
gradients (closed loop), and compares the params after every step.

Tolerance: ``rtol=1e-5`` and ``atol=1e-6`` everywhere. The params are O(1)
(the largest entry is 6), where float32 spacing is 1.2e-7 to 4.8e-7; two
implementations that round differently drift apart by a few of those ulps. An
entry that passes close to zero (several ``kernel`` and ``shift`` entries do)
carries that absolute error, which is no longer small relative to its own
size; ``atol=1e-6`` (about 8 ulps at 1) covers that and no more: it is below
``rtol * |x|`` for every entry larger than 0.1.

The rounding differences accumulate with the distance the params travel
(about ``lr * steps`` for the Adam family), so the rows keep that near 1 or
below (``lr=1e-3`` for 1,000 steps, at most ``3e-3`` for 500). The rows with
strong decoupled decay (``wd=0.1``) use ``lr=1e-3``: at ``lr=3e-3`` RAdam's two
runs were measured 1.2e-6 apart after 500 steps, too close to ``atol`` for a
robust test of the update rule.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import pytorch_ranger
import torch
import torch_optimizer

import optaxtra
from tests._problems import (
    case as _case,
    NAMES,
    assert_trajectories_close,
    initial_params,
    loss_jax,
    run_optax,
    run_torch,
)

RTOL = 1e-5
ATOL = 1e-6


# pytorch_ranger 0.1.1 calls ``add_``/``addcmul_`` with the scalar first, an
# overload PyTorch deprecates with a UserWarning; nothing on our side can avoid it.
ranger_deprecation = pytest.mark.filterwarnings(
    "ignore:This overload of add.* is deprecated:UserWarning"
)


def torch_applied_decay(lr: float, weight_decay: float) -> float:
    """The per-step decay PyTorch's decoupled weight decay actually applies.

    ``AdamW`` and ``RAdam(decoupled_weight_decay=True)`` do
    ``param.mul_(1 - lr * weight_decay)`` with the factor rounded to float32,
    whose spacing just below 1 is 6e-8: with ``lr * weight_decay = 1e-5`` the
    decay applied is 1.00136e-5, 0.14% more than asked, and over 1,000 steps
    the params end 1.4e-5 (relative) lower than exact decay gives. optaxtra
    computes ``lr * wd`` in float32 (relative error 6e-8). To compare the
    update rules rather than this rounding, optaxtra is given the decay that
    PyTorch applies; ``test_torch_decoupled_decay_factor_is_rounded_to_float32``
    pins the rounding itself.

    Args:
      lr: the learning rate.
      weight_decay: PyTorch's ``weight_decay``.

    Returns:
      ``1 - float32(1 - lr * weight_decay)``, the product ``lr * wd`` applied.
    """
    return 1.0 - float(np.float32(1.0 - lr * weight_decay))


def _lamb_debias_lr(lr: float, b1: float, b2: float):
    """torch-optimizer Lamb's ``debias=True`` step length as an optaxtra LR schedule."""

    def schedule(count):
        t = (count + 1).astype(jnp.float32)
        return lr * jnp.sqrt(1 - b2**t) / (1 - b1**t)

    return schedule


def _radam_l2(lr: float, weight_decay: float) -> optax.GradientTransformation:
    # PyTorch RAdam's default (decoupled_weight_decay=False) is L2, as radam's docstring says.
    return optax.chain(
        optaxtra.add_decayed_weights(weight_decay),
        optaxtra.scale_by_radam_rectifier(),
        optaxtra.scale_by_learning_rate(lr),
    )


def _corrected_eps_schedule(eps: float, b2: float):
    def schedule(count):
        return eps / jnp.sqrt(1 - b2 ** (count + 1).astype(jnp.float32))

    return schedule


_decay = torch_applied_decay


TORCH_CASES = [
    _case(
        "adam",
        lambda: optaxtra.adam(1e-3),
        lambda p: torch.optim.Adam(p, lr=1e-3, foreach=False),
        1000,
    ),
    _case(
        "adam_l2_nondefault",
        lambda: optaxtra.adam(3e-3, 0.8, 0.99, 1e-6, weight_decay=1e-2),
        lambda p: torch.optim.Adam(
            p, lr=3e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-2, foreach=False
        ),
        500,
    ),
    _case(
        "adamw_default_decay",
        lambda: optaxtra.adamw(1e-3, weight_decay=_decay(1e-3, 1e-2) / 1e-3),
        lambda p: torch.optim.AdamW(p, lr=1e-3, foreach=False),
        1000,
    ),
    _case(
        "adamw_nondefault",
        lambda: optaxtra.adamw(1e-3, 0.8, 0.99, 1e-6, weight_decay=_decay(1e-3, 0.1) / 1e-3),
        lambda p: torch.optim.AdamW(
            p, lr=1e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, foreach=False
        ),
        500,
    ),
    # Decay independent of the LR: optaxtra's per-step decay wd is PyTorch's lr * (wd / lr).
    _case(
        "adamw_decay_not_scaled_by_lr",
        lambda: optaxtra.adamw(3e-3, weight_decay=_decay(3e-3, 0.1), scale_decay_by_lr=False),
        lambda p: torch.optim.AdamW(p, lr=3e-3, weight_decay=0.1, foreach=False),
        500,
    ),
    _case(
        "amsgrad",
        lambda: optaxtra.amsgrad(1e-3, max_of="raw"),
        lambda p: torch.optim.Adam(p, lr=1e-3, amsgrad=True, foreach=False),
        1000,
    ),
    _case(
        "amsgrad_l2_nondefault",
        lambda: optaxtra.amsgrad(3e-3, 0.8, 0.99, 1e-6, weight_decay=1e-2),
        lambda p: torch.optim.Adam(
            p, lr=3e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-2, amsgrad=True, foreach=False
        ),
        500,
    ),
    _case(
        "radam_decoupled_decay",
        lambda: optaxtra.radam(1e-3, weight_decay=_decay(1e-3, 1e-2) / 1e-3),
        lambda p: torch.optim.RAdam(
            p, lr=1e-3, weight_decay=1e-2, decoupled_weight_decay=True, foreach=False
        ),
        1000,
    ),
    _case(
        "radam_nondefault",
        lambda: optaxtra.radam(1e-3, 0.8, 0.99, 1e-6, weight_decay=_decay(1e-3, 0.1) / 1e-3),
        lambda p: torch.optim.RAdam(
            p, lr=1e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1,
            decoupled_weight_decay=True, foreach=False,
        ),
        500,
    ),
    _case(
        "radam_l2",
        lambda: _radam_l2(1e-3, 1e-2),
        lambda p: torch.optim.RAdam(p, lr=1e-3, weight_decay=1e-2, foreach=False),
        500,
    ),
    # A large eps makes its placement visible: PyTorch adds it to sqrt(v) before the bias
    # correction, i.e. eps / sqrt(1 - b2^t) on the v_hat scale.
    _case(
        "radam_large_eps_uncorrected",
        lambda: optaxtra.radam(1e-3, eps=1e-3),
        lambda p: torch.optim.RAdam(p, lr=1e-3, eps=1e-3, foreach=False),
        500,
    ),
    # The piece's own default placement (radam passes its own explicitly).
    _case(
        "radam_piece_large_eps_default_placement",
        lambda: optax.chain(
            optaxtra.scale_by_radam_rectifier(eps=1e-3), optaxtra.scale_by_learning_rate(1e-3)
        ),
        lambda p: torch.optim.RAdam(p, lr=1e-3, eps=1e-3, foreach=False),
        500,
    ),
    _case(
        "radam_large_eps_as_corrected_schedule",
        lambda: optaxtra.radam(
            1e-3, eps=_corrected_eps_schedule(1e-3, 0.999), eps_placement="corrected"
        ),
        lambda p: torch.optim.RAdam(p, lr=1e-3, eps=1e-3, foreach=False),
        500,
    ),
    _case(
        "sgd",
        lambda: optaxtra.sgd(1e-2),
        lambda p: torch.optim.SGD(p, lr=1e-2, foreach=False),
        500,
    ),
    _case(
        "sgd_momentum_l2",
        lambda: optaxtra.sgd(1e-2, momentum=0.9, weight_decay=1e-3),
        lambda p: torch.optim.SGD(p, lr=1e-2, momentum=0.9, weight_decay=1e-3, foreach=False),
        1000,
    ),
    _case(
        "sgd_nesterov_l2",
        lambda: optaxtra.sgd(5e-3, momentum=0.8, nesterov=True, weight_decay=1e-2),
        lambda p: torch.optim.SGD(
            p, lr=5e-3, momentum=0.8, nesterov=True, weight_decay=1e-2, foreach=False
        ),
        500,
    ),
    _case(
        "lamb_torch_optimizer_defaults",
        lambda: optaxtra.lamb(
            1e-3, max_weight_norm=10, bias_correction=False, eps_placement="uncorrected"
        ),
        lambda p: torch_optimizer.Lamb(p, lr=1e-3),
        500,
    ),
    _case(
        "lamb_weight_decay_nondefault",
        lambda: optaxtra.lamb(
            2e-3, 0.8, 0.99, 1e-4, weight_decay=0.1, max_weight_norm=10,
            bias_correction=False, eps_placement="uncorrected",
        ),
        lambda p: torch_optimizer.Lamb(p, lr=2e-3, betas=(0.8, 0.99), eps=1e-4, weight_decay=0.1),
        500,
    ),
    # debias=True multiplies the whole step, trust ratio included, by sqrt(1-b2^t)/(1-b1^t): an LR
    # schedule around uncorrected moments, not optaxtra's bias_correction=True (see the test below).
    _case(
        "lamb_debias_as_lr_schedule",
        lambda: optaxtra.lamb(
            _lamb_debias_lr(1e-3, 0.9, 0.999), weight_decay=1e-2, max_weight_norm=10,
            bias_correction=False, eps_placement="uncorrected",
        ),
        lambda p: torch_optimizer.Lamb(p, lr=1e-3, weight_decay=1e-2, debias=True),
        500,
    ),
    # torch-optimizer's LARS is the paper's: the norms apart, eps 1e-8, tc 0.01, and a momentum
    # buffer of unscaled steps, multiplied by the (constant) LR afterwards.
    _case(
        "lars_paper_form_torch_optimizer",
        lambda: optaxtra.lars(
            0.1, weight_decay=1e-2, trust_coefficient=0.01, eps=1e-8, momentum=0.9, separate_norms=True
        ),
        lambda p: torch_optimizer.LARS(p, lr=0.1, momentum=0.9, weight_decay=1e-2),
        500,
    ),
    _case(
        "ranger_defaults",
        lambda: optaxtra.ranger(),
        lambda p: pytorch_ranger.Ranger(p),
        1000,
        ranger_deprecation,
    ),
    _case(
        "ranger_weight_decay",
        lambda: optaxtra.ranger(1e-3, weight_decay=1e-2),
        lambda p: pytorch_ranger.Ranger(p, lr=1e-3, weight_decay=1e-2),
        500,
        ranger_deprecation,
    ),
    _case(
        "ranger_nondefault",
        lambda: optaxtra.ranger(
            3e-3, 0.8, 0.99, 1e-6, weight_decay=1e-3, sync_period=4, slow_step_size=0.6
        ),
        lambda p: pytorch_ranger.Ranger(
            p, lr=3e-3, alpha=0.6, k=4, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-3
        ),
        500,
        ranger_deprecation,
    ),
]


@pytest.mark.parametrize(("ours", "reference", "steps"), TORCH_CASES)
def test_trajectory_matches_pytorch(ours, reference, steps):
    actual, _ = run_optax(ours(), steps)
    expected = run_torch(reference, steps)
    assert_trajectories_close(actual, expected, rtol=RTOL, atol=ATOL)


def test_torch_optimizer_ranger_is_pytorch_ranger():
    # torch-optimizer 0.3.0 re-exports pytorch_ranger's class: one parity test covers both.
    assert torch_optimizer.Ranger is pytorch_ranger.Ranger


def test_radam_eps_placement_matters_against_pytorch():
    """eps added to sqrt(v_hat) (optax's placement) does not reproduce PyTorch's RAdam."""
    actual, _ = run_optax(optaxtra.radam(1e-3, eps=1e-3, eps_placement="corrected"), 500)
    expected = run_torch(lambda p: torch.optim.RAdam(p, lr=1e-3, eps=1e-3, foreach=False), 500)
    with pytest.raises(AssertionError):
        assert_trajectories_close(actual, expected, rtol=RTOL, atol=ATOL)


def test_torch_decoupled_decay_factor_is_rounded_to_float32():
    """PyTorch's decay multiplies by ``float32(1 - lr*wd)``, bit for bit, not by ``1 - lr*wd``.

    With zero gradients AdamW's adaptive step is 0 and only the decay acts,
    so 200 steps of it are reproduced exactly by numpy float32 arithmetic with
    that factor; a factor rounded differently gives other params.
    """
    lr, wd, steps = 1e-3, 1e-2, 200
    start = np.array([1.0, 3.0, -5.0, 0.7], np.float32)
    param = torch.tensor(start, requires_grad=True)
    optimizer = torch.optim.AdamW([param], lr=lr, weight_decay=wd, foreach=False)
    expected = start.copy()
    rounded_factor = np.float32(1 - lr * wd)
    decrement = np.float32(lr * wd)
    other = start.copy()
    for _ in range(steps):
        param.grad = torch.zeros_like(param)
        optimizer.step()
        expected = expected * rounded_factor
        other = other - decrement * other
    np.testing.assert_array_equal(param.detach().numpy(), expected)
    assert np.any(expected != other)
    assert torch_applied_decay(lr, wd) == pytest.approx(1.00136e-5, rel=1e-5)


@pytest.mark.parametrize(
    ("scale_decay_by_lr", "expected_factor"), [(True, 1 - 0.5 * 0.1), (False, 1 - 0.1)]
)
def test_adamw_decay_coupled_to_lr_or_not(scale_decay_by_lr, expected_factor):
    tx = optaxtra.adamw(0.5, weight_decay=0.1, scale_decay_by_lr=scale_decay_by_lr)
    params = jnp.array([2.0, -4.0])
    updates, _ = tx.update(jnp.zeros(2), tx.init(params), params)
    new_params = optax.apply_updates(params, updates)
    np.testing.assert_allclose(new_params, expected_factor * params, rtol=1e-6)


def _inner_then_lookahead(inner, sync_period, slow_step_size, steps):
    """Our Lookahead started the way torch-optimizer's starts.

    torch-optimizer's ``Lookahead`` creates the slow weights on its first
    step, *after* the inner step, as a copy of the new fast weights, and
    synchronises whenever its counter is 0 before incrementing: at steps 1
    (a no-op, slow == fast), k + 1, 2k + 1, ... optaxtra's (the paper's)
    starts the slow weights at the initial params and synchronises at steps k,
    2k, ... So after one plain inner step, a ``LookaheadState`` built by hand
    with the slow weights at the new params and the inner state carried over
    reproduces torch-optimizer from its step 2 on.
    """
    first, inner_state = run_optax(inner, 1)
    params = {name: first[name][0] for name in NAMES}
    state = optaxtra.LookaheadState(
        count=jnp.zeros([], jnp.int32),
        slow=jax.tree.map(jnp.asarray, params),
        inner=inner_state,
        synced=jnp.zeros([], bool),
    )
    tx = optaxtra.lookahead(inner, sync_period, slow_step_size)
    rest, _ = run_optax(tx, steps - 1, params=params, state=state)
    return {name: np.concatenate([first[name], rest[name]]) for name in NAMES}


def _torch_lookahead(sync_period, slow_step_size):
    return lambda p: torch_optimizer.Lookahead(
        torch.optim.Adam(p, lr=3e-3, foreach=False), k=sync_period, alpha=slow_step_size
    )


def test_torch_optimizer_lars_without_decay_is_momentum_sgd():
    """torch-optimizer's LARS skips the trust ratio when ``weight_decay == 0``; optaxtra's does not.

    Its ratio is applied only under ``if weight_decay != 0`` (and only where
    both norms are nonzero), so at 0 it is SGD with momentum, which is what
    ``optaxtra.sgd`` gives; ``lars`` keeps the ratio at every decay, as the
    LARS paper and optax do.
    """
    reference = run_torch(lambda p: torch_optimizer.LARS(p, lr=0.1, momentum=0.9), 300)
    as_sgd, _ = run_optax(optaxtra.sgd(0.1, momentum=0.9), 300)
    assert_trajectories_close(as_sgd, reference, rtol=RTOL, atol=ATOL)
    lars, _ = run_optax(
        optaxtra.lars(0.1, trust_coefficient=0.01, eps=1e-8, momentum=0.9, separate_norms=True), 300
    )
    with pytest.raises(AssertionError):
        assert_trajectories_close(lars, reference, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(("sync_period", "slow_step_size"), [(5, 0.5), (3, 0.8)])
def test_lookahead_matches_torch_optimizer_after_its_first_step(sync_period, slow_step_size):
    steps = 500
    actual = _inner_then_lookahead(optaxtra.adam(3e-3), sync_period, slow_step_size, steps)
    expected = run_torch(_torch_lookahead(sync_period, slow_step_size), steps)
    assert_trajectories_close(actual, expected, rtol=RTOL, atol=ATOL)


def test_lookahead_started_at_the_initial_params_is_not_torch_optimizers():
    """Without the hand-built start, the synchronisation steps differ (k vs k + 1)."""
    steps = 12
    plain, _ = run_optax(optaxtra.lookahead(optaxtra.adam(3e-3), 5, 0.5), steps)
    expected = run_torch(_torch_lookahead(5, 0.5), steps)
    assert_trajectories_close(
        {name: plain[name][:4] for name in NAMES}, {name: expected[name][:4] for name in NAMES},
        rtol=RTOL, atol=ATOL,
    )
    with pytest.raises(AssertionError, match="first differs at step 5"):
        assert_trajectories_close(plain, expected, rtol=RTOL, atol=ATOL)


def test_lamb_debias_scales_the_step_length_not_the_direction():
    """torch-optimizer's ``debias=True`` is not optaxtra's ``bias_correction=True``.

    The trust ratio makes each layer's step ``lr * ||w|| * u / ||u||``: its
    length no longer depends on the scale of the Adam direction ``u``.
    optaxtra (the LAMB paper, optax) bias-corrects ``m`` and ``v`` inside
    ``u``, which with decay only shifts the balance between the adaptive part
    and ``wd * w``; the step length stays ``lr * ||w||``. torch-optimizer
    multiplies the step outside the trust ratio by ``sqrt(1 - b2^t) / (1 -
    b1^t)``, 0.316 at step 1 for the default betas: a warm-up of the step
    length. That is an LR schedule, which is what ``lamb_debias_as_lr_schedule``
    above checks over 500 steps.
    """
    lr = 0.1  # one long step, so that its length is not lost to float32 cancellation
    theirs = run_torch(lambda p: torch_optimizer.Lamb(p, lr=lr, debias=True), 1)
    ours, _ = run_optax(optaxtra.lamb(lr, max_weight_norm=10, eps_placement="uncorrected"), 1)
    start = initial_params()
    for name in ("kernel", "scale", "shift"):  # "bias" starts at 0, where the ratio is 1
        their_length = np.linalg.norm(theirs[name][0] - start[name])
        our_length = np.linalg.norm(ours[name][0] - start[name])
        weight_norm = min(float(np.linalg.norm(start[name])), 10.0)
        np.testing.assert_allclose(our_length, lr * weight_norm, rtol=1e-5)
        debias_1 = math.sqrt(1 - 0.999) / (1 - 0.9)
        np.testing.assert_allclose(their_length / our_length, debias_1, rtol=1e-5)


def test_radam_first_six_steps_switch_at_step_six():
    """Step by step against PyTorch: momentum SGD for steps 1-5, rectified from step 6.

    At ``b2 = 0.999`` the exact ``rho_t`` are 4.996 at step 5 and 5.994 at
    step 6, so ``rho_t > 5`` first holds at step 6. ``r_6 = 0.026``: the
    adaptive step is some 40x shorter than the momentum steps before it, so a
    switch one step early or late fails the comparison by far.
    """
    lr, b1, b2 = 1e-2, 0.9, 0.999
    tx = optax.chain(
        optaxtra.scale_by_radam_rectifier(b1, b2), optaxtra.scale_by_learning_rate(lr)
    )

    @jax.jit
    def step(params, state):
        updates, state = tx.update(jax.grad(loss_jax)(params), state, params)
        return optax.apply_updates(params, updates), updates, state

    expected = run_torch(lambda p: torch.optim.RAdam(p, lr=lr, betas=(b1, b2), foreach=False), 6)
    params = jax.tree.map(jnp.asarray, initial_params())
    state = tx.init(params)
    rho_inf = 2 / (1 - b2) - 1
    for t in range(1, 7):
        params, updates, state = step(params, state)
        for name in NAMES:  # six steps: a few float32 roundings apart at most
            np.testing.assert_allclose(params[name], expected[name][t - 1], rtol=1e-6, atol=1e-7)
        rectifier = state[0]
        exact_rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
        np.testing.assert_allclose(float(rectifier.rho), exact_rho, rtol=1e-6)
        if t <= 5:
            assert exact_rho < 5 and float(rectifier.rectification) == 0.0
            for name in NAMES:
                m_hat = rectifier.mu[name] / (1 - b1**t)
                np.testing.assert_allclose(updates[name], -lr * m_hat, rtol=1e-6)
        else:
            exact_r = math.sqrt(
                (exact_rho - 4) * (exact_rho - 2) * rho_inf
                / ((rho_inf - 4) * (rho_inf - 2) * exact_rho)
            )
            np.testing.assert_allclose(float(rectifier.rectification), exact_r, rtol=1e-5)
