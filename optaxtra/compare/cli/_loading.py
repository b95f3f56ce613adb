"""Resolving names given on the command line: library optimizers and tasks, or ``module:function``."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import optax

from optaxtra import OPTIMIZERS

from ..tasks._charlm import charlm_task
from ..tasks._digits import digits_task
from ..tasks._interface import Task, check_task
from ..tasks._mnist1d import mnist1d_task
from ._errors import UsageError

__all__ = ["TASKS", "load_object", "resolve_optimizer", "resolve_task"]

Factory = Callable[[Any], optax.GradientTransformation]

TASKS: Mapping[str, Callable[[], Task]] = {
    "digits": digits_task,
    "charlm": charlm_task,
    "mnist1d": lambda: mnist1d_task("cnn"),
    "mnist1d_mlp": lambda: mnist1d_task("mlp"),
}
"""The bundled tasks by name."""


def load_object(spec: str) -> Any:
    """Imports ``module:attribute`` or ``path/to/file.py:attribute``.

    The current directory is searched first, as ``python -m`` would, so a
    ``my_chains.py`` next to the user resolves as ``my_chains:fn``.
    """
    module_name, _, attribute = spec.rpartition(":")
    if not module_name or not attribute:
        raise UsageError(f"{spec!r} is not of the form module:function or file.py:function.")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise UsageError(f"{spec!r}: no such file {module_name!r}.")
            module_spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(module_name)
    except UsageError:
        raise
    except Exception as error:  # Any import failure is the user's input, reported as such.
        raise UsageError(
            f"{spec!r}: cannot import {module_name!r} ({type(error).__name__}: {error})."
        ) from None
    if not hasattr(module, attribute):
        raise UsageError(f"{spec!r}: module {module_name!r} has no attribute {attribute!r}.")
    return getattr(module, attribute)


def _probe(factory: Factory, learning_rate: jax.Array) -> Any:
    """One init and update of the optimizer built from a traced learning rate."""
    transformation = factory(learning_rate)
    if not isinstance(transformation, optax.GradientTransformation):
        raise TypeError(f"it returned {type(transformation).__name__}, not an optax.GradientTransformation")
    params = {"w": jnp.ones((3, 2), jnp.float32), "b": jnp.zeros((2,), jnp.float32)}
    updates, _ = transformation.update(params, transformation.init(params), params)
    return updates


def _first_line(error: Exception) -> str:
    """The first non-empty line of an error's message, so that bad input prints one line."""
    return next((line.strip() for line in str(error).splitlines() if line.strip()), "")


def resolve_optimizer(spec: str) -> tuple[str, Factory]:
    """``(label, learning_rate -> GradientTransformation)`` for a name or ``module:function``.

    Library names accept ``-`` for ``_`` (``sgd-momentum``). A user factory is
    probed once with a traced learning rate, since every run builds it so.
    """
    if ":" not in spec:
        name = spec.strip().replace("-", "_")
        if name not in OPTIMIZERS:
            valid = ", ".join(sorted(OPTIMIZERS))
            raise UsageError(f"unknown optimizer {spec!r}. Valid names: {valid}; or module:function.")
        return name, OPTIMIZERS[name]
    factory = load_object(spec)
    if not callable(factory):
        raise UsageError(
            f"{spec!r} is not callable: it must map a learning rate to a GradientTransformation."
        )
    try:
        jax.eval_shape(lambda rate: _probe(factory, rate), jnp.float32(1e-3))
    except jax.errors.JAXTypeError as error:  # float(lr), if lr > ...: JAX's message runs to a page.
        raise UsageError(
            f"optimizer {spec!r} needs a concrete learning rate ({type(error).__name__}); it is called "
            "with a traced one (all learning rates run in one program): use it as an array, "
            "no float(), int() or Python if on it."
        ) from None
    except Exception as error:  # The user's chain failed: say so rather than crash later.
        raise UsageError(
            f"optimizer {spec!r} failed when built from a traced learning rate and applied once "
            f"({type(error).__name__}: {_first_line(error)})."
        ) from None
    return spec.rpartition(":")[2], factory


def resolve_task(spec: str) -> Task:
    """A bundled task by name, or a user task from ``module:function`` (called with no arguments)."""
    if ":" not in spec:
        name = spec.strip()
        if name not in TASKS:
            raise UsageError(f"unknown task {spec!r}. Valid names: {', '.join(TASKS)}; or module:function.")
        return TASKS[name]()
    make = load_object(spec)
    try:
        task = make() if callable(make) else make
        return check_task(task)
    except Exception as error:  # The user's task is input like any other.
        raise UsageError(
            f"task {spec!r} is not a valid optaxtra.compare.Task ({type(error).__name__}: {_first_line(error)})."
        ) from None
