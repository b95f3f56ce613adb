"""ADOPT against the authors' torch-adopt 0.1.0, pytorch-optimizer 4.1's ``ADOPT``, timm's ``Adopt``
and ``optax.contrib.adopt``.

The closed-loop rows run each optimizer on ``tests/_problems.py``'s problem in
float32 and compare the params after every step at ``rtol=1e-5, atol=1e-6``
(see ``tests/test_parity_torch.py`` for why that tolerance). On that smooth
problem ADOPT's clip rarely binds, so the conventions that differ in the clip
(the step it reads, its exponent) are pinned open loop as well: the same
gradient sequence, growing so that the clip binds at every step, is fed to
both implementations and the params compared after every step.
"""

from __future__ import annotations

import adopt as torch_adopt
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
    initial_params,
    NAMES,
    run_optax,
    run_torch,
    run_torch_open_loop,
)
from tests._timm import timm_optim_module

RTOL = 1e-5
ATOL = 1e-6

# torch-adopt 0.1.0 calls ``Optimizer._cuda_graph_capture_health_check`` and
# ``torch._utils.is_compiling``, which PyTorch 2.13 deprecates with a warning on every step;
# nothing on our side can avoid them.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Use _accelerator_graph_capture_health_check instead:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:`torch._utils.is_compiling` is deprecated:UserWarning"),
]


def f32(x: float) -> float:
    return float(np.float32(x))


def applied_decay(lr: float, weight_decay: float) -> float:
    """The decay ``p.mul_(1 - lr * wd)`` applies in float32 (pytorch-optimizer's decoupled decay).

    See ``tests/test_parity_torch.py``'s ``torch_applied_decay``: ``1 - lr * wd``
    rounded to float32 is 0.14% away at ``lr * wd = 1e-5``. torch-adopt and
    timm add ``-lr * wd * p`` instead and need no such correction.
    """
    return 1.0 - float(np.float32(1.0 - lr * weight_decay))


def _timm_adopt(params, **kwargs):
    return timm_optim_module("adopt").Adopt(params, foreach=False, **kwargs)


CLOSED_LOOP = [
    _case(
        "torch_adopt_defaults",
        lambda: optaxtra.adopt(1e-3),
        lambda p: torch_adopt.ADOPT(p, lr=1e-3, foreach=False),
        1000,
    ),
    _case(
        "torch_adopt_l2_nondefault",
        lambda: optaxtra.adopt(3e-3, 0.8, 0.99, 1e-3, weight_decay=1e-2),
        lambda p: torch_adopt.ADOPT(
            p, lr=3e-3, betas=(0.8, 0.99), eps=1e-3, weight_decay=1e-2, foreach=False
        ),
        500,
    ),
    _case(
        "torch_adopt_decoupled",
        lambda: optaxtra.adopt(1e-3, weight_decay=0.1, decouple=True),
        lambda p: torch_adopt.ADOPT(p, lr=1e-3, weight_decay=0.1, decouple=True, foreach=False),
        500,
    ),
    _case(
        "torch_adopt_without_clip",
        lambda: optaxtra.adopt(1e-3, b2=0.999, clip_exponent=None),
        lambda p: torch_adopt.ADOPT(p, lr=1e-3, betas=(0.9, 0.999), clip_lambda=None, foreach=False),
        500,
    ),
    _case(
        "pytorch_optimizer_defaults",
        lambda: optaxtra.adopt(1e-3, clip_step="current"),
        lambda p: pytorch_optimizer.ADOPT(p, lr=1e-3, foreach=False),
        1000,
    ),
    _case(
        "pytorch_optimizer_decoupled_decays_on_update_one",
        lambda: optaxtra.adopt(
            1e-3, 0.8, 0.99, weight_decay=applied_decay(1e-3, 0.1) / 1e-3, decouple=True,
            decay_first_update=True, clip_step="current",
        ),
        lambda p: pytorch_optimizer.ADOPT(
            p, lr=1e-3, betas=(0.8, 0.99), weight_decay=0.1, weight_decouple=True, foreach=False
        ),
        500,
    ),
    _case(
        "pytorch_optimizer_l2",
        lambda: optaxtra.adopt(3e-3, weight_decay=1e-2, clip_step="current"),
        lambda p: pytorch_optimizer.ADOPT(p, lr=3e-3, weight_decay=1e-2, foreach=False),
        500,
    ),
    _case(
        "timm_defaults",
        lambda: optaxtra.adopt(1e-3, clip_exponent=0.333),
        lambda p: _timm_adopt(p, lr=1e-3),
        1000,
    ),
    _case(
        "timm_decoupled",
        lambda: optaxtra.adopt(1e-3, 0.8, 0.99, weight_decay=0.1, decouple=True, clip_exponent=0.333),
        lambda p: _timm_adopt(p, lr=1e-3, betas=(0.8, 0.99), weight_decay=0.1, decoupled=True),
        500,
    ),
]


@pytest.mark.parametrize("ours, reference, steps", CLOSED_LOOP)
def test_trajectory_matches_reference(ours, reference, steps):
    actual, _ = run_optax(ours(), steps)
    assert_trajectories_close(actual, run_torch(reference, steps), rtol=RTOL, atol=ATOL)


def _run_optax_reference(tx, steps):
    with jax.numpy_dtype_promotion("standard"):
        return run_optax(tx, steps)[0]


@pytest.mark.parametrize(
    "ours, reference",
    [
        pytest.param(
            lambda: optaxtra.adopt(1e-3, f32(0.9), f32(0.9999)),
            lambda: optax.contrib.adopt(1e-3, f32(0.9), f32(0.9999)),
            id="defaults",
        ),
        pytest.param(
            lambda: optaxtra.adopt(3e-3, f32(0.8), f32(0.99), 1e-3, clip_exponent=None),
            lambda: optax.contrib.adopt(3e-3, f32(0.8), f32(0.99), 1e-3, use_clipping=False),
            id="without_clip",
        ),
    ],
)
def test_trajectory_matches_optax_contrib(ours, reference):
    """optax.contrib.adopt (no weight decay) is the authors' rule: clip ``count**0.25``, first update 0."""
    actual, _ = run_optax(ours(), 1000)
    assert_trajectories_close(actual, _run_optax_reference(reference(), 1000), rtol=RTOL, atol=ATOL)


# Open loop: a gradient sequence whose scale grows by 10% a step, so that g_t / sqrt(v_{t-1})
# exceeds every clip in play and the clip decides each update.
STEPS = 60
_rng = np.random.default_rng(2411)
GRADS = {
    name: (_rng.normal(size=(STEPS, *np.shape(value))) * 1.1 ** np.arange(STEPS).reshape((-1,) + (1,) * np.ndim(value)))
    .astype(np.float32)
    for name, value in initial_params().items()
}


def _open_loop_ours(tx: optax.GradientTransformation) -> dict[str, np.ndarray]:
    params = jax.tree.map(jnp.asarray, initial_params())

    def step(carry, g):
        params, state = carry
        updates, state = tx.update(g, state, params)
        params = optax.apply_updates(params, updates)
        return (params, state), params

    run = jax.jit(lambda c, g: jax.lax.scan(step, c, g)[1])
    trajectory = run((params, tx.init(params)), jax.tree.map(jnp.asarray, GRADS))
    return {name: np.asarray(trajectory[name]) for name in NAMES}




OPEN_LOOP = [
    pytest.param(
        lambda: optaxtra.adopt(1e-2),
        lambda p: torch_adopt.ADOPT(p, lr=1e-2, foreach=False),
        id="torch_adopt_clip_reads_t_minus_1",
    ),
    pytest.param(
        lambda: optaxtra.adopt(1e-2, clip_step="current"),
        lambda p: pytorch_optimizer.ADOPT(p, lr=1e-2, foreach=False),
        id="pytorch_optimizer_clip_reads_t",
    ),
    pytest.param(
        lambda: optaxtra.adopt(1e-2, clip_exponent=0.333),
        lambda p: _timm_adopt(p, lr=1e-2),
        id="timm_clip_exponent_0_333",
    ),
    pytest.param(
        lambda: optaxtra.adopt(1e-2, clip_exponent=0.5, weight_decay=0.5, decouple=True),
        lambda p: torch_adopt.ADOPT(
            p, lr=1e-2, clip_lambda=lambda step: step**0.5, weight_decay=0.5, decouple=True, foreach=False
        ),
        id="torch_adopt_custom_exponent_decoupled",
    ),
]


@pytest.mark.parametrize("ours, reference", OPEN_LOOP)
def test_clip_conventions_match_their_reference_open_loop(ours, reference):
    assert_trajectories_close(_open_loop_ours(ours()), run_torch_open_loop(reference, GRADS), rtol=RTOL, atol=ATOL)


def _relative_gap(a, b):
    return max(float(np.max(np.abs(a[n] - b[n]) / np.maximum(np.abs(b[n]), 1e-3))) for n in NAMES)


@pytest.mark.parametrize(
    "option",
    [{"clip_step": "current"}, {"clip_exponent": 0.333}, {"clip_exponent": None}],
    ids=["clip_step", "clip_exponent", "no_clip"],
)
def test_each_clip_convention_changes_the_trajectory(option):
    """Each named option moves the params far beyond the parity tolerance on the same gradients."""
    default = _open_loop_ours(optaxtra.adopt(1e-2))
    other = _open_loop_ours(optaxtra.adopt(1e-2, **option))
    assert _relative_gap(other, default) > 1e-3


def test_decoupled_decay_on_the_first_update_is_the_only_difference():
    """pytorch-optimizer decays on update 1 (which moves nothing else); torch-adopt does not."""
    params = {"w": jnp.array([2.0, -4.0])}
    grads = {"w": jnp.array([1.0, 1.0])}
    for decay_first_update, expected in ((False, [2.0, -4.0]), (True, [2.0 - 0.1 * 0.5 * 2.0, -4.0 + 0.1 * 0.5 * 4.0])):
        tx = optaxtra.adopt(0.1, weight_decay=0.5, decouple=True, decay_first_update=decay_first_update)
        updates, _ = tx.update(grads, tx.init(params), params)
        np.testing.assert_allclose(optax.apply_updates(params, updates)["w"], expected, rtol=1e-6)


def test_first_update_only_initialises_v_and_records_the_clip():
    tx = optaxtra.scale_by_adopt(b2=0.5)
    state = tx.init(jnp.zeros(3))
    updates, state = tx.update(jnp.array([3.0, -1.0, 0.0]), state)
    np.testing.assert_array_equal(updates, 0.0)
    np.testing.assert_array_equal(state.nu, [9.0, 1.0, 0.0])
    assert float(optaxtra.diagnostics(state)["adopt/clip"]) == 0.0
    # Update 2: g / max(sqrt(v_1), eps) = [1/3, 8, 0 / 1e-6], clipped at 1**0.25 = 1.
    updates, state = tx.update(jnp.array([1.0, 8.0, 0.0]), state)
    np.testing.assert_allclose(updates, [0.1 / 3, 0.1, 0.0], rtol=1e-6)
    np.testing.assert_allclose(state.nu, [5.0, 32.5, 0.0])
    for expected in (2.0 ** 0.25, 3.0 ** 0.25):
        _, state = tx.update(jnp.ones(3), state)
        np.testing.assert_allclose(optaxtra.diagnostics(state)["adopt/clip"], expected, rtol=1e-6)


def test_eps_is_a_lower_bound_of_the_denominator():
    """``max(sqrt(v), eps)``, not ``sqrt(v) + eps``: with eps = 1 and v_1 = 0.25 the divisor is 1."""
    tx = optaxtra.scale_by_adopt(b1=0.0, eps=1.0, clip_exponent=None)
    state = tx.init(jnp.zeros(2))
    _, state = tx.update(jnp.array([0.5, 4.0]), state)
    updates, _ = tx.update(jnp.array([0.5, 4.0]), state)
    np.testing.assert_allclose(updates, [0.5, 1.0], rtol=1e-6)


@pytest.mark.parametrize(
    "make, error, words",
    [
        (lambda: optaxtra.adopt(clip_exponent=-0.25), ValueError, ("clip_exponent", "-0.25", "[0, inf)")),
        (lambda: optaxtra.adopt(clip_exponent=lambda c: 0.25), TypeError, ("clip_exponent", "schedule")),
        (lambda: optaxtra.adopt(clip_step="next"), ValueError, ("clip_step", "'previous'", "'next'")),
        (lambda: optaxtra.adopt(decouple=1), TypeError, ("decouple", "True or False")),
        (lambda: optaxtra.adopt(decay_first_update="no"), TypeError, ("decay_first_update",)),
        (lambda: optaxtra.adopt(weight_decay=-1.0), ValueError, ("weight_decay", "-1.0", "[0, inf)")),
        (lambda: optaxtra.adopt(b2=1.0), ValueError, ("b2", "1.0", "[0, 1)")),
        (lambda: optaxtra.adopt(eps=float("nan")), ValueError, ("eps", "NaN")),
        (lambda: optaxtra.delayed(0.1, steps=-1), ValueError, ("steps", "-1")),
    ],
)
def test_bad_input_names_the_argument_the_value_and_the_range(make, error, words):
    assert_refused(make, error, words)


def test_traced_hyperparameters_pass_construction():
    @jax.jit
    def first_two_steps(b1, eps, clip_exponent, weight_decay):
        tx = optaxtra.adopt(1e-2, b1, eps=eps, clip_exponent=clip_exponent, weight_decay=weight_decay, decouple=True)
        params = jnp.ones(3)
        state = tx.init(params)
        for g in (jnp.ones(3), 3.0 * jnp.ones(3)):
            updates, state = tx.update(g, state, params)
            params = optax.apply_updates(params, updates)
        return params

    out = first_two_steps(jnp.float32(0.5), jnp.float32(1e-6), jnp.float32(0.5), jnp.float32(0.1))
    # Update 2: clip(3 / 1, 1**0.5) = 1, m = 0.5; the decay 0.1 * 1e-2 * 1 applies from update 2 on.
    np.testing.assert_allclose(out, 1.0 - 1e-2 * (0.5 + 0.1), rtol=1e-6)
