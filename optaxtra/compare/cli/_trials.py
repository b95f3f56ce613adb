"""``--trials N``: every optimizer gets the same ``N`` random-search trials, run as one program.

The search space (fixed, like AlgoPerf's external-tuning baselines; the
ranges of ``1 - b1`` and the weight decay are those of its AdamW baseline,
whose decay, like ``optaxtra.adamw``'s, is multiplied by the learning rate):

==================  ===========================================================
``learning_rate``   log-uniform over the learning-rate grid's range (the
                    task's ``learning_rates``, or ``--lrs``): min to max
``b1``              ``1 - u``, ``u`` log-uniform on [0.02, 0.5]: b1 in [0.5, 0.98]
``b2``              ``1 - u``, ``u`` log-uniform on [0.001, 0.1]: b2 in [0.9, 0.999]
``weight_decay``    log-uniform on [0.005, 1]
==================  ===========================================================

Trial ``i`` is the same point for every optimizer (drawn once from
``--trials-seed``); each optimizer uses the coordinates it has: ``b1`` and
``b2`` where its alias takes them, ``momentum`` (from the ``b1`` draw) for
SGD with momentum and LARS (Muon's must be a Python number), ``weight_decay``
only where the library's optimizer decays weights by default (``adamw``,
``lamb``, ...: searching a decay for ``adam`` would turn it into another
optimizer). A user's
``module:function`` takes the learning rate only. All trials times all seeds
of one optimizer are lanes of one compiled program, the hyperparameters
traced like the learning rate.

References:
  Bergstra & Bengio, "Random Search for Hyper-Parameter Optimization", JMLR
  2012. https://jmlr.org/papers/v13/bergstra12a.html;
  Nado et al., "A Large Batch Optimizer Reality Check", 2021.
  https://arxiv.org/abs/2102.06356;
  Dahl et al., "Benchmarking Neural Network Training Algorithms", 2023.
  https://arxiv.org/abs/2306.07179
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

import optaxtra

from ._engine import Sweep
from ._errors import UsageError
from ._runner import with_warmup

__all__ = ["SEARCH_SPACE", "TRIAL_COLUMNS", "sample_trials", "trial_keys", "trial_sweep", "tuned_hyperparameters"]

SEARCH_SPACE = {
    "learning_rate": "log-uniform over [min, max] of the learning-rate grid",
    "b1": "1 - log-uniform[0.02, 0.5]",
    "b2": "1 - log-uniform[0.001, 0.1]",
    "weight_decay": "log-uniform[0.005, 1]",
}
"""The search space, as recorded in ``results.json``."""

_ONE_MINUS_B1 = (0.02, 0.5)
_ONE_MINUS_B2 = (1e-3, 0.1)
_WEIGHT_DECAY = (5e-3, 1.0)

# Library names that are not their alias with its own defaults: the alias, and what is tuned.
_SPECIAL: dict[str, tuple[Callable[..., optax.GradientTransformation], tuple[str, ...]]] = {
    "sgd": (optaxtra.sgd, ()),
    "sgd_momentum": (optaxtra.sgd, ("momentum",)),
    "sgd_nesterov": (functools.partial(optaxtra.sgd, nesterov=True), ("momentum",)),
    "lamb": (optaxtra.lamb, ("b1", "b2", "weight_decay")),
    "ralamb": (optaxtra.ralamb, ("b1", "b2", "weight_decay")),
    "lars": (optaxtra.lars, ("momentum", "weight_decay")),
    "lookahead_adam": (lambda lr, b1, b2: optaxtra.lookahead(optaxtra.adam(lr, b1=b1, b2=b2)), ("b1", "b2")),
    "simplified_ademamix": (optaxtra.OPTIMIZERS["simplified_ademamix"], ()),  # Its b1 is a half-life schedule.
    "muon": (optaxtra.muon, ("weight_decay",)),  # Its momentum must be a Python number.
}


def _log_uniform(draws: np.ndarray, low: float, high: float) -> np.ndarray:
    return np.exp(np.log(low) + draws * (np.log(high) - np.log(low)))


def sample_trials(count: int, learning_rates: Sequence[float], seed: int) -> dict[str, np.ndarray]:
    """``count`` points of the search space, ``{name: values}`` (float64), from ``seed``.

    Args:
      count: the number of trials, >= 1.
      learning_rates: the grid whose range the learning rate is drawn from.
      seed: the seed of the draw (``numpy.random.default_rng``).

    Returns:
      ``{"learning_rate", "b1", "b2", "weight_decay": array of count}``.

    Example:
      >>> trials = sample_trials(3, (1e-3, 1e-1), seed=0)
      >>> bool(np.all((trials["b1"] >= 0.5) & (trials["b1"] <= 0.98)))
      True
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count!r}.")
    draws = np.random.default_rng(seed).uniform(size=(count, 4))  # Columns in a fixed order: lr, b1, b2, wd.
    return {
        "learning_rate": _log_uniform(draws[:, 0], min(learning_rates), max(learning_rates)),
        "b1": 1.0 - _log_uniform(draws[:, 1], *_ONE_MINUS_B1),
        "b2": 1.0 - _log_uniform(draws[:, 2], *_ONE_MINUS_B2),
        "weight_decay": _log_uniform(draws[:, 3], *_WEIGHT_DECAY),
    }


def tuned_hyperparameters(name: str) -> tuple[Callable[..., optax.GradientTransformation], tuple[str, ...]]:
    """The alias behind the library optimizer ``name`` and the keywords the search sets on it.

    Raises:
      UsageError: if ``name`` is not an optimizer of ``optaxtra.OPTIMIZERS``.
    """
    if name in _SPECIAL:
        return _SPECIAL[name]
    alias = getattr(optaxtra, name, None)
    if name not in optaxtra.OPTIMIZERS or not callable(alias):
        raise UsageError(f"--trials: {name!r} is not an optimizer of optaxtra.OPTIMIZERS.")
    parameters = inspect.signature(alias).parameters
    tuned = [key for key in ("b1", "b2") if key in parameters]
    if "momentum" in parameters and parameters["momentum"].default is not None:
        tuned.append("momentum")
    if "weight_decay" in parameters and parameters["weight_decay"].default not in (0, 0.0):
        tuned.append("weight_decay")
    return alias, tuple(tuned)


def _draw_of(keyword: str) -> str:
    return "b1" if keyword == "momentum" else keyword


def trial_sweep(
    label: str, name: str | None, factory: Callable[[Any], Any], trials: dict[str, np.ndarray], warmup: int = 0
) -> Sweep:
    """The sweep of one optimizer over ``trials`` (``sample_trials``), probed with traced values.

    Args:
      label: the optimizer's label.
      name: its ``OPTIMIZERS`` name, or ``None`` for a user's ``module:function``
        (then only the learning rate is searched, through ``factory``).
      factory: ``learning_rate -> GradientTransformation`` (used when ``name`` is ``None``).
      trials: the trial points.
      warmup: linear warm-up steps.

    Raises:
      UsageError: if the optimizer cannot be built from traced hyperparameters.
    """
    alias, tuned = tuned_hyperparameters(name) if name is not None else (factory, ())

    def make(hyperparams: Any) -> optax.GradientTransformation:
        keywords = {keyword: hyperparams[keyword] for keyword in tuned}
        return alias(with_warmup(hyperparams["learning_rate"], warmup), **keywords)

    settings = {"trial": np.arange(trials["learning_rate"].size, dtype=np.float64),
                "learning_rate": trials["learning_rate"]}
    settings.update({keyword: trials[_draw_of(keyword)] for keyword in tuned})
    probe = {key: jnp.float32(values[0]) for key, values in settings.items()}
    params = {"w": jnp.ones((3, 2), jnp.float32)}
    try:
        jax.eval_shape(lambda h: make(h).update(params, make(h).init(params), params), probe)
    except Exception as error:  # A chain that needs concrete values is bad input, said in one line.
        raise UsageError(
            f"--trials: {label} cannot be built from traced {', '.join(('learning_rate', *tuned))} "
            f"({type(error).__name__})."
        ) from None
    return Sweep(label, make, settings)


TRIAL_COLUMNS = ("optimizer", "trial", "lr", "b1/mom", "b2", "wd")
"""The setting columns of a ``--trials`` table."""


def trial_keys(cell: Any) -> tuple[str, ...]:
    """The ``TRIAL_COLUMNS`` texts of a cell keyed ``(optimizer, trial)`` ("—": not searched)."""
    run = cell.runs[0]

    def text(*keys: str) -> str:
        return next((f"{run[key]:.3g}" for key in keys if run.get(key) is not None), "—")

    return (cell.key[0], str(cell.key[1]), text("learning_rate"), text("b1", "momentum"), text("b2"),
            text("weight_decay"))
