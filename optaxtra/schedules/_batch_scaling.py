"""Scaling a base learning rate with the batch size: linear and square-root rules."""

from __future__ import annotations

import math

import jax.numpy as jnp

from .._hyperparams import ScalarOrSchedule
from .._validation import check_int, check_real

__all__ = ["linear_batch_scaling", "sqrt_batch_scaling"]


def _scaled(learning_rate: ScalarOrSchedule, factor: float) -> ScalarOrSchedule:
    if callable(learning_rate):
        return lambda count: jnp.asarray(learning_rate(count), jnp.float32) * factor
    return learning_rate * factor


def _check(learning_rate: ScalarOrSchedule, batch_size: int, base_batch_size: int) -> None:
    check_real("learning_rate", learning_rate, 0.0)
    check_int("batch_size", batch_size, 1)
    check_int("base_batch_size", base_batch_size, 1)


def linear_batch_scaling(
    learning_rate: ScalarOrSchedule, batch_size: int, base_batch_size: int = 256
) -> ScalarOrSchedule:
    r"""The linear scaling rule: ``learning_rate * batch_size / base_batch_size``.

    Goyal et al.: "when the minibatch size is multiplied by k, multiply the
    learning rate by k" (their ResNet-50 recipe is ``0.1 * batch_size / 256``
    for SGD, with a gradual warm-up; see ``linear_warmup``).

    Args:
      learning_rate: the rate tuned at ``base_batch_size``: a number >= 0, an
        array or a schedule (scaled value by value).
      batch_size: the batch size to train with, an integer >= 1.
      base_batch_size: the batch size ``learning_rate`` was tuned for.

    Returns:
      The scaled rate, of the same kind as ``learning_rate``.

    Example:
      >>> import optaxtra
      >>> optaxtra.linear_batch_scaling(0.1, batch_size=8192)
      3.2

    References:
      Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in 1
      Hour", 2017. https://arxiv.org/abs/1706.02677
    """
    _check(learning_rate, batch_size, base_batch_size)
    return _scaled(learning_rate, batch_size / base_batch_size)


def sqrt_batch_scaling(
    learning_rate: ScalarOrSchedule, batch_size: int, base_batch_size: int = 256
) -> ScalarOrSchedule:
    r"""The square-root rule: ``learning_rate * sqrt(batch_size / base_batch_size)``.

    Keeps the variance of the update constant as the batch grows (Krizhevsky
    2014; Hoffer et al. 2017); You et al. use it to scale LAMB's learning rate
    from BERT's batch of 512 to 64k without retuning.

    Args:
      learning_rate: the rate tuned at ``base_batch_size``: a number >= 0, an
        array or a schedule.
      batch_size: the batch size to train with, an integer >= 1.
      base_batch_size: the batch size ``learning_rate`` was tuned for.

    Returns:
      The scaled rate, of the same kind as ``learning_rate``.

    Example:
      >>> import optaxtra
      >>> optaxtra.sqrt_batch_scaling(1e-3, batch_size=1024, base_batch_size=256)
      0.002

    References:
      You et al., "Large Batch Optimization for Deep Learning: Training BERT in
      76 minutes", ICLR 2020. https://arxiv.org/abs/1904.00962

      Krizhevsky, "One weird trick for parallelizing convolutional neural
      networks", 2014. https://arxiv.org/abs/1404.5997
    """
    _check(learning_rate, batch_size, base_batch_size)
    return _scaled(learning_rate, math.sqrt(batch_size / base_batch_size))
