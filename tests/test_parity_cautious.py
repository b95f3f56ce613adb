"""Cautious optimizers against timm 1.0 (the C-Optim authors' rule), lion-pytorch 0.2.5 and pytorch-optimizer 4.1.

Each reference runs in float32 on the shared problem (``tests/_problems.py``);
params are compared after every step with ``rtol=1e-5, atol=1e-6`` (see
``tests/test_parity_torch.py`` for why those tolerances).

The mask is a discontinuity: where an entry's direction is within rounding of
zero, two float32 runs a few ulps apart can keep it in one and drop it in the
other, and the whole leaf's rescaling changes with it. The references apply
decoupled decay as ``p * float32(1 - lr * wd)`` and then add the step, two
roundings of ``p`` a step where optaxtra has one; with ``wd = 0.1`` that drift
reaches 1.6e-5 on ``shift`` (about 5) after 100 steps, inside the tolerance,
and on some settings it meets an entry whose momentum crosses zero
(``test_a_mask_decision_near_zero_parts_the_runs`` shows one at step 263).
Those settings are compared step by step along the reference's own
trajectory (``_one_step_trajectory``): every step starts from the
reference's params, so the two roundings do not accumulate.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import pytorch_optimizer
import torch
from lion_pytorch.cautious_lion import Lion as CautiousLion

import optaxtra
from tests._problems import NAMES, assert_trajectories_close, initial_params, loss_jax, run_optax, run_torch
from tests._timm import timm_optim_module
from tests.test_parity_torch import torch_applied_decay

RTOL = 1e-5
ATOL = 1e-6


def _one_step_trajectory(tx: optax.GradientTransformation, reference: dict) -> dict:
    """Where ``tx`` takes each of the reference's params: step ``t`` starts from the reference's ``t - 1``.

    The state (moments, counts) is ``tx``'s own, fed the gradients at the
    reference's params.
    """
    start = {k: jnp.asarray(v) for k, v in initial_params().items()}
    before = {k: jnp.concatenate([start[k][None], jnp.asarray(reference[k][:-1])]) for k in NAMES}

    def step(state, params):
        updates, state = tx.update(jax.grad(loss_jax)(params), state, params)
        return state, optax.apply_updates(params, updates)

    _, after = jax.jit(lambda s, p: jax.lax.scan(step, s, p))(tx.init(start), before)
    return {k: np.asarray(v) for k, v in after.items()}


def _timm_cadamw(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    adamw = timm_optim_module("adamw")
    return lambda p: adamw.AdamWLegacy(
        p, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, caution=True, foreach=False
    )


@pytest.mark.parametrize(
    "lr, b1, b2, eps, weight_decay, steps",
    [
        pytest.param(1e-3, 0.9, 0.999, 1e-8, 1e-2, 1000, id="defaults"),
        pytest.param(3e-3, 0.8, 0.99, 1e-6, 0.0, 500, id="betas_eps_no_decay"),
        pytest.param(1e-3, 0.8, 0.99, 1e-6, 0.1, 500, id="strong_decay"),
    ],
)
def test_cautious_adamw_matches_timm_cadamw(lr, b1, b2, eps, weight_decay, steps):
    """timm's ``cadamw`` masks ``exp_avg * grad > 0``, the same sign as the Adam direction, and not the decay."""
    decay = torch_applied_decay(lr, weight_decay) / lr
    ours, _ = run_optax(optaxtra.cautious_adamw(lr, b1, b2, eps, weight_decay=decay), steps)
    expected = run_torch(_timm_cadamw(lr, (b1, b2), eps, weight_decay), steps)
    assert_trajectories_close(ours, expected, rtol=RTOL, atol=ATOL)


def test_cautious_adamw_matches_timm_step_by_step_where_a_mask_decision_is_a_tie():
    lr, wd = 1e-3, 0.1
    expected = run_torch(_timm_cadamw(lr, (0.9, 0.95), 1e-8, wd), 500)
    ours = _one_step_trajectory(optaxtra.cautious_adamw(lr, 0.9, 0.95, weight_decay=torch_applied_decay(lr, wd) / lr), expected)
    assert_trajectories_close(ours, expected, rtol=RTOL, atol=ATOL)


def test_a_mask_decision_near_zero_parts_the_runs():
    """b2 = 0.95, wd = 0.1, closed loop: the runs agree for 254 steps; the 255th meets a gradient entry of 1e-9."""
    lr, wd = 1e-3, 0.1
    tx = optaxtra.cautious_adamw(lr, 0.9, 0.95, weight_decay=torch_applied_decay(lr, wd) / lr)
    ours, _ = run_optax(tx, 254)
    expected = run_torch(_timm_cadamw(lr, (0.9, 0.95), 1e-8, wd), 255)
    assert_trajectories_close(ours, {k: v[:254] for k, v in expected.items()}, rtol=RTOL, atol=ATOL)
    grad = jax.grad(loss_jax)({k: jnp.asarray(ours[k][-1]) for k in NAMES})["kernel"]
    assert abs(float(grad[2, 1])) < 1e-8  # the sign of m * g is the sign of a rounding error
    ours_next, _ = run_optax(tx, 255)
    assert np.max(np.abs(ours_next["kernel"][-1] - expected["kernel"][-1])) > 1e-5  # the leaf's rescaling moved


def test_the_mask_changes_the_trajectory():
    """The parity above is not AdamW's: caution drops entries on this problem."""
    ours, state = run_optax(optaxtra.cautious_adamw(3e-3, weight_decay=0.0), 500)
    plain = run_torch(lambda p: torch.optim.AdamW(p, lr=3e-3, weight_decay=0.0, foreach=False), 500)
    assert max(np.max(np.abs(ours[k] - plain[k])) for k in ours) > 1e-3
    stats = optaxtra.diagnostics(state)
    assert 0.0 < float(stats["cautious/kept_min"]) <= float(stats["cautious/kept_mean"]) <= 1.0


def test_wrapping_a_whole_adamw_matches_timm_without_decay():
    """``orientation="descent"`` reads a whole optimizer's (negated) step; without decay it is cadamw."""
    tx = optaxtra.cautious(optaxtra.adamw(3e-3, weight_decay=0.0))
    ours, _ = run_optax(tx, 500)
    expected = run_torch(_timm_cadamw(3e-3, weight_decay=0.0), 500)
    assert_trajectories_close(ours, expected, rtol=RTOL, atol=ATOL)


def test_wrapping_a_whole_optimizer_masks_its_decay_too():
    """Pinned on one step: the decay moves ``p`` against the gradient's sign, and is dropped with it."""
    params = {"w": jnp.array([1.0, -0.5, 2.0])}
    grads = {"w": jnp.array([0.01, 0.5, -1e-3])}
    lr, wd = 0.1, 1.0
    whole = optaxtra.cautious(
        optax.chain(optaxtra.scale_by_adam(eps=0.0), optaxtra.add_decayed_weights(wd), optaxtra.scale_by_learning_rate(lr))
    )
    updates, _ = whole.update(grads, whole.init(params), params)
    step = -lr * (np.sign(grads["w"]) + wd * np.asarray(params["w"]))  # with eps = 0 Adam's first direction is sign(g)
    keep = step * np.asarray(grads["w"]) < 0
    np.testing.assert_allclose(updates["w"], step * keep / keep.mean(), rtol=1e-6)
    assert keep.tolist() == [True, True, False]  # the last: sign(g) = -1, but the decay outweighs it
    split = optax.chain(
        optaxtra.cautious(optaxtra.scale_by_adam(eps=0.0), orientation="direction"),
        optaxtra.add_decayed_weights(wd),
        optaxtra.scale_by_learning_rate(lr),
    )
    updates, _ = split.update(grads, split.init(params), params)
    np.testing.assert_allclose(updates["w"], step, rtol=1e-6)  # every direction entry agrees


def _cautious_lion(lr, b1, b2, weight_decay, factor):
    decay = torch_applied_decay(lr, weight_decay) / lr
    return optaxtra.cautious_lion(lr, b1, b2, weight_decay=decay, factor=factor, floor=1e-5)


@pytest.mark.parametrize(
    "lr, b1, b2, factor",
    [
        pytest.param(1e-3, 0.9, 0.99, 0.0, id="mask"),
        pytest.param(3e-3, 0.95, 0.98, 0.0, id="betas"),
        pytest.param(1e-3, 0.9, 0.99, 0.3, id="factor"),
    ],
)
def test_cautious_lion_matches_lion_pytorch(lr, b1, b2, factor):
    """lion-pytorch's ``cautious_factor``: masked entries times ``factor``, mean floored at 1e-5."""
    ours, _ = run_optax(_cautious_lion(lr, b1, b2, 0.0, factor), 500)
    expected = run_torch(lambda p: CautiousLion(p, lr=lr, betas=(b1, b2), cautious_factor=factor), 500)
    assert_trajectories_close(ours, expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("weight_decay, factor", [(0.1, 0.0), (1e-2, 0.3)])
def test_cautious_lion_with_decay_matches_lion_pytorch_step_by_step(weight_decay, factor):
    """The decay is not masked (``cautious_wd=False``); compared along lion-pytorch's trajectory (module docstring)."""
    lr = 1e-3
    expected = run_torch(
        lambda p: CautiousLion(p, lr=lr, betas=(0.9, 0.99), weight_decay=weight_decay, cautious_factor=factor), 500
    )
    ours = _one_step_trajectory(_cautious_lion(lr, 0.9, 0.99, weight_decay, factor), expected)
    assert_trajectories_close(ours, expected, rtol=RTOL, atol=ATOL)


def test_count_plus_one_matches_pytorch_optimizer():
    """pytorch-optimizer's ``cautious=True`` rescales by ``numel / (sum(mask) + 1)``."""
    lr = 1e-3
    ours, _ = run_optax(optaxtra.cautious_lion(lr, rescale="count_plus_one"), 500)
    expected = run_torch(lambda p: pytorch_optimizer.Lion(p, lr=lr, cautious=True, foreach=False), 500)
    assert_trajectories_close(ours, expected, rtol=RTOL, atol=ATOL)


def test_count_plus_one_differs_from_the_authors_rule():
    """With every entry kept the authors' rule is the identity; pytorch-optimizer's scales by n / (n + 1)."""
    inner = optax.identity()
    grads = jnp.array([1.0, -2.0, 3.0])
    for rescale, expected in (("mean", grads), ("count_plus_one", grads * 3 / 4)):
        tx = optaxtra.cautious(inner, orientation="direction", rescale=rescale)
        updates, _ = tx.update(grads, tx.init(grads))
        np.testing.assert_allclose(updates, expected, rtol=1e-7)


def test_floor_bounds_the_rescaling():
    grads = jnp.concatenate([jnp.ones(1), -jnp.ones(9999)])
    direction = jnp.ones(10000)  # agrees with the gradient on one entry of 10,000
    tx = optaxtra.cautious(optax.GradientTransformation(lambda p: (), lambda u, s, p=None: (direction, s)),
                           orientation="direction")
    updates, state = tx.update(grads, tx.init(grads))
    np.testing.assert_allclose(updates[0], 1e3, rtol=1e-6)  # 1 / max(1e-4, 1e-3)
    np.testing.assert_array_equal(updates[1:], 0.0)
    np.testing.assert_allclose(state.kept, 1e-4, rtol=1e-6)


def test_nonfinite_updates_stay_nonfinite_where_masked():
    tx = optaxtra.cautious(optax.identity(), orientation="descent")
    updates, _ = tx.update(jnp.array([jnp.nan, 1.0, jnp.inf]), tx.init(jnp.zeros(3)))
    assert np.isnan(np.asarray(updates)[[0, 2]]).all()  # masked (NaN * 0), yet still NaN
    assert float(updates[1]) == 0.0  # a finite entry pointing up the gradient is dropped


def test_frozen_leaves_and_diagnostics():
    params = {"w": jnp.array([1.0, 2.0]), "step": jnp.array(3, jnp.int32)}
    tx = optaxtra.cautious(optaxtra.adam(0.1))
    state = tx.init(params)
    assert state.kept["step"] is None
    grads = {"w": jnp.array([1.0, -1.0]), "step": jnp.zeros((), jnp.int32)}
    updates, state = jax.jit(tx.update)(grads, state, params)
    assert updates["step"].dtype == jnp.int32 and int(updates["step"]) == 0
    assert float(optaxtra.diagnostics(state)["cautious/kept_mean"]) == 1.0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"orientation": "up"}, "orientation"),
        ({"rescale": "sum"}, "rescale"),
        ({"floor": 0.0}, "floor"),
        ({"factor": 1.5}, "factor"),
        ({"factor": -0.1}, "factor"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        optaxtra.cautious(optax.identity(), **kwargs)


def test_inner_must_be_a_transformation():
    with pytest.raises(TypeError, match="inner"):
        optaxtra.cautious(optaxtra.adam)


def test_traced_factor_compiles_once():
    grads = jnp.array([1.0, -1.0])
    direction = jnp.array([1.0, 1.0])
    fixed = optax.GradientTransformation(lambda p: (), lambda u, s, p=None: (direction, s))

    @jax.jit
    def run(factor):
        tx = optaxtra.cautious(fixed, orientation="direction", factor=factor)
        return tx.update(grads, tx.init(grads))[0]

    np.testing.assert_allclose(run(0.5), [1 / 0.75, 0.5 / 0.75], rtol=1e-6)
    np.testing.assert_allclose(run(0.0), [2.0, 0.0], rtol=1e-6)
    assert run._cache_size() == 1



def test_the_rescaling_is_per_leaf():
    """One entry of four dropped in ``a``: ``a`` is rescaled by 4/3, ``b`` not; under ``optax.flatten`` both by 8/7."""
    grads = {"a": jnp.array([1.0, 1.0, 1.0, -1.0]), "b": jnp.ones(4)}
    direction = {"a": jnp.ones(4), "b": jnp.ones(4)}
    fixed = optax.GradientTransformation(lambda p: (), lambda u, s, p=None: (direction, s))
    tx = optaxtra.cautious(fixed, orientation="direction")
    updates, _ = tx.update(grads, tx.init(grads))
    np.testing.assert_allclose(updates["a"], [4 / 3, 4 / 3, 4 / 3, 0.0], rtol=1e-6)
    np.testing.assert_allclose(updates["b"], 1.0)
    ones = jnp.ones(8)
    flat = optax.flatten(
        optaxtra.cautious(optax.GradientTransformation(lambda p: (), lambda u, s, p=None: (ones, s)), orientation="direction")
    )
    updates, _ = flat.update(grads, flat.init(grads))
    np.testing.assert_allclose(updates["a"], [8 / 7, 8 / 7, 8 / 7, 0.0], rtol=1e-6)
    np.testing.assert_allclose(updates["b"], 8 / 7, rtol=1e-6)


@pytest.mark.parametrize("factor", [pytest.param(1.0, id="plain_lion"), pytest.param(0.0, id="cautious_lion")])
def test_cautious_weight_decay_matches_lion_pytorch_step_by_step(factor):
    """lion-pytorch's ``cautious_wd=True``: decay where ``update * p > 0`` (after caution; ``factor=1``: none)."""
    lr, wd = 1e-3, 0.1
    expected = run_torch(
        lambda p: CautiousLion(p, lr=lr, betas=(0.9, 0.99), weight_decay=wd, cautious_factor=factor, cautious_wd=True),
        500,
    )
    direction = optax.scale_by_lion(0.9, 0.99)
    if factor < 1.0:
        direction = optaxtra.cautious(direction, orientation="direction", floor=1e-5, factor=factor)
    tx = optax.chain(
        direction,
        optaxtra.cautious_weight_decay(torch_applied_decay(lr, wd) / lr),
        optaxtra.scale_by_learning_rate(lr),
    )
    assert_trajectories_close(_one_step_trajectory(tx, expected), expected, rtol=RTOL, atol=ATOL)
    plain = run_torch(lambda p: CautiousLion(p, lr=lr, betas=(0.9, 0.99), weight_decay=wd, cautious_factor=factor), 500)
    assert max(np.max(np.abs(plain[k] - expected[k])) for k in NAMES) > 1e-4  # the decay mask mattered


def test_cautious_weight_decay_needs_params_and_respects_the_mask():
    tx = optaxtra.cautious_weight_decay(1.0, mask={"a": True, "b": False})
    params = {"a": jnp.array([1.0, 1.0]), "b": jnp.array([1.0, 1.0])}
    updates, _ = tx.update({"a": jnp.array([1.0, -1.0]), "b": jnp.ones(2)}, tx.init(params), params)
    np.testing.assert_array_equal(updates["a"], [2.0, -1.0])
    np.testing.assert_array_equal(updates["b"], [1.0, 1.0])
    with pytest.raises(ValueError, match="params"):
        tx.update(params, tx.init(params))
