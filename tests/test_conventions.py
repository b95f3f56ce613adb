"""Conventions the other suites do not tell apart: each test fails if its default is switched.

Each test puts the optimizer where the two readings of a convention give
different numbers (a threshold met exactly, a schedule that changes value, a
ratio beyond a cap) and checks the one optaxtra documents.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optaxtra
from tests._problems import assert_trajectories_close, run_optax
from tests.test_parity_optax import run_reference

G = jnp.array([0.5, -1.0, 2.0])
P = jnp.array([1.0, -2.0, 4.0])


def updates_and_states(tx, grads_sequence, params=P):
    state, out = tx.init(params), []
    for grads in grads_sequence:
        updates, state = tx.update(grads, state, params)
        out.append((updates, state))
    return out


@pytest.mark.parametrize(("comparison", "first_adaptive"), [(">", 7), (">=", 6)])
def test_threshold_comparison_decides_a_threshold_met_exactly(comparison, first_adaptive):
    """With the threshold set to the float32 ``rho_6`` itself, ``>`` waits a step longer than ``>=``."""
    rho_6 = float(optaxtra.radam_rho(6, 0.999)[0])
    tx = optaxtra.scale_by_radam_rectifier(threshold=rho_6, threshold_comparison=comparison)
    steps = updates_and_states(tx, [G] * 8)
    adaptive = [t for t, (_, state) in enumerate(steps, 1) if float(state.rectification) > 0]
    assert adaptive[0] == first_adaptive
    assert float(steps[5][1].rho) == rho_6


def test_rectifier_rho_uses_the_scheduled_b2_of_each_step():
    """``rho_t`` at update ``t`` takes ``b2`` at the piece's count ``t - 1`` (0 on the first update)."""
    schedule = lambda count: jnp.where(count < 4, 0.99, 0.999)
    tx = optaxtra.scale_by_radam_rectifier(b2=schedule)
    for t, (_, state) in enumerate(updates_and_states(tx, [G] * 8), 1):
        expected = optaxtra.radam_rho(t, 0.99 if t - 1 < 4 else 0.999)[0]
        np.testing.assert_allclose(state.rho, expected, rtol=1e-6, err_msg=f"update {t}")
    # The two values give different rho at the step where the schedule turns.
    assert abs(float(optaxtra.radam_rho(5, 0.99)[0]) - float(optaxtra.radam_rho(5, 0.999)[0])) > 1e-3


def test_decoupled_decay_takes_the_learning_rate_of_each_step():
    """AdamW's decay, ``add_decayed_weights`` before ``scale_by_learning_rate``, is ``-lr_t * wd * p``
    with ``lr_t`` the schedule at that step, on every step (the learning rate reaches one piece)."""
    schedule = lambda count: 0.5 / (1.0 + count.astype(jnp.float32))
    tx = optax.chain(optaxtra.add_decayed_weights(0.1), optaxtra.scale_by_learning_rate(schedule))
    for t, (updates, _) in enumerate(updates_and_states(tx, [jnp.zeros(3)] * 4), 1):
        np.testing.assert_allclose(updates, -(0.5 / t) * 0.1 * P, rtol=1e-6, err_msg=f"update {t}")


@pytest.mark.parametrize("piece", ["scale_by_adam", "scale_by_radam_rectifier"])
def test_eps_root_is_added_to_v_hat_under_the_root(piece):
    """First update, ``m_hat = g`` and ``v_hat = g^2``: Adam's step is ``g / sqrt(g^2 + eps_root)``.

    The rectifier's first steps fall back to ``m_hat``, so its ``eps_root`` is
    checked on the first adaptive step, at a threshold of 4 (step 5) and the
    gradient held constant, where ``m_hat = g`` and ``v_hat = g^2`` still.
    """
    if piece == "scale_by_adam":
        tx, step = optaxtra.scale_by_adam(eps=0.0, eps_root=1.0), 1
        scale = 1.0
    else:
        tx, step = optaxtra.scale_by_radam_rectifier(eps=0.0, eps_root=1.0, threshold=4.0), 5
        scale = float(optaxtra.radam_rectification(*optaxtra.radam_rho(5, 0.999)))
    updates, _ = updates_and_states(tx, [G] * step)[-1]
    np.testing.assert_allclose(updates, scale * G / jnp.sqrt(G**2 + 1.0), rtol=1e-5)
    assert not np.allclose(updates, scale * jnp.sign(G), rtol=1e-2)


def test_skipped_rectifier_steps_still_pass_a_nan_on():
    """``degenerated_to_sgd=False`` gives no update while intractable, but not a silent one for NaN."""
    tx = optaxtra.radam(1e-2, degenerated_to_sgd=False)
    (first, _), (second, _), (third, _) = updates_and_states(
        tx, [G, G.at[1].set(jnp.nan), G]
    )
    np.testing.assert_array_equal(first, jnp.zeros(3))
    # The NaN entry's moments stay NaN: its update is NaN from then on, the others' stay 0.
    for skipped in (second, third):
        np.testing.assert_array_equal(np.isnan(skipped), [False, True, False])
        np.testing.assert_array_equal(skipped[::2], [0.0, 0.0])


def test_lamb_ratio_is_not_capped_by_default():
    """The paper and optax do not cap the ratio (fastai caps it at 10): at ``||w|| / ||r|| = 100`` it is 100."""
    params = {"w": jnp.full(4, 100.0)}
    grads = {"w": jnp.array([1.0, -1.0, 1.0, -1.0])}

    def first_update(tx):
        return tx.update(grads, tx.init(params), params)[0]["w"]

    with jax.numpy_dtype_promotion("standard"):  # optax's lamb mixes int and float counts
        optax_lamb = first_update(optax.lamb(1e-2))
    ours = first_update(optaxtra.lamb(1e-2))
    np.testing.assert_allclose(ours, optax_lamb, rtol=1e-6)
    np.testing.assert_allclose(ours, -1e-2 * 200.0 * jnp.sign(grads["w"]) / 2.0, rtol=1e-5)
    capped = first_update(optaxtra.lamb(1e-2, max_ratio=10.0))
    np.testing.assert_allclose(capped, -1e-2 * 10.0 * jnp.sign(grads["w"]), rtol=1e-5)


def test_lamb_layer_adaptation_mask_is_not_the_decay_mask():
    """TF-Addons adapts only layers outside ``exclude_from_layer_adaptation``, which defaults to
    the decay exclusions; optaxtra keeps the two apart: ``mask`` selects decay only.
    """
    params = {"w": jnp.array([3.0, 4.0]), "b": jnp.array([0.3, 0.4])}
    grads = {"w": jnp.array([0.1, 0.0]), "b": jnp.array([0.1, 0.0])}
    no_decay_on_b = {"w": True, "b": False}

    def ratios(tx):
        return optax.tree_utils.tree_get(tx.update(grads, tx.init(params), params)[1], "ratios")

    decay_masked = ratios(optaxtra.lamb(1e-2, weight_decay=0.1, mask=no_decay_on_b))
    assert set(decay_masked) == {"w", "b"} and float(decay_masked["b"]) != 1.0
    adaptation_masked = ratios(optaxtra.lamb(1e-2, weight_decay=0.1, layer_adaptation_mask=no_decay_on_b))
    assert adaptation_masked["b"] is None and float(adaptation_masked["w"]) != 1.0
    unadapted_b = optaxtra.lamb(1e-2, layer_adaptation_mask=no_decay_on_b)
    updates, _ = unadapted_b.update(grads, unadapted_b.init(params), params)
    np.testing.assert_allclose(updates["b"], -1e-2 * jnp.array([1.0, 0.0]), rtol=1e-5)


def test_amsgrad_without_bias_correction_is_reddis_and_optaxs_uncorrected_form():
    """Reddi et al. correct neither moment: optax's ``amsgrad`` with both corrections off."""
    actual, _ = run_optax(optaxtra.amsgrad(1e-3, bias_correction=False), 300)
    expected, _ = run_reference(
        optax.amsgrad(1e-3, bias_correction_mu=False, bias_correction_nu=False), 300
    )
    # Measured (x86-64, 2026-11-26): max abs error 2.4e-7, 15% of this tolerance.
    assert_trajectories_close(actual, expected, rtol=5e-6, atol=5e-7)


@pytest.mark.parametrize("name", ["adam", "adamw", "amsgrad"])
def test_uncorrected_eps_is_tf1s_eps_hat(name):
    """TF1's Adam: ``p -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)`` on the raw moments."""
    b1, b2, eps, lr = 0.9, 0.999, 1e-3, 0.1
    make = getattr(optaxtra, name)
    extra = {"weight_decay": 0.0} if name == "adamw" else {}
    tx = make(lr, b1, b2, eps, eps_placement="uncorrected", **extra)
    grads = [jnp.array([1e-4, 1.0, -3e-3]), jnp.array([2e-4, 0.5, -1e-3])]
    m = v = np.zeros(3)
    for t, g in enumerate(grads, 1):
        m = b1 * m + (1 - b1) * np.asarray(g, np.float64)
        v = b2 * v + (1 - b2) * np.asarray(g, np.float64) ** 2
    expected = -lr * np.sqrt(1 - b2**2) / (1 - b1**2) * m / (np.sqrt(v) + eps)
    updates, _ = updates_and_states(tx, grads, jnp.zeros(3))[-1]
    np.testing.assert_allclose(updates, expected, rtol=1e-6)  # measured 1.3e-7 (2026-11-26)
    corrected, _ = updates_and_states(make(lr, b1, b2, eps, **extra), grads, jnp.zeros(3))[-1]
    assert not np.allclose(corrected, expected, rtol=1e-2)


@pytest.mark.parametrize("placement", ["uncorrected", "corrected"])
def test_ranger_and_ralamb_pass_eps_placement_to_the_rectifier(placement):
    """Both default to PyTorch's (and pytorch_ranger's) ``"uncorrected"``, as ``radam`` does."""
    rectifier = optaxtra.scale_by_radam_rectifier(0.9, 0.999, 1e-2, threshold=4.0, eps_placement=placement)
    by_hand = optax.chain(rectifier, optaxtra.trust_ratio(), optaxtra.scale_by_learning_rate(0.1))
    ralamb = optaxtra.ralamb(0.1, 0.9, 0.999, 1e-2, threshold=4.0, eps_placement=placement)
    inner = optaxtra.radam(0.1, 0.95, 0.999, 1e-2, threshold=4.0, eps_placement=placement)
    ranger = optaxtra.ranger(0.1, 0.95, 0.999, 1e-2, threshold=4.0, eps_placement=placement)
    grads = [G * (1.0 + 0.1 * t) for t in range(5)]  # step 5: adaptive (threshold 4), before Ranger's sync
    for ours, reference in ((ralamb, by_hand), (ranger, inner)):
        last, expected = updates_and_states(ours, grads)[-1][0], updates_and_states(reference, grads)[-1][0]
        np.testing.assert_array_equal(last, expected)
    default = optaxtra.ralamb(0.1, 0.9, 0.999, 1e-2, threshold=4.0)
    same = updates_and_states(default, grads)[-1][0]
    assert np.array_equal(same, updates_and_states(ralamb, grads)[-1][0]) == (placement == "uncorrected")
