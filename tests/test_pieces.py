"""Each piece against values computed by hand on three-element arrays."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optaxtra

G = jnp.array([0.5, -1.0, 2.0])
P = jnp.array([1.0, -2.0, 4.0])


def apply(tx, grads_sequence, params):
    state = tx.init(params)
    outputs = []
    for grads in grads_sequence:
        updates, state = tx.update(grads, state, params)
        outputs.append(updates)
    return outputs, state


def test_scale_by_adam_two_steps_by_hand():
    g1, g2 = G, jnp.array([1.0, 1.0, -1.0])
    (u1, u2), state = apply(optaxtra.scale_by_adam(b1=0.9, b2=0.99, eps=0.0), [g1, g2], P)
    m = 0.1 * g1
    v = 0.01 * g1**2
    np.testing.assert_allclose(u1, (m / 0.1) / jnp.sqrt(v / 0.01), rtol=1e-6)
    m = 0.9 * m + 0.1 * g2
    v = 0.99 * v + 0.01 * g2**2
    np.testing.assert_allclose(u2, (m / (1 - 0.9**2)) / jnp.sqrt(v / (1 - 0.99**2)), rtol=1e-6)
    assert int(state.count) == 2


def test_eps_placement_uncorrected_is_eps_over_sqrt_bias_correction():
    eps = 1e-2
    (u,), _ = apply(optaxtra.scale_by_adam(b2=0.999, eps=eps, eps_placement="uncorrected"), [G], P)
    # eps added to sqrt(v) = sqrt(0.001) |g| before dividing by sqrt(1 - 0.999).
    expected = G * jnp.sqrt(0.001) / (jnp.sqrt(0.001 * G**2) + eps)
    np.testing.assert_allclose(u, expected, rtol=1e-6)


def test_adam_2k_freezes_params_and_first_moment():
    freeze = 3
    grads = [G, 2 * G, -G, G]
    outputs, state = apply(optaxtra.scale_by_adam(b1=0.9, b2=0.99, eps=0.0, freeze_steps=freeze), grads, P)
    for frozen in outputs[:freeze]:
        np.testing.assert_array_equal(frozen, jnp.zeros(3))
    v = jnp.zeros(3)
    for g in grads:
        v = 0.99 * v + 0.01 * g**2
    # Step 4 is the first Adam step: m = 0.1 g is bias-corrected as step 1, v as step 4.
    expected = G / jnp.sqrt(v / (1 - 0.99**4))
    np.testing.assert_allclose(outputs[freeze], expected, rtol=1e-6)
    np.testing.assert_allclose(state.mu, 0.1 * G, rtol=1e-6)


def test_decoupled_weight_decay_is_independent_of_the_learning_rate():
    tx = optax.chain(optaxtra.scale_by_learning_rate(0.5), optaxtra.decoupled_weight_decay(0.1))
    (u,), _ = apply(tx, [G], P)
    np.testing.assert_allclose(u, -0.5 * G - 0.1 * P, rtol=1e-6)


def test_add_decayed_weights_before_the_lr_is_decay_times_the_lr():
    tx = optax.chain(optaxtra.add_decayed_weights(0.1), optaxtra.scale_by_learning_rate(0.5))
    (u,), _ = apply(tx, [G], P)
    np.testing.assert_allclose(u, -0.5 * G - 0.5 * 0.1 * P, rtol=1e-6)


def test_decoupled_weight_decay_schedules_and_mask():
    params = {"kernel": P, "bias": P}
    tx = optaxtra.decoupled_weight_decay(
        lambda count: 0.05 * (count + 1).astype(jnp.float32), mask=optaxtra.exclude_paths("bias")
    )
    zeros = jax.tree.map(jnp.zeros_like, params)
    (first, second), _ = apply(tx, [zeros, zeros], params)
    np.testing.assert_allclose(first["kernel"], -0.05 * P, rtol=1e-6)
    np.testing.assert_allclose(second["kernel"], -0.1 * P, rtol=1e-6)
    np.testing.assert_array_equal(second["bias"], jnp.zeros(3))


def test_adamw_equals_adam_direction_minus_lr_times_decay():
    params = P
    lr, wd = 0.1, 0.3
    (u,), _ = apply(optaxtra.adamw(lr, weight_decay=wd), [G], params)
    (direction,), _ = apply(optaxtra.scale_by_adam(), [G], params)
    np.testing.assert_allclose(u, -lr * direction - lr * wd * params, rtol=1e-6)
    (u_paper,), _ = apply(optaxtra.adamw(lr, weight_decay=wd, scale_decay_by_lr=False), [G], params)
    np.testing.assert_allclose(u_paper, -lr * direction - wd * params, rtol=1e-6)


def test_trust_ratio_state_keeps_its_dtypes_through_an_update():
    params = {"f32": P, "bf16": P.astype(jnp.bfloat16), "c64": P.astype(jnp.complex64)}
    tx = optaxtra.trust_ratio()
    state = tx.init(params)
    _, new_state = tx.update(jax.tree.map(lambda p: 0.5 * p, params), state, params)
    dtypes = lambda s: jax.tree.map(lambda r: r.dtype, s.ratios)
    assert dtypes(state) == dtypes(new_state) == {"f32": jnp.float32, "bf16": jnp.float32, "c64": jnp.float32}


def test_trust_ratio_lamb_form_by_hand():
    (u,), state = apply(optaxtra.trust_ratio(), [G], P)
    ratio = jnp.linalg.norm(P) / jnp.linalg.norm(G)
    np.testing.assert_allclose(u, ratio * G, rtol=1e-6)
    np.testing.assert_allclose(state.ratios, ratio, rtol=1e-6)


# G is parallel to P, where ||g + wd p|| = ||g|| + wd ||p||: the two LARS denominators need a
# gradient that is not.
G_ACROSS = jnp.array([0.5, 1.0, -2.0])


def test_trust_ratio_lars_paper_form_by_hand():
    tc, wd, eps = 0.01, 0.1, 1e-3
    (u,), _ = apply(optaxtra.trust_ratio(tc, eps, weight_decay=wd, separate_norms=True), [G_ACROSS], P)
    ratio = tc * jnp.linalg.norm(P) / (jnp.linalg.norm(G_ACROSS) + wd * jnp.linalg.norm(P) + eps)
    np.testing.assert_allclose(u, ratio * (G_ACROSS + wd * P), rtol=1e-6)
    (other,), _ = apply(optaxtra.trust_ratio(tc, eps, weight_decay=wd), [G_ACROSS], P)
    assert not np.allclose(u, other, rtol=1e-3)


def test_trust_ratio_weight_decay_by_hand():
    tc, wd, eps = 0.01, 0.1, 1e-3
    (u,), _ = apply(optaxtra.trust_ratio(tc, eps, weight_decay=wd), [G_ACROSS], P)
    ratio = tc * jnp.linalg.norm(P) / (jnp.linalg.norm(G_ACROSS + wd * P) + eps)
    np.testing.assert_allclose(u, ratio * (G_ACROSS + wd * P), rtol=1e-6)


def test_trust_ratio_weight_decay_is_add_decayed_weights_before_it():
    """The folded decay is the two pieces chained, masks included, adapted layers or not."""
    params = {"w": P, "b": P[:2], "s": P[0]}
    grads = {"w": G, "b": G[:2], "s": G[0]}
    decay_mask = {"w": True, "b": False, "s": True}
    adapt_mask = {"w": True, "b": True, "s": False}
    folded = optaxtra.trust_ratio(0.5, weight_decay=0.1, weight_decay_mask=decay_mask, mask=adapt_mask)
    chained = optax.chain(
        optaxtra.add_decayed_weights(0.1, mask=decay_mask), optaxtra.trust_ratio(0.5, mask=adapt_mask)
    )
    expected, _ = chained.update(grads, chained.init(params), params)
    actual, state = folded.update(grads, folded.init(params), params)
    for name in params:
        np.testing.assert_allclose(actual[name], expected[name], rtol=1e-6)
    assert state.ratios["s"] is None


def test_trust_ratio_clamps_and_zero_norms():
    big = 10 * P  # ||big|| ~ 45.8
    (u,), _ = apply(optaxtra.trust_ratio(max_weight_norm=10.0), [G], big)
    np.testing.assert_allclose(u, 10.0 / jnp.linalg.norm(G) * G, rtol=1e-6)
    (u,), state = apply(optaxtra.trust_ratio(max_ratio=2.0), [G], big)
    np.testing.assert_allclose(u, 2.0 * G, rtol=1e-6)
    (u,), state = apply(optaxtra.trust_ratio(), [G], jnp.zeros(3))
    np.testing.assert_array_equal(u, G)
    assert float(state.ratios) == 1.0
    (u,), _ = apply(optaxtra.trust_ratio(), [jnp.zeros(3)], P)
    np.testing.assert_array_equal(u, jnp.zeros(3))


def test_trust_ratio_mask_leaves_excluded_layers_unscaled():
    params = {"kernel": P, "bias": 3 * P}
    grads = {"kernel": G, "bias": G}
    tx = optaxtra.trust_ratio(mask=optaxtra.exclude_paths("bias"))
    (u,), state = apply(tx, [grads], params)
    np.testing.assert_array_equal(u["bias"], G)
    assert state.ratios["bias"] is None
    np.testing.assert_allclose(u["kernel"], jnp.linalg.norm(P) / jnp.linalg.norm(G) * G, rtol=1e-6)


def test_lookahead_syncs_every_k_steps_from_initial_params():
    k, alpha, lr = 3, 0.5, 0.1
    tx = optaxtra.lookahead_state(optax.sgd(lr), sync_period=k, slow_step_size=alpha)
    params = P
    state = tx.init(params)
    slow = P
    synced = []
    for step in range(1, 2 * k + 1):
        updates, state = tx.update(G, state, params)
        params = params + updates
        synced.append(bool(state.synced))
        if step % k == 0:
            fast = slow - k * lr * G  # k plain SGD steps from the last sync
            slow = slow + alpha * (fast - slow)
            np.testing.assert_allclose(params, slow, rtol=1e-6)
            np.testing.assert_allclose(state.slow, slow, rtol=1e-6)
    assert synced == [False, False, True, False, False, True]


def test_lookahead_reset_inner_state():
    tx = optaxtra.lookahead_state(optax.sgd(0.1, momentum=0.9), sync_period=2, reset_inner_state=True)
    params = P
    state = tx.init(params)
    for _ in range(2):
        updates, state = tx.update(G, state, params)
        params = params + updates
    assert all(bool(jnp.all(leaf == 0)) for leaf in jax.tree.leaves(state.inner))


def test_slow_params_without_lookahead_raises():
    tx = optaxtra.adam(1e-3)
    with pytest.raises(ValueError, match="no LookaheadState"):
        optaxtra.slow_params(tx.init(P))


def test_pieces_that_need_params_say_so():
    for tx in [optaxtra.trust_ratio(), optaxtra.decoupled_weight_decay(0.1), optaxtra.lookahead(optaxtra.adam())]:
        with pytest.raises(ValueError, match="needs the params"):
            tx.update(G, tx.init(P))


def test_scale_by_learning_rate_records_schedule_value():
    tx = optaxtra.scale_by_learning_rate(lambda count: 0.1 / (count + 1).astype(jnp.float32))
    (u1, u2), state = apply(tx, [G, G], P)
    np.testing.assert_allclose(u2, -0.05 * G, rtol=1e-6)
    np.testing.assert_allclose(state.learning_rate, 0.05, rtol=1e-6)


def test_diagnostics_under_jit_and_collisions():
    params = {"kernel": jnp.ones((2, 2)), "bias": jnp.ones(2)}
    tx = optax.chain(optaxtra.lamb(1e-2), optaxtra.ranger(1e-2))
    state = tx.init(params)
    grads = jax.tree.map(lambda p: 0.5 * p, params)
    _, state = tx.update(grads, state, params)
    stats = jax.jit(optaxtra.diagnostics)(state)
    assert {"trust_ratio/kernel", "trust_ratio/bias", "trust_ratio/min", "rectifier/rho_t", "lookahead/synced"} <= set(stats)
    learning_rates = [key for key in stats if key.endswith("learning_rate")]
    assert len(learning_rates) == 2 and "learning_rate" not in stats  # the two are told apart by path
    assert all(value.shape == () for value in stats.values())


def test_rectified_adabelief_and_amsgrad_are_the_same_piece():
    """One rectifier, three estimators: Adam's, AMSGrad's, AdaBelief's second moment."""
    grads = [G * 2.0 ** (-i) * (-1) ** i for i in range(8)]  # shrinking: AMSGrad's max binds
    results = {}
    for name, estimator in [
        ("ema", optaxtra.ema_second_moment()),
        ("amsgrad", optaxtra.amsgrad_second_moment()),
        ("belief", optaxtra.belief_second_moment()),
    ]:
        outputs, state = apply(optaxtra.scale_by_radam_rectifier(second_moment=estimator), grads, P)
        results[name] = outputs[-1]
        assert float(state.rectification) > 0  # step 8 is past the switch at step 6
    assert not np.allclose(results["ema"], results["amsgrad"])
    assert not np.allclose(results["ema"], results["belief"])


def test_scale_by_learning_rate_flip_sign_false_ascends():
    # 0.25 and the entries of G are powers of two: the products are exact.
    (up,), state = apply(optaxtra.scale_by_learning_rate(0.25, flip_sign=False), [G], P)
    np.testing.assert_array_equal(up, [0.125, -0.25, 0.5])
    (down,), _ = apply(optaxtra.scale_by_learning_rate(0.25), [G], P)
    np.testing.assert_array_equal(down, [-0.125, 0.25, -0.5])
    assert float(state.learning_rate) == 0.25  # the rate is recorded without the sign


def test_scale_by_adam_with_b1_zero_keeps_no_first_moment():
    """``b1`` the number 0 (RMSprop's direction, Schedule-Free's base): no ``mu``, the same updates
    as an array 0, which keeps the buffer (so a sweep over ``b1`` compiles one program)."""
    without, with_buffer = optaxtra.scale_by_adam(0.0), optaxtra.scale_by_adam(jnp.asarray(0.0))
    state, buffered = without.init(P), with_buffer.init(P)
    assert state.mu is None and buffered.mu is not None
    for step in range(3):
        g = G * (step + 1.0) - P
        u, state = without.update(g, state)
        expected, buffered = with_buffer.update(g, buffered)
        np.testing.assert_array_equal(u, expected)
