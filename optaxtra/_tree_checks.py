"""Update-time checks: the updates a piece gets must match the state it keeps.

Every piece calls these at the top of its ``update``. They read only tree
structures, shapes and dtypes, which are static under ``jit``: they run once
while tracing and cost nothing in the compiled step. A mismatch raises with
the first mismatching path (``"dense/kernel"``), instead of a broadcast that
silently mixes two layers or an error from deep inside ``jax.tree.map``.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from ._leaves import is_trainable, leaf_dtype
from ._trees import path_string

__all__ = ["check_state_type", "check_tree_matches"]

_RESTORE_HINT = (
    "Was the state made by another optimizer's init, or restored into the wrong "
    "optimizer? Create it with this optimizer's init (or restore with its state as "
    "the target)."
)
_PARAMS = "the params"
_PARAMS_HINT = "Updates must have the params' structure, shapes and dtypes."
_DTYPE_HINT = (
    "Gradients must have their params' dtype (integer and boolean params take "
    "zeros or float0)."
)


def check_state_type(state: Any, expected: type, piece: str) -> None:
    """Raises ``TypeError`` unless ``state`` is an instance of ``expected``."""
    if not isinstance(state, expected):
        raise TypeError(
            f"{piece}: expected a {expected.__name__} state, got {type(state).__name__}. "
            + _RESTORE_HINT
        )


def _where(path: tuple[Any, ...]) -> str:
    return repr(path_string(path)) if path else "the root"


def _structure_message(tree: Any, reference: Any, what: str, against: str) -> str:
    is_none = lambda x: x is None
    leaves = jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_none)[0]
    references = jax.tree_util.tree_flatten_with_path(reference, is_leaf=is_none)[0]
    paths = [path for path, _ in leaves]
    reference_paths = [path for path, _ in references]
    for index in range(max(len(paths), len(reference_paths))):
        path = paths[index] if index < len(paths) else None
        expected = reference_paths[index] if index < len(reference_paths) else None
        if path == expected:
            continue
        if path is not None and expected is not None:
            shorter, longer = sorted((path, expected), key=len)
            if longer[: len(shorter)] == shorter:
                holder, other = (what, against) if path == longer else (against, what)
                return (
                    f"at {_where(shorter)}, {holder} have a subtree ({_where(longer)}) "
                    f"where {other} have a single leaf"
                )
        if expected is not None and expected not in paths:
            return f"{against} have a leaf at {_where(expected)} that {what} lack"
        return f"{what} have a leaf at {_where(path)} that {against} lack"
    return (
        "the containers differ (e.g. a list for a tuple, or a dict for a FrozenDict):\n"
        f"  {what}: {jax.tree.structure(tree)}\n  {against}: {jax.tree.structure(reference)}"
    )


def _describe(dtype: np.dtype) -> str:
    return "float0" if dtype == np.dtype(jax.dtypes.float0) else str(dtype)


def check_tree_matches(
    tree: Any,
    reference: Any,
    *,
    piece: str,
    what: str = "the updates",
    against: str = _PARAMS,
    expected_dtype: Callable[[np.dtype], np.dtype] | None = None,
) -> None:
    """Raises unless ``tree`` has ``reference``'s structure, shapes and dtypes.

    Args:
      tree: the tree a piece was given (the updates, usually).
      reference: what it must match: the params, or a state tree like them.
      piece: the piece's name, for the message.
      what: how the message names ``tree``.
      against: how the message names ``reference``.
      expected_dtype: maps a leaf of ``tree``'s dtype to the dtype the
        ``reference`` leaf must have (e.g. a moment's storage dtype); None for
        equality. Frozen reference leaves (integer, boolean) accept any
        non-inexact leaf, ``float0`` included.

    Raises:
      ValueError: on a structure or shape mismatch, naming the first path.
      TypeError: on a dtype mismatch or a leaf that is not an array.
    """
    is_none = lambda x: x is None
    leaves, treedef = jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_none)
    references, reference_treedef = jax.tree_util.tree_flatten_with_path(reference, is_leaf=is_none)
    prefix = f"{piece}: {what} do not match {against}"
    hint = _PARAMS_HINT if against == _PARAMS else _RESTORE_HINT
    if treedef != reference_treedef:
        raise ValueError(f"{prefix}: {_structure_message(tree, reference, what, against)}. {hint}")
    for (path, leaf), (_, expected) in zip(leaves, references):
        if (leaf is None) != (expected is None):
            holder, other = (what, against) if leaf is None else (against, what)
            raise ValueError(f"{prefix}: at {_where(path)}, {holder} hold None where {other} hold an array.")
        if leaf is None:
            continue
        if not (hasattr(leaf, "shape") or isinstance(leaf, (int, float, complex, np.generic))):
            raise TypeError(
                f"{prefix}: at {_where(path)}, {what} hold a {type(leaf).__name__}, not an array."
            )
        shape, expected_shape = np.shape(leaf), np.shape(expected)
        if shape != expected_shape and what == "the updates":
            raise ValueError(
                f"{piece}: the gradient (update) at {_where(path)} has shape {shape}, but that "
                f"parameter has shape {expected_shape} ({against}). {_PARAMS_HINT}"
            )
        if shape != expected_shape:
            raise ValueError(
                f"{prefix}: at {_where(path)}, {what} have shape {shape} and {against} "
                f"{expected_shape}. {hint}"
            )
        dtype, reference_dtype = leaf_dtype(leaf), leaf_dtype(expected)
        if not is_trainable(expected):
            ok = not is_trainable(leaf)
        elif expected_dtype is None:
            ok = dtype == reference_dtype
        else:
            ok = is_trainable(leaf) and jnp.dtype(expected_dtype(dtype)) == reference_dtype
        if not ok:
            raise TypeError(
                f"{prefix}: at {_where(path)}, {what} have dtype {_describe(dtype)} and "
                f"{against} {_describe(reference_dtype)}. {_DTYPE_HINT}"
            )
