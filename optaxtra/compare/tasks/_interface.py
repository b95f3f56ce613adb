"""``Task``: the small interface every problem ``optaxtra compare`` trains on implements."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

__all__ = ["VALIDATION_METRICS", "Task", "check_task", "frequency_baseline"]

VALIDATION_METRICS = ("accuracy", "loss")
"""What ``Task.validation_target`` is a target of: higher accuracy or lower loss is better."""

Params = Any
Batch = Any


class Task(NamedTuple):
    """A training problem: parameters, a loss, a batch sampler and held-out data.

    ``optaxtra compare`` runs every (hyperparameter, seed) of one optimizer in
    one compiled program: ``jax.vmap`` over the runs inside a ``lax.scan`` over
    the steps. So the three functions must be pure and jittable, and batches
    are drawn *inside* that program from a key: close over the training arrays
    (as ``jax.numpy`` arrays) and index them with ``jax.random``.

    Attributes:
      name: short name, used in tables, file names and plots.
      init_params: ``key -> params``, a pytree of float arrays.
      loss: ``(params, batch) -> scalar`` mean loss, float32.
      sample_batch: ``(key, batch_size) -> batch``; ``batch_size`` is a Python int.
      validation: a held-out batch (any pytree of arrays ``loss`` accepts),
        evaluated in one piece at each checkpoint.
      train_eval: a fixed batch of training data, evaluated once at the end to
        report the final training loss and accuracy; ``None`` reports the
        mean minibatch loss of the last steps instead.
      accuracy: ``(params, batch) -> scalar`` fraction correct, or ``None``
        for a task without one.
      target_loss: the training loss "steps to target" counts steps to reach.
      steps: default number of optimizer steps.
      batch_size: default batch size.
      learning_rates: default learning-rate grid.
      description: one line for ``--help`` and the report.
      baseline_loss: the validation loss of predicting the training-label
        frequencies (``frequency_baseline``), or ``None``. A run that got
        clearly below it and ended not clearly below it (and, where
        ``baseline_accuracy`` is known, at about that accuracy) is *collapsed*.
      baseline_accuracy: the validation accuracy of always predicting the
        most frequent training label (chance), or ``None``.
      validation_target: the value of ``validation_metric`` that the
        AlgoPerf-style report counts the steps (and seconds) to reach, or
        ``None`` for no such report on this task. The bundled tasks' targets
        are set from reference runs of AdamW (``_targets.reference_target``;
        the README's "AlgoPerf-style report" gives the runs).
      validation_metric: ``"accuracy"`` (reached when ``>=`` the target;
        needs ``accuracy``) or ``"loss"`` (reached when ``<=`` it).

    Example:
      A least-squares task, trained with ``optaxtra compare --task
      my_module:regression`` where ``my_module.py`` holds:

      >>> import jax, jax.numpy as jnp
      >>> from optaxtra.compare import Task, check_task
      >>> def regression() -> Task:
      ...     x = jax.random.normal(jax.random.key(0), (256, 8))
      ...     y = x @ jnp.arange(8.0)
      ...     def loss(w, batch):
      ...         inputs, targets = batch
      ...         return jnp.mean((inputs @ w - targets) ** 2)
      ...     def sample_batch(key, batch_size):
      ...         index = jax.random.randint(key, (batch_size,), 0, 200)
      ...         return x[index], y[index]
      ...     return Task(
      ...         name="regression", init_params=lambda key: jnp.zeros(8), loss=loss,
      ...         sample_batch=sample_batch, validation=(x[200:], y[200:]), target_loss=1.0)
      >>> check_task(regression()).name
      'regression'
    """

    name: str
    init_params: Callable[[jax.Array], Params]
    loss: Callable[[Params, Batch], jax.Array]
    sample_batch: Callable[[jax.Array, int], Batch]
    validation: Batch
    train_eval: Batch | None = None
    accuracy: Callable[[Params, Batch], jax.Array] | None = None
    target_loss: float | None = None
    steps: int = 500
    batch_size: int = 64
    learning_rates: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2)
    description: str = ""
    baseline_loss: float | None = None
    baseline_accuracy: float | None = None
    validation_target: float | None = None
    validation_metric: str = "accuracy"


def frequency_baseline(
    train_labels: np.ndarray, validation_labels: np.ndarray, classes: int
) -> dict[str, float]:
    """What a classifier that learned nothing about its inputs scores on ``validation_labels``.

    Returns:
      ``{"baseline_loss": ..., "baseline_accuracy": ...}`` (pass as ``Task(**...)``): the
      cross-entropy of always predicting the training-label frequencies
      (``ln classes`` for balanced classes), and the accuracy of always
      predicting the most frequent training label. A collapsed run ends there.
    """
    train = np.asarray(train_labels).ravel()
    validation = np.asarray(validation_labels).ravel()
    counts = np.bincount(train, minlength=classes).astype(np.float64)
    frequencies = (counts + 0.5) / (counts.sum() + 0.5 * classes)  # Never log 0 for an unseen label.
    return {
        "baseline_loss": float(-np.mean(np.log(frequencies[validation]))),
        "baseline_accuracy": float(np.mean(validation == np.argmax(counts))),
    }


def _scalar(what: str, value: Any, task_name: str) -> None:
    shape = getattr(value, "shape", None)
    if shape != ():
        raise ValueError(f"task {task_name!r}: {what} must return a scalar, got shape {shape}.")


def check_task(task: Any) -> Task:
    """Checks a ``Task`` by tracing it once (no FLOPs spent), with clear errors.

    Args:
      task: the object to check.

    Returns:
      ``task``, unchanged.

    Raises:
      TypeError: if ``task`` is not a ``Task`` or a field has the wrong type.
      ValueError: if a function returns the wrong shape or a default is invalid.

    Example:
      A loss that forgets to average is caught before any training:

      >>> import jax.numpy as jnp
      >>> from optaxtra.compare import Task, check_task
      >>> task = Task(
      ...     name="bad", init_params=lambda key: jnp.zeros(3),
      ...     loss=lambda w, batch: w * jnp.mean(batch),  # shape (3,), not a scalar
      ...     sample_batch=lambda key, n: jnp.ones(n), validation=jnp.ones(4))
      >>> check_task(task)
      Traceback (most recent call last):
      ...
      ValueError: task 'bad': loss must return a scalar, got shape (3,).
    """
    if not isinstance(task, Task):
        raise TypeError(f"expected an optaxtra.compare.Task, got {type(task).__name__}.")
    for field in ("init_params", "loss", "sample_batch"):
        if not callable(getattr(task, field)):
            raise TypeError(f"task {task.name!r}: {field} must be callable.")
    if task.accuracy is not None and not callable(task.accuracy):
        raise TypeError(f"task {task.name!r}: accuracy must be callable or None.")
    if isinstance(task.steps, bool) or not isinstance(task.steps, int) or task.steps < 1:
        raise ValueError(f"task {task.name!r}: steps must be an integer >= 1, got {task.steps!r}.")
    if isinstance(task.batch_size, bool) or not isinstance(task.batch_size, int) or task.batch_size < 1:
        raise ValueError(f"task {task.name!r}: batch_size must be an integer >= 1, got {task.batch_size!r}.")
    if task.validation_metric not in VALIDATION_METRICS:
        raise ValueError(
            f"task {task.name!r}: validation_metric must be one of {VALIDATION_METRICS}, "
            f"got {task.validation_metric!r}."
        )
    if task.validation_target is not None and task.validation_metric == "accuracy" and task.accuracy is None:
        raise ValueError(f"task {task.name!r}: a validation_target on accuracy needs an accuracy function.")
    rates = np.asarray(task.learning_rates, dtype=np.float64)
    if rates.ndim != 1 or rates.size == 0 or not np.all(rates > 0):
        raise ValueError(f"task {task.name!r}: learning_rates must be positive numbers.")
    params = jax.eval_shape(task.init_params, jax.random.key(0))
    for leaf in jax.tree.leaves(params):
        if not jnp.issubdtype(leaf.dtype, jnp.floating):
            raise TypeError(f"task {task.name!r}: init_params must return float arrays, got {leaf.dtype}.")
    batch = jax.eval_shape(lambda key: task.sample_batch(key, 2), jax.random.key(0))
    _scalar("loss", jax.eval_shape(task.loss, params, batch), task.name)
    _scalar("loss on validation", jax.eval_shape(task.loss, params, task.validation), task.name)
    if task.accuracy is not None:
        _scalar("accuracy", jax.eval_shape(task.accuracy, params, task.validation), task.name)
    return task


def classifier(network: Any, train_x: jax.Array, train_y: jax.Array) -> dict[str, Callable[..., Any]]:
    """``init_params``, ``loss`` (softmax cross-entropy), ``accuracy`` and ``sample_batch`` of a
    Flax classifier ``network`` trained on ``(train_x, train_y)``: the ``Task`` fields every
    classification task fills the same way."""

    def init_params(key: jax.Array):
        return network.init(key, jnp.zeros((1, train_x.shape[1]), jnp.float32))

    def loss(params, batch) -> jax.Array:
        x, y = batch
        return optax.softmax_cross_entropy_with_integer_labels(network.apply(params, x), y).mean()

    def accuracy(params, batch) -> jax.Array:
        x, y = batch
        return jnp.mean((jnp.argmax(network.apply(params, x), axis=-1) == y).astype(jnp.float32))

    def sample_batch(key: jax.Array, batch_size: int):
        index = jax.random.randint(key, (batch_size,), 0, train_x.shape[0])
        return train_x[index], train_y[index]

    return {"init_params": init_params, "loss": loss, "accuracy": accuracy, "sample_batch": sample_batch}
