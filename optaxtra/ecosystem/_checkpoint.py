"""``check_checkpoint``: a clear error before restoring into the wrong optimizer or model.

Restoring an optimizer state means restoring a tree whose layout the optimizer
defines. orbax reports a different layout as a bare path mismatch, refuses a
different shape with a message about padding, and casts a different dtype
without a word. ``check_checkpoint`` compares what was saved with the target
first and names every difference. It needs only shapes and dtypes, so it works
on orbax's metadata, on a restored tree or on ``jax.eval_shape`` output alike,
and optaxtra does not depend on orbax.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._trees import path_string

__all__ = ["check_checkpoint"]

_SHOWN = 6


def _unwrap(saved: Any) -> Any:
    """orbax's ``StepMetadata``/``TreeMetadata`` down to the plain tree of leaves."""
    if hasattr(saved, "item_metadata"):
        saved = saved.item_metadata
    if hasattr(saved, "tree") and not isinstance(saved, (dict, list, tuple)):
        saved = saved.tree
    return saved


def _layout(tree: Any) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``{path: (shape, dtype)}``; Python scalars (a fresh ``TrainState``'s step) as JAX types them."""
    is_leaf = lambda x: hasattr(x, "shape") and hasattr(x, "dtype")
    pairs, _ = jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_leaf)
    dtype = lambda leaf: np.dtype(leaf.dtype) if hasattr(leaf, "dtype") else np.dtype(jnp.result_type(leaf))
    return {path_string(path): (tuple(np.shape(leaf)), dtype(leaf)) for path, leaf in pairs}


def _both_integer(saved: np.dtype, target: np.dtype) -> bool:
    """Counters may differ in width: a ``TrainState``'s step saved from the Python int 0 is int64."""
    return np.issubdtype(saved, np.integer) and np.issubdtype(target, np.integer)


def _listed(paths: list[str]) -> str:
    shown = ", ".join(paths[:_SHOWN])
    return shown + (f", ... ({len(paths) - _SHOWN} more)" if len(paths) > _SHOWN else "")


def check_checkpoint(saved: Any, target: Any) -> None:
    """Raises a ``ValueError`` naming every way ``saved`` does not fit ``target``.

    Leaves are matched by their path (``"opt_state/1/mu/Dense_0/kernel"``:
    dict keys, NamedTuple fields and sequence indices, which is how orbax
    stores them), then compared by shape and dtype (integer leaves, which are
    counters, by shape only).

    Args:
      saved: what the checkpoint holds: orbax's ``checkpointer.metadata(path)``
        (a ``StepMetadata``, its ``item_metadata``, or that ``.tree``), or any
        pytree whose leaves have ``shape`` and ``dtype``.
      target: what it will be restored into, e.g. ``jax.eval_shape`` of a fresh
        ``TrainState`` built with the optimizer and model to continue with.

    Raises:
      ValueError: if a path is missing on either side (saved with a different
        optimizer, or a model with other layers), or a shape or dtype differs
        (a model of another size, or another precision).

    Example:
      >>> import jax, jax.numpy as jnp, optaxtra
      >>> params = {"w": jnp.zeros(3)}
      >>> saved = jax.eval_shape(optaxtra.adam(1e-3).init, params)
      >>> optaxtra.check_checkpoint(saved, jax.eval_shape(optaxtra.adam(1e-3).init, params))
      >>> optaxtra.check_checkpoint(saved, jax.eval_shape(optaxtra.adamw(1e-3).init, params))
      Traceback (most recent call last):
      ...
      ValueError: The checkpoint does not fit the target (a different optimizer or model?):
        in the target but not the checkpoint: 0/mu/w, 0/nu/w
        in the checkpoint but not the target: 1/mu/w, 1/nu/w
    """
    saved_layout, target_layout = _layout(_unwrap(saved)), _layout(target)
    problems = []
    missing = [path for path in target_layout if path not in saved_layout]
    unexpected = [path for path in saved_layout if path not in target_layout]
    if missing:
        problems.append(f"in the target but not the checkpoint: {_listed(missing)}")
    if unexpected:
        problems.append(f"in the checkpoint but not the target: {_listed(unexpected)}")
    for path, (shape, dtype) in target_layout.items():
        if path not in saved_layout:
            continue
        saved_shape, saved_dtype = saved_layout[path]
        if saved_shape != shape:
            problems.append(f"{path}: shape {saved_shape} in the checkpoint, {shape} in the target")
        if saved_dtype != dtype and not _both_integer(saved_dtype, dtype):
            problems.append(f"{path}: dtype {saved_dtype} in the checkpoint, {dtype} in the target")
    if problems:
        details = "\n  ".join(problems)
        raise ValueError(
            f"The checkpoint does not fit the target (a different optimizer or model?):\n  {details}"
        )
