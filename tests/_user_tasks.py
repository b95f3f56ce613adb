"""A user's own tasks and optimizers, as ``optaxtra compare`` loads them (``file.py:function``).

The CLI tests pass this file's path on the command line, exactly as a user
passes theirs; some functions here are wrong on purpose, for the bad-input
tests.
"""

import jax
import jax.numpy as jnp
import optax

import optaxtra
from optaxtra.compare import Task


def regression():
    x = jax.random.normal(jax.random.key(0), (96, 4))
    y = x @ jnp.array([1.0, -2.0, 0.5, 3.0])

    def loss(w, batch):
        inputs, targets = batch
        return jnp.mean((inputs @ w - targets) ** 2)

    def sample_batch(key, batch_size):
        index = jax.random.randint(key, (batch_size,), 0, 64)
        return x[index], y[index]

    return Task(
        name="regression", init_params=lambda key: 0.1 * jax.random.normal(key, (4,)), loss=loss,
        sample_batch=sample_batch, validation=(x[64:], y[64:]), train_eval=(x[:64], y[:64]),
        target_loss=0.5, steps=20, batch_size=8, learning_rates=(1e-2, 1e-1))


def regression_to_target():
    """``regression`` with a validation target for the AlgoPerf-style report."""
    return regression()._replace(validation_target=8.0, validation_metric="loss")


def without_accuracy():
    """No accuracy function, so a target on accuracy (the default metric) is refused."""
    return regression()._replace(validation_target=None, validation_metric="accuracy")


def clipped_sgd(learning_rate):
    return optax.chain(optax.clip_by_global_norm(1.0), optaxtra.sgd(learning_rate, momentum=0.9))


def not_an_optimizer(learning_rate):
    return 42


def concrete_lr_adam(learning_rate):
    return optaxtra.adam(float(learning_rate))


def undescribed():
    return regression()._replace(name="tanh-regression", description="")
