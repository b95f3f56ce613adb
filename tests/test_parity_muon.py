"""Muon against PyTorch 2.13's ``torch.optim.Muon`` (with ``torch.optim.AdamW`` for the other params), and optax's.

The shared problem (``tests/_problems.py``) has one matrix, ``kernel`` (4, 3),
which Muon trains; ``bias``, ``scale`` and ``shift`` go to AdamW, on both sides.
torch reads ``kernel.shape`` as ``(out, in)``; optaxtra is given
``layout="out_in"`` to read the same array the same way.

torch runs the Newton–Schulz iteration in bfloat16, where one rounding is
2**-9 relative: two implementations of it agree only to bfloat16, and no
float32 tolerance could tell a correct update rule from a wrong one. The
trajectories are therefore compared with the iteration in float32 on both
sides: optaxtra's ``ns_dtype=jnp.float32``, and torch's own
``_zeropower_via_newtonschulz`` with its one ``grad.bfloat16()`` replaced by
``grad.float().clone()`` (``_float32_newton_schulz``; a copy, as the cast to
bfloat16 makes one; the rest of torch's code runs unchanged). The bfloat16 iteration itself is compared on single
matrices (``test_bfloat16_iteration_matches_torch``).
"""

from __future__ import annotations

import inspect
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
import torch.optim._muon as torch_muon

import optaxtra
from tests._problems import NAMES, assert_trajectories_close, initial_params, loss_jax, run_optax, run_torch
from tests.test_parity_torch import torch_applied_decay

RTOL = 1e-5
ATOL = 1e-6


def _float32_newton_schulz():
    source = textwrap.dedent(inspect.getsource(torch_muon._zeropower_via_newtonschulz))
    assert source.count("grad.bfloat16()") == 1
    namespace = dict(vars(torch_muon))
    # A copy, as .bfloat16() makes one: the iteration divides in place, and without
    # Nesterov its input is the momentum buffer itself.
    exec(source.replace("grad.bfloat16()", "grad.float().clone()"), namespace)  # noqa: S102 - torch's own source
    return namespace["_zeropower_via_newtonschulz"]


@pytest.fixture
def float32_torch_newton_schulz(monkeypatch):
    monkeypatch.setattr(torch_muon, "_zeropower_via_newtonschulz", _float32_newton_schulz())


class _Both:
    """torch.optim.Muon on ``kernel`` and torch.optim.AdamW on the rest, stepped together."""

    def __init__(self, params, muon_kwargs, adamw_kwargs):
        named = dict(zip(NAMES, params))
        self.optimizers = [
            torch.optim.Muon([named["kernel"]], **muon_kwargs),
            torch.optim.AdamW([named[k] for k in NAMES if k != "kernel"], foreach=False, **adamw_kwargs),
        ]

    def zero_grad(self):
        for o in self.optimizers:
            o.zero_grad()

    def step(self):
        for o in self.optimizers:
            o.step()


def _ours(lr, momentum=0.95, weight_decay=0.1, adam_weight_decay=0.01, **kwargs):
    return optaxtra.muon(
        lr, momentum, weight_decay=torch_applied_decay(lr, weight_decay) / lr,
        adam_weight_decay=torch_applied_decay(lr, adam_weight_decay) / lr,
        layout="out_in", ns_dtype=jnp.float32, **kwargs,
    )


@pytest.mark.usefixtures("float32_torch_newton_schulz")
@pytest.mark.parametrize(
    "lr, ours, theirs",
    [
        pytest.param(1e-3, {}, {}, id="defaults"),
        pytest.param(
            1e-3,
            dict(momentum=0.9, nesterov=False, weight_decay=0.0),
            dict(momentum=0.9, nesterov=False, weight_decay=0.0),
            id="no_nesterov_no_decay",
        ),
        pytest.param(
            1e-3,
            dict(adjust_lr="match_rms_adamw", ns_steps=3, eps=1e-5),
            dict(adjust_lr_fn="match_rms_adamw", ns_steps=3, eps=1e-5),
            id="match_rms_adamw",
        ),
    ],
)
def test_muon_matches_torch_with_a_float32_iteration(lr, ours, theirs):
    muon_kwargs = {"lr": lr} | theirs
    expected = run_torch(lambda p: _Both(p, muon_kwargs, {"lr": lr, "weight_decay": 0.01}), 500)
    actual, _ = run_optax(_ours(lr, **ours), 500)
    assert_trajectories_close(actual, expected, rtol=RTOL, atol=ATOL)


def test_layout_is_which_axis_is_fan_in():
    """torch reads ``(4, 3)`` as 4 outputs (scale sqrt(4/3)); optaxtra's default (JAX's ``(in, out)``) as 3 (scale 1)."""
    g = jnp.asarray(np.random.default_rng(0).normal(size=(4, 3)), jnp.float32)
    run = lambda layout: optaxtra.scale_by_muon(layout=layout, ns_dtype=jnp.float32).update(
        g, optaxtra.scale_by_muon().init(g)
    )[0]
    np.testing.assert_allclose(run("out_in"), run("in_out") * np.sqrt(4 / 3), rtol=1e-6)
    wide = g.T  # (3, 4): in_out reads fan_out = 4
    out = optaxtra.scale_by_muon(ns_dtype=jnp.float32).update(wide, optaxtra.scale_by_muon().init(wide))[0]
    np.testing.assert_allclose(out, run("out_in").T, rtol=1e-6)


def test_bfloat16_iteration_matches_torch():
    """torch's own bfloat16 iteration on single matrices: equal but for bfloat16 roundings.

    Each ``addmm`` is a float32 product rounded once to bfloat16 on both
    sides; what can differ is the order of the float32 sums inside the
    products, which moves a result across a bfloat16 rounding boundary now
    and then. Such an entry differs by one bfloat16 ulp (2**-8 relative, up
    to 2**-7 at a power of two), and the four further iterations carry it
    along; the output entries are below 1.5. So: at least 90% of entries
    equal, none more than 2**-5 apart (8 ulps at 1), which a coefficient
    off by 1.5% (c = 2.0 for 2.0315) already exceeds (the check at the end).
    """
    rng = np.random.default_rng(3)
    for shape in [(4, 3), (3, 4), (16, 16), (32, 8)]:
        g = rng.normal(size=shape).astype(np.float32)
        expected = torch_muon._zeropower_via_newtonschulz(torch.tensor(g), (3.4445, -4.7750, 2.0315), 5, 1e-7)
        expected = expected.float().numpy()
        actual = np.asarray(optaxtra.newton_schulz(jnp.asarray(g)).astype(jnp.float32))
        assert (actual == expected).mean() >= 0.9, shape
        np.testing.assert_allclose(actual, expected, rtol=0, atol=2**-5)
        wrong = np.asarray(optaxtra.newton_schulz(jnp.asarray(g), (3.4445, -4.7750, 2.0)).astype(jnp.float32))
        assert np.abs(wrong - expected).max() > 2**-5


def test_muon_with_torch_bfloat16_iteration_stays_close_for_a_few_steps():
    """Both in bfloat16 (the defaults): after 5 steps within 5 steps of the iteration's bound (2**-5, above)."""
    lr = 1e-3
    expected = run_torch(lambda p: _Both(p, {"lr": lr, "weight_decay": 0.0}, {"lr": lr, "weight_decay": 0.0}), 5)
    actual, _ = run_optax(optaxtra.muon(lr, weight_decay=0.0, adam_weight_decay=0.0, layout="out_in"), 5)
    for k in NAMES:
        np.testing.assert_allclose(actual[k], expected[k], rtol=0, atol=5 * lr * np.sqrt(4 / 3) * 2**-5)


def test_optax_contrib_muon_bias_corrects_its_momentum():
    """optax divides its momentum by ``1 - mu^t``; torch and optaxtra do not.

    The iteration normalises its input, so a factor common to the whole
    matrix cancels: the first steps agree. From the second step optax's
    Nesterov blend ``mu m_2 / (1 - mu^3) + (1 - mu) g_2 / (1 - mu^2)``
    weighs the momentum and the gradient otherwise than torch's
    ``mu B_2 + (1 - mu) g_2``, and the directions part.
    """
    g1 = jnp.asarray(np.random.default_rng(1).normal(size=(4, 3)), jnp.float32)
    g2 = jnp.asarray(np.random.default_rng(2).normal(size=(4, 3)), jnp.float32)
    ours = optaxtra.scale_by_muon(ns_dtype=jnp.float32, eps=1e-8)
    with jax.numpy_dtype_promotion("standard"):
        theirs = optax.contrib.scale_by_muon(eps=1e-8)
        theirs_state = theirs.init(g1)
        u1_theirs, theirs_state = theirs.update(g1, theirs_state)
        u2_theirs, _ = theirs.update(g2, theirs_state)
    state = ours.init(g1)
    u1, state = ours.update(g1, state)
    u2, _ = ours.update(g2, state)
    # optax.contrib.scale_by_muon does not scale for the shape; for (4, 3) optaxtra's "in_out" scale is 1.
    np.testing.assert_allclose(u1, u1_theirs, rtol=RTOL, atol=ATOL)
    assert np.abs(np.asarray(u2) - np.asarray(u2_theirs)).max() > 1e-2
    # torch's blend, done by hand in float32, gives ours exactly.
    m2 = 0.95 * (0.05 * g1) + 0.05 * g2
    blend = 0.05 * g2 + 0.95 * m2
    np.testing.assert_allclose(u2, optaxtra.newton_schulz(blend, eps=1e-8, dtype=jnp.float32), rtol=1e-5, atol=1e-6)


def test_optax_contrib_muon_reads_the_shape_the_other_way():
    """optax's muon scales a ``(4, 3)`` update by ``sqrt(max(1, 3 / 4)) = 1`` (fan_in = axis 0); torch by sqrt(4/3)."""
    params = {"w": jnp.zeros((4, 3))}
    g = {"w": jnp.asarray(np.random.default_rng(0).normal(size=(4, 3)), jnp.float32)}
    with jax.numpy_dtype_promotion("standard"):
        tx = optax.contrib.muon(1.0, eps=1e-8, nesterov=False, beta=0.0)
        theirs, _ = tx.update(g, tx.init(params), params)
    ours = optaxtra.muon(1.0, 0.0, weight_decay=0.0, nesterov=False, eps=1e-8, ns_dtype=jnp.float32)
    ours_updates, _ = ours.update(g, ours.init(params), params)  # default layout: optax's
    np.testing.assert_allclose(ours_updates["w"], theirs["w"], rtol=RTOL, atol=ATOL)
    torch_layout = optaxtra.muon(1.0, 0.0, weight_decay=0.0, nesterov=False, eps=1e-8, ns_dtype=jnp.float32, layout="out_in")
    torch_updates, _ = torch_layout.update(g, torch_layout.init(params), params)
    np.testing.assert_allclose(torch_updates["w"], theirs["w"] * np.sqrt(4 / 3), rtol=RTOL, atol=ATOL)


def test_non_matrices_go_to_adamw_and_diagnostics():
    tx = optaxtra.muon(1e-3)
    params = {k: jnp.asarray(v) for k, v in initial_params().items()}
    state = tx.init(params)
    _, state = tx.update(jax.grad(loss_jax)(params), state, params)
    stats = optaxtra.diagnostics(state)
    assert 0.0 < float(stats["muon/update_rms_mean"]) < 2.0
    with pytest.raises(ValueError, match="matrices"):
        optaxtra.scale_by_muon().init({"b": jnp.zeros(3)})


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"momentum": 1.0}, "momentum"),
        ({"ns_steps": 100}, "ns_steps"),
        ({"eps": 0.0}, "eps"),
        ({"adjust_lr": "rms"}, "adjust_lr"),
        ({"layout": "rows"}, "layout"),
        ({"ns_coefficients": (1.0, 2.0)}, "ns_coefficients"),
        ({"ns_dtype": jnp.float16}, "ns_dtype"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        optaxtra.scale_by_muon(**kwargs)
