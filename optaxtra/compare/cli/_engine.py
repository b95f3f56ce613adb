"""The sweep engine: every run of one optimizer as one compiled program.

A sweep is one optimizer trained on one task at ``K`` hyperparameter settings
times ``S`` seeds. The ``R = K * S`` runs share one program: ``jax.vmap`` over
the runs inside a ``lax.scan`` over the steps, the optimizer built inside the
vmapped step from traced hyperparameters. Seed ``s`` fixes the initial
parameters and the sequence of batches, for every optimizer and setting, so
runs with the same seed are paired.

The runs are split over the local devices (``_layout``).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from optaxtra import ScheduleFreeState, schedule_free_eval_params
from optaxtra._trees import find_states

from ..tasks._interface import Task
from ._layout import run_layout, spread_runs

__all__ = ["Sweep", "SweepResult", "initial_params", "run_sweep"]

Hyperparams = Mapping[str, jax.Array]


class Sweep(NamedTuple):
    """One optimizer over a grid of hyperparameter settings.

    Attributes:
      optimizer: the label shown in tables and plots.
      make: ``hyperparams -> GradientTransformation``, called inside the
        vmapped step with a dict of traced float32 scalars.
      settings: ``{name: values}``, one value per setting, all of one length.
      evaluate_at: ``(opt_state, params) -> params`` of one run, the weights
        the validation and final metrics are taken at (e.g.
        ``optaxtra.evaluation_params``: Lookahead's slow weights too); ``None``
        evaluates Schedule-Free at its ``x`` and every other optimizer at its
        params.
    """

    optimizer: str
    make: Callable[[Hyperparams], optax.GradientTransformation]
    settings: Mapping[str, Sequence[float]]
    evaluate_at: Callable[[Any, Any], Any] | None = None


class SweepResult(NamedTuple):
    """What a sweep measured, one row per run (setting-major, then seed).

    ``devices`` is how many devices the runs were split over (``run_layout``).
    """

    task: str
    optimizer: str
    settings: dict[str, np.ndarray]
    seeds: np.ndarray
    batch_size: int
    train_loss: np.ndarray
    eval_steps: np.ndarray
    validation_loss: np.ndarray
    validation_accuracy: np.ndarray
    final_train_loss: np.ndarray
    final_train_accuracy: np.ndarray
    compile_seconds: float
    run_seconds: float
    devices: int = 1


def _grid(sweep: Sweep, seeds: Sequence[int]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    lengths = {len(values) for values in sweep.settings.values()}
    if len(lengths) != 1:
        raise ValueError(f"{sweep.optimizer}: every hyperparameter needs one value per setting.")
    settings = {  # Kept in float64, so records show the values asked for; the program gets float32.
        name: np.repeat(np.asarray(values, np.float64), len(seeds)) for name, values in sweep.settings.items()
    }
    return settings, np.tile(np.asarray(seeds, np.int32), lengths.pop())


def initial_params(task: Task, seeds: Sequence[int]):
    """The initial parameters of every seed, stacked on a leading axis.

    Computed once per task and shared by all its sweeps (initialisers are
    slow to compile and need not be part of every sweep's program).
    """
    init = jax.jit(task.init_params)
    params = [init(jax.random.fold_in(jax.random.key(seed), 0)) for seed in seeds]
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *params)


def _evaluator(task: Task) -> Callable:
    def evaluate(params, batch) -> tuple[jax.Array, jax.Array]:
        loss = task.loss(params, batch).astype(jnp.float32)
        if task.accuracy is None:
            return loss, jnp.full((), jnp.nan, jnp.float32)
        return loss, task.accuracy(params, batch).astype(jnp.float32)

    return jax.vmap(evaluate, in_axes=(0, None))


def _evaluation_point(sweep: Sweep, opt_state: Any) -> Callable[[Any, Any], Any] | None:
    """``sweep.evaluate_at``; else Schedule-Free's ``x`` where the state has one; else None (the params).

    Schedule-Free trains ``y`` and is meant to be evaluated at ``x``
    (the authors' ``optimizer.eval()``): at ``y`` it would be judged at a
    point it never reports. Other optimizers are evaluated at their params.
    """
    if sweep.evaluate_at is not None:
        return sweep.evaluate_at
    return schedule_free_eval_params if find_states(opt_state, ScheduleFreeState) else None


def _program(task: Task, sweep: Sweep, steps: int, batch_size: int, eval_every: int, on_step) -> Callable:
    evaluate_params = _evaluator(task)

    def step_one(params, opt_state, hyperparams, seed, step):
        key = jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), 1), step)
        loss, grads = jax.value_and_grad(task.loss)(params, task.sample_batch(key, batch_size))
        updates, opt_state = sweep.make(hyperparams).update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss.astype(jnp.float32)

    def program(params, hyperparams, seeds):
        runs = seeds.shape[0]
        carry = (params, jax.vmap(lambda p, h: sweep.make(h).init(p))(params, hyperparams))
        at = _evaluation_point(sweep, carry[1])
        point = None if at is None else jax.vmap(at)

        def evaluate(params, opt_state, batch) -> tuple[jax.Array, jax.Array]:
            return evaluate_params(params if point is None else point(opt_state, params), batch)

        def kept(opt_state):  # The optimizer state goes through lax.cond only when it is read there.
            return None if point is None else opt_state

        before = evaluate(*carry, task.validation)
        skipped = (jnp.full((runs,), jnp.nan, jnp.float32),) * 2

        def body(carry, step):
            params, opt_state, loss = jax.vmap(step_one, in_axes=(0, 0, 0, 0, None))(
                *carry, hyperparams, seeds, step
            )
            done = step + 1
            checkpoint = (done % eval_every == 0) | (done == steps)
            metrics = jax.lax.cond(
                checkpoint, lambda c: evaluate(*c, task.validation), lambda c: skipped, (params, kept(opt_state))
            )
            if on_step is not None:
                jax.lax.cond(checkpoint, lambda: jax.debug.callback(on_step, done), lambda: None)
            return (params, opt_state), (loss, *metrics)

        carry, (losses, val_loss, val_acc) = jax.lax.scan(body, carry, jnp.arange(steps, dtype=jnp.int32))
        if task.train_eval is not None:
            final = evaluate(*carry, task.train_eval)
        else:
            tail = max(1, steps // 20)
            final = (jnp.mean(losses[-tail:], axis=0), jnp.full((runs,), jnp.nan, jnp.float32))
        return losses, before, val_loss, val_acc, final

    return program


def run_sweep(
    task: Task,
    sweep: Sweep,
    seeds: Sequence[int],
    *,
    steps: int,
    batch_size: int,
    evaluations: int = 10,
    initial=None,
    on_compiled: Callable[[], None] | None = None,
    on_step: Callable[[int], None] | None = None,
    devices: Sequence[jax.Device] | None = None,
) -> SweepResult:
    """Trains every (setting, seed) of ``sweep`` on ``task`` in one compiled program.

    Args:
      task: the problem.
      sweep: the optimizer and its hyperparameter settings.
      seeds: integer seeds; seed ``s`` fixes the initialisation and the batches.
      steps: optimizer steps per run, >= 1.
      batch_size: examples per step, >= 1.
      evaluations: validation checkpoints (plus one before training).
      initial: ``initial_params(task, seeds)``, computed here when ``None``.
      on_compiled: called once compilation has finished.
      on_step: called from the running program with the step reached, at
        every checkpoint (for a progress bar).
      devices: the devices the runs are split over (``run_layout``);
        ``None``: every local device of JAX's default backend.

    Returns:
      A ``SweepResult``. Diverged runs hold NaN or inf; nothing is filtered.
    """
    settings, run_seeds = _grid(sweep, seeds)
    eval_every = max(1, steps // max(1, evaluations))
    program = jax.jit(_program(task, sweep, steps, batch_size, eval_every, on_step))
    if initial is None:
        initial = initial_params(task, seeds)
    settings_count = len(run_seeds) // len(seeds)
    params = jax.tree.map(lambda leaf: jnp.tile(leaf, (settings_count,) + (1,) * (leaf.ndim - 1)), initial)
    hyperparams = {name: jnp.asarray(values, jnp.float32) for name, values in settings.items()}
    devices = jax.local_devices() if devices is None else list(devices)
    runs = len(run_seeds)
    used, padded = run_layout(runs, len(devices))
    arguments = spread_runs((params, hyperparams, jnp.asarray(run_seeds)), devices[:used], padded)
    started = time.perf_counter()
    compiled = program.lower(*arguments).compile()
    compiled_at = time.perf_counter()
    if on_compiled is not None:
        on_compiled()
    outputs = jax.block_until_ready(compiled(*arguments))
    finished = time.perf_counter()
    losses, before, val_loss, val_acc, final = jax.tree.map(np.asarray, outputs)
    losses, val_loss, val_acc = losses[:, :runs], val_loss[:, :runs], val_acc[:, :runs]  # Padding dropped.
    before, final = jax.tree.map(lambda values: values[:runs], (before, final))
    done = np.arange(1, steps + 1)
    checkpoints = (done % eval_every == 0) | (done == steps)
    return SweepResult(
        task=task.name,
        optimizer=sweep.optimizer,
        settings=settings,
        seeds=run_seeds,
        batch_size=batch_size,
        train_loss=losses.T,
        eval_steps=np.concatenate([[0], done[checkpoints]]),
        validation_loss=np.concatenate([before[0][:, None], val_loss[checkpoints].T], axis=1),
        validation_accuracy=np.concatenate([before[1][:, None], val_acc[checkpoints].T], axis=1),
        final_train_loss=final[0],
        final_train_accuracy=final[1],
        compile_seconds=compiled_at - started,
        run_seconds=finished - compiled_at,
        devices=used,
    )
