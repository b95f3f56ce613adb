"""NAdam, NAdamW, Adamax and Lion against PyTorch 2.13, lion-pytorch 0.2.5 and optax 0.2.8.

Each row runs an optaxtra optimizer and its reference on the shared problem of
``tests/_problems.py`` in float32 and compares the params after every step at
``rtol=1e-5, atol=1e-6`` (see ``tests/test_parity_torch.py`` for why), or bit
for bit where the two compute the same float32 operations.

What the references do differently, and where it is pinned:

* **NAdam's momentum schedule.** PyTorch's ``NAdam`` uses Dozat's
  ``mu_t = b1 (1 - 0.5 * 0.96 ** (t psi))`` with ``psi = 4e-3`` and
  bias-corrects ``m`` by the running product of ``mu``; ``optax.nadam`` has no
  schedule (``mu_t = b1``, corrected by ``1 - b1**t``). optaxtra's default is
  PyTorch's; ``momentum_decay=None`` is optax's. PyTorch's ``momentum_decay=0``
  is neither: ``mu_t = b1 / 2`` for ever while ``m`` still averages with
  ``b1`` (``test_torch_nadam_without_momentum_decay_is_no_optax_nadam``).
* **NAdam's rounding over long runs.** PyTorch adds its two terms (the
  gradient's and the momentum's) to the params in two ``addcdiv_`` calls,
  rounding the params twice a step; optaxtra returns one update. At
  ``lr=1e-3`` for 1,000 steps the two runs drift 1.1e-6 apart on ``scale``
  (an entry near 0.013 there), past ``atol``, and it is PyTorch's run that
  leaves the float64 transcription (1.3e-6 away where optaxtra's stays within
  2.7e-7; measured 2026-12-07). The PyTorch rows therefore run 500 steps at
  ``lr=1e-3``, and ``test_nadam_matches_a_float64_transcription`` runs 1,000.
* **Lion's decay rounding.** Without decay optaxtra's Lion is lion-pytorch's
  bit for bit. With decay, lion-pytorch multiplies the params by
  ``float32(1 - lr * wd)`` and then adds ``-lr * sign(.)``: two roundings a
  step, where optaxtra (and ``optax.lion``, bit for bit) adds one update
  ``-lr * (sign(.) + wd * p)``. On ``shift`` (entries near 5) the two differ
  by one float32 ulp on every step, in the same direction, 1e-4 apart after
  500 steps: no tolerance of this file covers that, so the update rule is
  pinned instead by reproducing lion-pytorch bit for bit from optaxtra's
  direction with its arithmetic (``test_lion_decay_differs_from_lion_pytorch_only_by_its_rounding``).
  No step of these runs has ``b1 m + (1 - b1) g`` at exactly 0 (the runs
  without decay are equal bit for bit); where it is 0, both give no step
  (``test_lion_zero_interpolation_gives_no_step``).
* **Adamax's eps** sits inside the maximum, ``u = max(b2 u, |g| + eps)``, in
  PyTorch and optax alike; the rows with ``eps=1e-2`` make its place visible.
* optax rows use float32 betas (``B1 = f32(0.9)`` ...), as in
  ``tests/test_parity_optax.py``, whose docstring explains why.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import lion_pytorch
import numpy as np
import optax
import pytest
import torch

import optaxtra
from tests._problems import (
    case as _case,
    NAMES,
    Params,
    assert_trajectories_close,
    initial_params,
    loss_jax,
    run_numpy,
    run_optax,
    run_torch,
)
from tests.test_parity_optax import B1, B1_ALT, B2, B2_ALT, run_reference
from tests.test_parity_papers import exact_atol
from tests.test_parity_torch import torch_applied_decay

RTOL = 1e-5
ATOL = 1e-6


def _decay(lr: float, weight_decay: float) -> float:
    """optaxtra's ``weight_decay`` for PyTorch's: the decay PyTorch applies, divided by ``lr``."""
    return torch_applied_decay(lr, weight_decay) / lr


TORCH_CASES = [
    _case(
        "nadam_defaults",
        lambda: optaxtra.nadam(1e-3),
        lambda p: torch.optim.NAdam(p, lr=1e-3, foreach=False),
        500,
    ),
    _case(
        "nadam_l2_nondefault",
        lambda: optaxtra.nadam(1e-3, 0.8, 0.99, 1e-6, weight_decay=1e-2, momentum_decay=1e-2),
        lambda p: torch.optim.NAdam(
            p, lr=1e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-2, momentum_decay=1e-2,
            foreach=False,
        ),
        500,
    ),
    _case(
        "nadam_large_eps",
        lambda: optaxtra.nadam(1e-3, eps=1e-3),
        lambda p: torch.optim.NAdam(p, lr=1e-3, eps=1e-3, foreach=False),
        500,
    ),
    # psi = 0: mu_t = b1 / 2 at every step, in both.
    _case(
        "nadam_momentum_decay_zero",
        lambda: optaxtra.nadam(1e-3, momentum_decay=0.0),
        lambda p: torch.optim.NAdam(p, lr=1e-3, momentum_decay=0.0, foreach=False),
        500,
    ),
    _case(
        "nadamw_default_decay",
        lambda: optaxtra.nadamw(1e-3, weight_decay=_decay(1e-3, 1e-2)),
        lambda p: torch.optim.NAdam(
            p, lr=1e-3, weight_decay=1e-2, decoupled_weight_decay=True, foreach=False
        ),
        500,
    ),
    _case(
        "nadamw_nondefault",
        lambda: optaxtra.nadamw(
            1e-3, 0.8, 0.99, 1e-6, weight_decay=_decay(1e-3, 0.1), momentum_decay=1e-2
        ),
        lambda p: torch.optim.NAdam(
            p, lr=1e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, momentum_decay=1e-2,
            decoupled_weight_decay=True, foreach=False,
        ),
        500,
    ),
    _case(
        "adamax_defaults",
        lambda: optaxtra.adamax(),
        lambda p: torch.optim.Adamax(p, foreach=False),
        500,
    ),
    _case(
        "adamax_lr_1e-3",
        lambda: optaxtra.adamax(1e-3),
        lambda p: torch.optim.Adamax(p, lr=1e-3, foreach=False),
        1000,
    ),
    _case(
        "adamax_l2_nondefault",
        lambda: optaxtra.adamax(1e-3, 0.8, 0.99, 1e-6, weight_decay=1e-2),
        lambda p: torch.optim.Adamax(
            p, lr=1e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-2, foreach=False
        ),
        500,
    ),
    _case(
        "adamax_large_eps",
        lambda: optaxtra.adamax(1e-3, eps=1e-2),
        lambda p: torch.optim.Adamax(p, lr=1e-3, eps=1e-2, foreach=False),
        500,
    ),
]


@pytest.mark.parametrize(("ours", "reference", "steps"), TORCH_CASES)
def test_trajectory_matches_pytorch(ours, reference, steps):
    actual, _ = run_optax(ours(), steps)
    expected = run_torch(reference, steps)
    assert_trajectories_close(actual, expected, rtol=RTOL, atol=ATOL)


EXACT = None

OPTAX_CASES = [
    _case(
        "nadam_constant_momentum",
        lambda: optaxtra.nadam(1e-3, B1, B2, momentum_decay=None),
        lambda: optax.nadam(1e-3, B1, B2),
        1000,
    ),
    _case(
        "nadam_constant_momentum_nondefault",
        lambda: optaxtra.nadam(3e-3, B1_ALT, B2_ALT, 1e-6, 1e-4, momentum_decay=None),
        lambda: optax.nadam(3e-3, B1_ALT, B2_ALT, 1e-6, 1e-4),
        500,
    ),
    _case(
        "nadamw_constant_momentum",
        lambda: optaxtra.nadamw(1e-3, B1, B2, weight_decay=1e-2, momentum_decay=None),
        lambda: optax.nadamw(1e-3, B1, B2, weight_decay=1e-2),
        1000,
    ),
    _case(
        "nadamw_constant_momentum_nondefault",
        lambda: optaxtra.nadamw(1e-3, B1_ALT, B2_ALT, 1e-6, weight_decay=0.1, momentum_decay=None),
        lambda: optax.nadamw(1e-3, B1_ALT, B2_ALT, 1e-6, weight_decay=0.1),
        500,
    ),
    _case(
        "adamax",
        lambda: optaxtra.adamax(2e-3, B1, B2),
        lambda: optax.adamax(2e-3, B1, B2),
        500,
    ),
    _case(
        "adamax_nondefault_large_eps",
        lambda: optaxtra.adamax(1e-3, B1_ALT, B2_ALT, 1e-2),
        lambda: optax.adamax(1e-3, B1_ALT, B2_ALT, 1e-2),
        500,
    ),
    _case(
        "adamaxw_as_chain",
        lambda: optax.chain(
            optaxtra.scale_by_adamax(B1, B2),
            optaxtra.add_decayed_weights(1e-2),
            optaxtra.scale_by_learning_rate(1e-3),
        ),
        lambda: optax.adamaxw(1e-3, B1, B2, weight_decay=1e-2),
        500,
    ),
]


@pytest.mark.parametrize(("ours", "reference", "steps"), OPTAX_CASES)
def test_trajectory_matches_optax(ours, reference, steps):
    actual, _ = run_optax(ours(), steps)
    expected, _ = run_reference(reference(), steps)
    assert_trajectories_close(actual, expected, rtol=RTOL, atol=ATOL)


LION_EXACT_CASES = [
    # lion-pytorch without decay, and optax.lion with its own decay: the same float32 operations.
    _case("lion_pytorch_defaults", lambda: optaxtra.lion(), lambda: run_torch(lion_pytorch.Lion, 1000), 1000),
    _case(
        "lion_pytorch_nondefault_betas",
        lambda: optaxtra.lion(3e-4, 0.8, 0.95),
        lambda: run_torch(lambda p: lion_pytorch.Lion(p, lr=3e-4, betas=(0.8, 0.95)), 500),
        500,
    ),
    _case(
        "optax_lion_defaults",  # optax's weight_decay default is 1e-3, ours 0
        lambda: optaxtra.lion(1e-4, weight_decay=1e-3),
        lambda: run_reference(optax.lion(1e-4), 1000)[0],
        1000,
    ),
    _case(
        "optax_lion_nondefault",
        lambda: optaxtra.lion(3e-4, B1_ALT, 0.95, weight_decay=0.1),
        lambda: run_reference(optax.lion(3e-4, B1_ALT, 0.95, weight_decay=0.1), 1000)[0],
        1000,
    ),
]


@pytest.mark.parametrize(("ours", "reference", "steps"), LION_EXACT_CASES)
def test_lion_matches_its_references_bit_for_bit(ours, reference, steps):
    actual, _ = run_optax(ours(), steps)
    expected = reference()
    for name in NAMES:
        np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)


def _lion_direction_with_torch_decay(lr: float, b1: float, b2: float, weight_decay: float, steps: int):
    """optaxtra's Lion step ``-lr * sign(.)`` applied after lion-pytorch's decay, in numpy float32.

    lion-pytorch does ``p.mul_(1 - lr * wd)`` (the factor rounded to float32)
    and then ``p.add_(sign, alpha=-lr)``; numpy does the same two roundings
    (inside ``jit`` XLA may fuse them into one).
    """
    tx = optaxtra.lion(lr, b1, b2)
    params = initial_params()
    state = tx.init(params)
    factor = np.float32(1 - lr * weight_decay)
    step = jax.jit(lambda p, s: tx.update(jax.grad(loss_jax)(p), s, p))
    trajectory: dict[str, list[np.ndarray]] = {name: [] for name in NAMES}
    for _ in range(steps):
        updates, state = step(params, state)
        params = {name: params[name] * factor + np.asarray(updates[name]) for name in NAMES}
        for name in NAMES:
            trajectory[name].append(params[name])
    return {name: np.stack(values) for name, values in trajectory.items()}


@pytest.mark.parametrize(("lr", "b1", "b2", "weight_decay"), [(1e-4, 0.9, 0.99, 1e-2), (3e-4, 0.8, 0.95, 0.1)])
def test_lion_decay_differs_from_lion_pytorch_only_by_its_rounding(lr, b1, b2, weight_decay):
    """lion-pytorch with decay is optaxtra's direction plus a separately rounded decay, bit for bit.

    optaxtra's ``lion(weight_decay=...)`` returns the decay and the sign step
    as one update (as optax does): the same rule, rounded once instead of
    twice per step, which the parity tolerance cannot absorb over 500 steps
    (see the module docstring).
    """
    reference = run_torch(
        lambda p: lion_pytorch.Lion(p, lr=lr, betas=(b1, b2), weight_decay=weight_decay), 500
    )
    emulated = _lion_direction_with_torch_decay(lr, b1, b2, weight_decay, 500)
    for name in NAMES:
        np.testing.assert_array_equal(emulated[name], reference[name], err_msg=name)
    ours, _ = run_optax(optaxtra.lion(lr, b1, b2, weight_decay=_decay(lr, weight_decay)), 500)
    with pytest.raises(AssertionError):
        assert_trajectories_close(ours, reference, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("decoupled", [False, True])
def test_lion_pytorch_decay_conventions(decoupled):
    """lion-pytorch's ``decoupled_weight_decay=True`` divides ``wd`` by the initial LR.

    With zero gradients Lion's step is ``sign(0) = 0``, so only the decay
    acts: ``lr * wd`` per step by default (``lion``), ``wd`` itself with the
    flag (``decoupled_weight_decay`` after ``scale_by_learning_rate``).
    """
    lr, wd = 0.1, 0.2
    start = np.array([1.0, -3.0, 0.5], np.float32)
    param = torch.tensor(start, requires_grad=True)
    optimizer = lion_pytorch.Lion([param], lr=lr, weight_decay=wd, decoupled_weight_decay=decoupled)
    param.grad = torch.zeros_like(param)
    optimizer.step()
    if decoupled:
        tx = optax.chain(
            optaxtra.scale_by_lion(), optaxtra.scale_by_learning_rate(lr), optaxtra.decoupled_weight_decay(wd)
        )
    else:
        tx = optaxtra.lion(lr, weight_decay=wd)
    params = jnp.asarray(start)
    updates, _ = tx.update(jnp.zeros(3), tx.init(params), params)
    expected = start * (1 - (wd if decoupled else lr * wd))
    np.testing.assert_allclose(param.detach().numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(optax.apply_updates(params, updates), expected, rtol=1e-6)


def test_lion_zero_interpolation_gives_no_step():
    """``sign(0) = 0`` in both: an entry with ``b1 m + (1 - b1) g = 0`` does not move."""
    # m_1 = 0.5 * 2 = 1, then 0.5 * m_1 + 0.5 * g_2 is 0 for the first entry and 1 for the second.
    grads = [np.array([2.0, 2.0], np.float32), np.array([-1.0, 1.0], np.float32)]
    param = torch.tensor(np.zeros(2, np.float32), requires_grad=True)
    optimizer = lion_pytorch.Lion([param], lr=1.0, betas=(0.5, 0.5))
    tx = optaxtra.lion(1.0, 0.5, 0.5)
    params = jnp.zeros(2)
    state = tx.init(params)
    for g in grads:
        param.grad = torch.tensor(g)
        optimizer.step()
        updates, state = tx.update(jnp.asarray(g), state, params)
        params = optax.apply_updates(params, updates)
    np.testing.assert_array_equal(np.asarray(params), param.detach().numpy())
    np.testing.assert_array_equal(np.asarray(params), [-1.0, -2.0])


def _nadam_float64(lr: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, psi: float = 4e-3):
    """Dozat's NAdam with PyTorch's momentum schedule, as PyTorch's docs write it, in float64."""
    state: dict = {}

    def step(params: Params, grads: Params, t: int) -> Params:
        if not state:
            state.update(m={k: np.zeros_like(v) for k, v in params.items()}, v={}, product=1.0)
            state["v"] = {k: np.zeros_like(v) for k, v in params.items()}
        mu = b1 * (1 - 0.5 * 0.96 ** (t * psi))
        mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
        state["product"] *= mu
        product = state["product"]
        new = {}
        for k in params:
            state["m"][k] = b1 * state["m"][k] + (1 - b1) * grads[k]
            state["v"][k] = b2 * state["v"][k] + (1 - b2) * grads[k] ** 2
            denominator = np.sqrt(state["v"][k] / (1 - b2**t)) + eps
            direction = (1 - mu) / (1 - product) * grads[k] + mu_next / (1 - product * mu_next) * state["m"][k]
            new[k] = params[k] - lr * direction / denominator
        return new

    return step


@functools.cache
def _nadam_exact_1000_steps():
    return run_numpy(_nadam_float64(1e-3), 1000)


def test_nadam_matches_a_float64_transcription():
    actual, _ = run_optax(optaxtra.nadam(1e-3), 1000)
    assert_trajectories_close(actual, _nadam_exact_1000_steps(), rtol=RTOL, atol=exact_atol(1000))


def test_torch_nadam_leaves_exact_arithmetic_where_the_long_run_parts():
    """Over 1,000 steps optaxtra and PyTorch part past ``atol`` on ``scale``, and PyTorch is the one off.

    PyTorch adds the gradient's and the momentum's terms to the params in two
    ``addcdiv_`` calls (two roundings a step, optaxtra one); on ``scale`` the
    float32 runs are 1.1e-6 apart after 1,000 steps, PyTorch's 1.3e-6 from
    the float64 transcription and optaxtra's within 2.7e-7 (measured 2026-12-07).
    """
    ours, _ = run_optax(optaxtra.nadam(1e-3), 1000)
    torch_run = run_torch(lambda p: torch.optim.NAdam(p, lr=1e-3, foreach=False), 1000)
    exact = _nadam_exact_1000_steps()["scale"]
    with pytest.raises(AssertionError, match="'scale'"):
        assert_trajectories_close(ours, torch_run, rtol=RTOL, atol=ATOL)
    ours_off, torch_off = np.abs(ours["scale"] - exact).max(), np.abs(torch_run["scale"] - exact).max()
    assert ours_off < 0.5 * ATOL < ATOL < torch_off


def test_optax_nadam_is_not_torch_nadam():
    """optax's constant momentum is not PyTorch's schedule; PyTorch's ``psi=0`` is neither.

    PyTorch's ``momentum_decay=0`` gives ``mu_t = b1 / 2`` while ``m`` averages
    with ``b1``, so neither ``optax.nadam(b1)`` nor ``optax.nadam(b1 / 2)``
    (whose ``m`` would average with ``b1 / 2``) follows it.
    """
    torch_default = run_torch(lambda p: torch.optim.NAdam(p, lr=1e-3, foreach=False), 500)
    torch_psi0 = run_torch(lambda p: torch.optim.NAdam(p, lr=1e-3, momentum_decay=0.0, foreach=False), 500)
    for expected in (torch_default, torch_psi0):
        for b1 in (0.9, 0.45):
            optax_run, _ = run_reference(optax.nadam(1e-3, b1), 500)
            with pytest.raises(AssertionError):
                assert_trajectories_close(optax_run, expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("momentum_decay", [4e-3, 1e-2, None])
def test_nadam_diagnostics_report_the_momentum_schedule(momentum_decay):
    tx = optaxtra.nadam(1e-3, b1=0.9, momentum_decay=momentum_decay)
    params = jnp.zeros(3)
    state = tx.init(params)
    step = jax.jit(tx.update)
    product = 1.0
    for t in range(1, 6):
        _, state = step(jnp.ones(3), state, params)
        mu = 0.9 if momentum_decay is None else 0.9 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
        product *= mu
        stats = optaxtra.diagnostics(state)
        np.testing.assert_allclose(stats["nadam/mu_t"], mu, rtol=1e-6)
        np.testing.assert_allclose(stats["nadam/mu_product"], product, rtol=1e-6)


def test_adamax_eps_sits_inside_the_maximum():
    """``u = max(b2 u, |g| + eps)``: a zero gradient after a large one leaves ``u = b2 u``."""
    tx = optaxtra.scale_by_adamax(0.5, 0.5, eps=1.0)
    state = tx.init(jnp.zeros(2))
    _, state = tx.update(jnp.array([8.0, 0.0]), state)
    _, state = tx.update(jnp.array([0.0, 0.0]), state)
    np.testing.assert_array_equal(state.nu, [4.5, 1.0])  # max(0.5 * 9, 1), max(0.5 * 1, 1)


@pytest.mark.parametrize(
    ("call", "error", "fragments"),
    [
        (lambda: optaxtra.nadam(momentum_decay=-1e-3), ValueError, ("momentum_decay", "-0.001", "[0, inf)")),
        (lambda: optaxtra.nadamw(momentum_decay=float("nan")), ValueError, ("momentum_decay", "NaN")),
        (lambda: optaxtra.nadam(momentum_decay="4e-3"), TypeError, ("momentum_decay", "'4e-3'")),
        (lambda: optaxtra.nadam(b1=1.0), ValueError, ("b1", "1.0", "[0, 1)")),
        (lambda: optaxtra.nadamw(weight_decay=-1.0), ValueError, ("weight_decay", "-1.0", "[0, inf)")),
        (lambda: optaxtra.adamax(eps=-1e-8), ValueError, ("eps", "-1e-08", "[0, inf)")),
        (lambda: optaxtra.adamax(b2=1.5), ValueError, ("b2", "1.5", "[0, 1)")),
        (lambda: optaxtra.adamax(nu_dtype=jnp.float16), ValueError, ("nu_dtype", "float16")),
        (lambda: optaxtra.lion(-1e-4), ValueError, ("learning_rate", "-0.0001", "[0, inf)")),
        (lambda: optaxtra.lion(b1=1.0), ValueError, ("b1", "1.0", "[0, 1)")),
        (lambda: optaxtra.lion(b2=-0.1), ValueError, ("b2", "-0.1", "[0, 1)")),
        (lambda: optaxtra.lion(mu_dtype=jnp.int32), TypeError, ("mu_dtype", "int32", "floating")),
    ],
)
def test_bad_hyperparameters_raise_clear_errors(call, error, fragments):
    with pytest.raises(error) as raised:
        call()
    message = str(raised.value)
    assert all(fragment in message for fragment in fragments), message


def test_traced_and_scheduled_hyperparameters_pass():
    """Sweeps over every real hyperparameter compile once; schedules are accepted."""
    params = jnp.ones(3)

    def first_update(b1, b2, eps, psi, wd):
        txs = (
            optaxtra.nadam(1e-2, b1, b2, eps, momentum_decay=psi, weight_decay=wd),
            optaxtra.nadamw(1e-2, b1, b2, eps, momentum_decay=psi, weight_decay=wd),
            optaxtra.adamax(1e-2, b1, b2, eps, weight_decay=wd),
            optaxtra.lion(1e-2, b1, b2, weight_decay=wd),
        )
        return [tx.update(jnp.ones(3), tx.init(params), params)[0] for tx in txs]

    values = [jnp.array([0.9, 0.8]), jnp.array([0.999, 0.99]), jnp.array([1e-8, 1e-6]),
              jnp.array([4e-3, 0.0]), jnp.array([0.0, 0.1])]
    results = jax.vmap(first_update)(*values)
    assert all(np.isfinite(np.asarray(r)).all() for r in results)
    schedule = optax.linear_schedule(0.9, 0.95, 10)
    for tx in (
        optaxtra.nadam(1e-3, b1=schedule, momentum_decay=lambda t: 4e-3),
        optaxtra.adamax(1e-3, b1=schedule),
        optaxtra.lion(1e-3, b1=schedule, b2=lambda t: 0.99),
    ):
        updates, _ = jax.jit(tx.update)(jnp.ones(3), tx.init(params), params)
        assert np.isfinite(np.asarray(updates)).all()


@pytest.mark.parametrize(
    ("param_dtype", "mu_dtype", "expected"),
    [
        (jnp.bfloat16, None, jnp.float32),
        (jnp.float16, None, jnp.float32),
        (jnp.float32, None, jnp.float32),
        (jnp.bfloat16, jnp.bfloat16, jnp.bfloat16),
        (jnp.float32, jnp.bfloat16, jnp.bfloat16),
    ],
)
def test_lion_momentum_is_kept_in_at_least_float32_unless_asked(param_dtype, mu_dtype, expected):
    tx = optaxtra.lion(1e-3, mu_dtype=mu_dtype)
    params = {"w": jnp.ones(3, param_dtype), "n": jnp.arange(3)}
    state = tx.init(params)
    updates, state = jax.jit(tx.update)({"w": jnp.ones(3, param_dtype), "n": jnp.zeros(3, jnp.int32)}, state, params)
    assert state[0].mu["w"].dtype == expected
    assert state[0].mu["n"].dtype == jnp.int32
    assert updates["w"].dtype == param_dtype
