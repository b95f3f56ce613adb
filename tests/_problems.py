"""A small deterministic problem and trajectory runners shared by the parity tests.

The problem is two convex, smooth sub-problems on fixed data, so that float32
rounding differences between two implementations of the same optimizer shrink
along the trajectory instead of growing (nothing here is chaotic):

* least squares ``0.5 * mean_i ||A_i K + b - Y_i||^2`` in ``kernel`` (4, 3) and
  ``bias`` (3,);
* logistic regression ``mean_i softplus(-y_i (Z_i s + c))`` in ``shift`` (6,)
  and ``scale`` (), with labels that are not separable (finite optimum).

The leaves have four shapes (matrix, vector, vector, scalar). ``bias`` starts
at zero (a zero-norm layer: the trust ratio's special case) and ``shift``
starts with a norm of 11.3 (above torch-optimizer's Lamb clamp of 10), with
every entry far enough from zero that no optimizer here moves it across zero.

The same loss is written three times: in JAX (differentiated by ``jax.grad``),
in PyTorch (autograd) and as a float64 numpy gradient for the transcriptions
of the papers. Parameters are dicts ordered by key, which is JAX's order.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

__all__ = [
    "NAMES",
    "case",
    "run_torch_open_loop",
    "initial_params",
    "loss_jax",
    "grad_numpy",
    "run_optax",
    "run_updates",
    "run_torch",
    "run_numpy",
    "assert_trajectories_close",
]

NAMES = ("bias", "kernel", "scale", "shift")

_rng = np.random.default_rng(20190808)
_A = _rng.normal(size=(32, 4))
_Y = _A @ _rng.normal(size=(4, 3)) + np.array([1.0, -2.0, 0.5]) + 0.3 * _rng.normal(size=(32, 3))
_Z = _rng.normal(size=(32, 6))
_LABELS = np.sign(_Z @ np.array([1.0, -1.0, 0.5, 0.0, 2.0, -0.5]) + 1.5 * _rng.normal(size=32))
_INITIAL = {
    "bias": np.zeros(3),
    "kernel": _rng.normal(size=(4, 3)),
    "scale": np.array(0.7),
    "shift": np.array([4.0, -5.0, 3.0, -6.0, 5.0, -4.0]),
}

Params = dict[str, np.ndarray]
Trajectory = dict[str, np.ndarray]


def initial_params(dtype: Any = np.float32) -> Params:
    """The starting point, a fresh copy.

    Args:
      dtype: numpy dtype of the leaves.

    Returns:
      ``{name: array}`` with the keys of ``NAMES``.
    """
    return {name: _INITIAL[name].astype(dtype) for name in NAMES}


def loss_jax(params: Mapping[str, jax.Array]) -> jax.Array:
    """The problem's loss, in the params' dtype."""
    dtype = params["kernel"].dtype
    a, y, z, labels = (jnp.asarray(x, dtype) for x in (_A, _Y, _Z, _LABELS))
    residual = a @ params["kernel"] + params["bias"][None, :] - y
    least_squares = 0.5 * jnp.mean(jnp.sum(residual**2, axis=1))
    logits = z @ params["shift"] + params["scale"][None]
    logistic = jnp.mean(jax.nn.softplus(-labels * logits))
    return least_squares + logistic


_TORCH_DATA = tuple(torch.tensor(x, dtype=torch.float32) for x in (_A, _Y, _Z, _LABELS))


def _loss_torch(params: Mapping[str, torch.Tensor]) -> torch.Tensor:
    a, y, z, labels = _TORCH_DATA
    residual = a @ params["kernel"] + params["bias"] - y
    least_squares = 0.5 * torch.mean(torch.sum(residual**2, dim=1))
    logits = z @ params["shift"] + params["scale"]
    logistic = torch.mean(torch.nn.functional.softplus(-labels * logits))
    return least_squares + logistic


def grad_numpy(params: Params) -> Params:
    """The exact gradient of the loss in float64, written out by hand.

    Args:
      params: ``{name: array}``.

    Returns:
      ``{name: gradient}`` in float64.
    """
    n = _A.shape[0]
    residual = _A @ params["kernel"] + params["bias"] - _Y
    logits = _Z @ params["shift"] + params["scale"]
    dlogits = -_LABELS / (1 + np.exp(_LABELS * logits)) / n
    return {
        "bias": residual.sum(axis=0) / n,
        "kernel": _A.T @ residual / n,
        "scale": np.asarray(dlogits.sum()),
        "shift": _Z.T @ dlogits,
    }


def run_optax(
    tx: optax.GradientTransformation,
    steps: int,
    params: Params | None = None,
    state: Any = None,
) -> tuple[Trajectory, Any]:
    """Runs ``tx`` on the problem for ``steps`` steps, jitted as one ``lax.scan``.

    Args:
      tx: the optimizer.
      steps: number of updates.
      params: starting params (float32); ``initial_params()`` if None.
      state: starting optimizer state; ``tx.init(params)`` if None.

    Returns:
      ``(trajectory, final_state)``, where the trajectory maps each name to an
      array of shape ``(steps, *leaf_shape)``: the params after every step.
    """
    params = jax.tree.map(jnp.asarray, initial_params() if params is None else params)
    state = tx.init(params) if state is None else state

    def step(carry, _):
        params, state = carry
        grads = jax.grad(loss_jax)(params)
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        return (params, state), params

    (_, state), trajectory = jax.jit(lambda c: jax.lax.scan(step, c, length=steps))((params, state))
    return {name: np.asarray(trajectory[name]) for name in NAMES}, state


def run_updates(
    tx: optax.GradientTransformation, grads: Params, params: Params | None = None
) -> tuple[Params, Any]:
    """Feeds a fixed sequence of gradients to ``tx`` (open loop), params held fixed.

    Args:
      tx: the transformation.
      grads: ``{name: array of shape (steps, *leaf_shape)}``.
      params: the params passed to ``update``; ``initial_params()`` if None.

    Returns:
      ``(updates, states)``: the updates of every step, stacked like ``grads``,
      and the states after every step, stacked along a leading axis.
    """
    params = jax.tree.map(jnp.asarray, initial_params() if params is None else params)

    def step(state, g):
        updates, state = tx.update(g, state, params)
        return state, (updates, state)

    run = jax.jit(lambda s, g: jax.lax.scan(step, s, g)[1])
    updates, states = run(tx.init(params), jax.tree.map(jnp.asarray, grads))
    return jax.tree.map(np.asarray, updates), states


def run_torch(
    make_optimizer: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
    steps: int,
    params: Params | None = None,
) -> Trajectory:
    """Runs a PyTorch optimizer on the same problem, in float32.

    Args:
      make_optimizer: ``list of tensors (ordered as NAMES) -> optimizer``.
      steps: number of steps.
      params: starting params; ``initial_params()`` if None.

    Returns:
      The trajectory, as ``run_optax`` returns it.
    """
    params = initial_params() if params is None else params
    tensors = {name: torch.tensor(params[name], requires_grad=True) for name in NAMES}
    optimizer = make_optimizer([tensors[name] for name in NAMES])
    trajectory: dict[str, list[np.ndarray]] = {name: [] for name in NAMES}
    # One thread: the tensors are tiny, and idle intra-op threads spin on a busy machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(steps):
            optimizer.zero_grad()
            _loss_torch(tensors).backward()
            optimizer.step()
            for name in NAMES:
                trajectory[name].append(tensors[name].detach().numpy().copy())
    finally:
        torch.set_num_threads(threads)
    return {name: np.stack(values) for name, values in trajectory.items()}


def run_numpy(
    step: Callable[[Params, Params, int], Params], steps: int, params: Params | None = None
) -> Trajectory:
    """Runs a float64 transcription ``step(params, grads, t) -> new params``.

    ``step`` keeps whatever state it needs in its own closure; ``t`` is the
    1-based step.

    Args:
      step: the transcription of one step.
      steps: number of steps.
      params: starting params; ``initial_params(np.float64)`` if None.

    Returns:
      The trajectory, as ``run_optax`` returns it, in float64.
    """
    params = initial_params(np.float64) if params is None else params
    trajectory: dict[str, list[np.ndarray]] = {name: [] for name in NAMES}
    for t in range(1, steps + 1):
        params = step(params, grad_numpy(params), t)
        for name in NAMES:
            trajectory[name].append(np.array(params[name], np.float64))
    return {name: np.stack(values) for name, values in trajectory.items()}


def assert_trajectories_close(
    actual: Trajectory, expected: Trajectory, *, rtol: float, atol: float = 0.0
) -> None:
    """Asserts ``|actual - expected| <= atol + rtol * |expected|`` at every step and leaf.

    A NaN or infinity in either trajectory fails unless both hold the same
    value there. On failure the message names the first step and leaf that
    fails and the largest relative error.

    Args:
      actual: a trajectory (e.g. optaxtra's).
      expected: the reference trajectory.
      rtol: relative tolerance.
      atol: absolute tolerance.
    """
    for name in NAMES:
        a = np.asarray(actual[name], np.float64)
        e = np.asarray(expected[name], np.float64)
        assert a.shape == e.shape, (name, a.shape, e.shape)
        error = np.abs(a - e)
        same_nonfinite = (a == e) | (np.isnan(a) & np.isnan(e))
        bad = ~(error <= atol + rtol * np.abs(e)) & ~same_nonfinite
        if bad.any():
            first = int(np.argmax(bad.reshape(len(bad), -1).any(axis=1)))
            worst = float(np.max(error / np.maximum(np.abs(e), 1e-30)))
            raise AssertionError(
                f"{name!r} first differs at step {first + 1}: {a[first]} vs {e[first]} "
                f"(rtol={rtol}, atol={atol}; worst relative error {worst:.3g})."
            )


def case(name: str, ours: Callable[[], Any], reference: Callable[..., Any], steps: int, *marks: Any) -> Any:
    """A row of a parity table: (optaxtra optimizer, reference optimizer factory, steps), named ``name``."""
    return pytest.param(ours, reference, steps, id=name, marks=marks)


def run_torch_open_loop(
    make_optimizer: Callable[[list[torch.Tensor]], torch.optim.Optimizer], grads: Mapping[str, np.ndarray]
) -> Trajectory:
    """The params after each step of a PyTorch optimizer fed fixed gradients (``grads[name][t]``).

    For conventions the problem's own gradients never reach (a clip that never
    binds): both sides get the same gradient sequence, whatever their params.
    """
    tensors = {name: torch.tensor(value) for name, value in initial_params().items()}
    optimizer = make_optimizer([tensors[name] for name in NAMES])
    trajectory = {name: [] for name in NAMES}
    for t in range(len(grads[NAMES[0]])):
        for name in NAMES:
            tensors[name].grad = torch.tensor(grads[name][t])
        optimizer.step()
        for name in NAMES:
            trajectory[name].append(tensors[name].numpy().copy())
    return {name: np.stack(values) for name, values in trajectory.items()}
