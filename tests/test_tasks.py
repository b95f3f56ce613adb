"""The bundled tasks, the ``Task`` interface, and the sweep engine's promises.

The engine promises that a run inside a vmapped sweep is the run alone, and
that runs with the same seed start from the same parameters and see the same
batches, whatever the optimizer (so comparisons can be paired by seed).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optaxtra
from optaxtra.compare import charlm_task, check_task, digits_task
from optaxtra.compare.cli._engine import Sweep, run_sweep
from optaxtra.compare.tasks._charlm import pydoc_text
from tests._user_tasks import regression


def adam_sweep(rates):
    return Sweep("adam", lambda h: optaxtra.adam(h["learning_rate"]), {"learning_rate": rates})


def test_digits_split_is_stratified_and_loss_starts_at_chance():
    task = check_task(digits_task(hidden=(32,)))
    images, labels = task.validation
    train_images, train_labels = task.train_eval
    assert images.shape[1] == 64 and images.shape[0] + train_images.shape[0] == 1797
    assert abs(images.shape[0] - 0.2 * 1797) < 10
    counts = np.bincount(np.asarray(labels), minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38
    assert float(jnp.max(train_images)) == 1.0
    params = jax.jit(task.init_params)(jax.random.key(0))
    assert abs(float(jax.jit(task.loss)(params, task.validation)) - math.log(10)) < 0.5
    x, y = jax.jit(task.sample_batch, static_argnums=1)(jax.random.key(1), 5)
    assert x.shape == (5, 64) and y.dtype == jnp.int32


def test_charlm_reads_pydoc_and_predicts_characters():
    task = check_task(
        charlm_task(context=16, width=32, depth=1, heads=2, evaluation_windows=4)
    )
    assert task.validation.shape == (4, 17) and task.train_eval.shape == (4, 17)
    batch = jax.jit(task.sample_batch, static_argnums=1)(jax.random.key(0), 3)
    assert batch.shape == (3, 17) and batch.dtype == jnp.int32
    params = jax.jit(task.init_params)(jax.random.key(0))
    vocabulary = len(set(pydoc_text()))
    assert 80 < vocabulary < 200
    loss, accuracy = jax.jit(lambda p, b: (task.loss(p, b), task.accuracy(p, b)))(params, batch)
    assert abs(float(loss) - math.log(vocabulary)) < 0.5
    assert 0.0 <= float(accuracy) <= 1.0


def test_default_charlm_model_size():
    task = charlm_task()
    count = sum(leaf.size for leaf in jax.tree.leaves(jax.eval_shape(task.init_params, jax.random.key(0))))
    assert 200_000 < count < 1_000_000  # "a few hundred thousand" (#8)


def test_check_task_names_the_problem():
    task = regression()
    with pytest.raises(ValueError, match="loss must return a scalar"):
        check_task(task._replace(loss=lambda w, batch: batch[0] @ w))
    with pytest.raises(TypeError, match="expected an optaxtra.compare.Task"):
        check_task({"name": "dict"})
    with pytest.raises(ValueError, match="learning_rates must be positive"):
        check_task(task._replace(learning_rates=(1e-3, 0.0)))


def test_a_run_in_a_sweep_is_the_run_alone():
    task = regression()
    together = run_sweep(task, adam_sweep([1e-2, 1e-1]), [0, 1], steps=15, batch_size=8)
    alone = run_sweep(task, adam_sweep([1e-1]), [1], steps=15, batch_size=8)
    np.testing.assert_allclose(together.train_loss[3], alone.train_loss[0], rtol=1e-5)
    np.testing.assert_allclose(together.validation_loss[3], alone.validation_loss[0], rtol=1e-5)
    assert together.eval_steps[0] == 0 and together.eval_steps[-1] == 15


def test_same_seed_same_start_and_batches_across_optimizers():
    task = regression()
    adam = run_sweep(task, adam_sweep([1e-2]), [0, 1], steps=3, batch_size=8)
    sgd = run_sweep(
        task,
        Sweep("sgd", lambda h: optax.sgd(h["learning_rate"]), {"learning_rate": [1e-2]}),
        [0, 1],
        steps=3,
        batch_size=8,
    )
    np.testing.assert_array_equal(adam.validation_loss[:, 0], sgd.validation_loss[:, 0])
    np.testing.assert_array_equal(adam.train_loss[:, 0], sgd.train_loss[:, 0])  # First batch, same params.
    assert adam.validation_loss[0, 0] != adam.validation_loss[1, 0]


def test_a_nan_run_does_not_touch_its_neighbours():
    task = regression()
    result = run_sweep(task, adam_sweep([1e-2, 1e30]), [0], steps=5, batch_size=8)
    alone = run_sweep(task, adam_sweep([1e-2]), [0], steps=5, batch_size=8)
    assert not np.isfinite(result.final_train_loss[1])
    np.testing.assert_allclose(result.train_loss[0], alone.train_loss[0], rtol=1e-5)


def test_mnist1d_is_generated_offline_with_the_papers_defaults(monkeypatch):
    import random
    import socket

    from optaxtra.compare import mnist1d_task

    def no_network(*args, **kwargs):
        raise AssertionError("mnist1d tried to open a socket")

    monkeypatch.setattr(socket, "socket", no_network)
    numpy_state, python_state = np.random.get_state()[1].copy(), random.getstate()
    cnn, mlp = check_task(mnist1d_task("cnn")), check_task(mnist1d_task("mlp"))
    np.testing.assert_array_equal(np.random.get_state()[1], numpy_state)  # The generator's seeding is undone.
    assert random.getstate() == python_state
    (x, y), (train_x, _) = cnn.validation, cnn.train_eval
    assert x.shape == (1000, 40) and train_x.shape == (4000, 40) and cnn.name == "mnist1d"
    assert np.bincount(np.asarray(y), minlength=10).min() > 70 and mlp.name == "mnist1d_mlp"
    assert abs(cnn.baseline_loss - math.log(10)) < 0.01 and 0.08 < cnn.baseline_accuracy < 0.13
    for task, parameters in ((cnn, 5210), (mlp, 15210)):  # The paper's ConvBase and MLP.
        shapes = jax.eval_shape(task.init_params, jax.random.key(0))
        assert sum(leaf.size for leaf in jax.tree.leaves(shapes)) == parameters
    params = jax.jit(cnn.init_params)(jax.random.key(0))
    assert abs(float(jax.jit(cnn.loss)(params, cnn.validation)) - math.log(10)) < 0.5
    result = run_sweep(cnn, adam_sweep([1e-2]), [0], steps=30, batch_size=32)
    assert result.validation_loss[0, -1] < result.validation_loss[0, 0]
