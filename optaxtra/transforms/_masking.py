"""Masks: which parameters a piece acts on.

A mask is either a pytree of Python bools with the structure of the params, or
a callable ``params -> such a pytree``. ``exclude_paths`` and ``select_paths``
build the callable from a regular expression over parameter paths, the way
BERT-style configs name what is exempt from weight decay and layer adaptation
(``"bias|scale|LayerNorm"``).
"""

from __future__ import annotations

import re
from typing import Any, Callable, Union

import jax

from .._trees import path_string

__all__ = ["Mask", "exclude_paths", "select_paths", "check_mask", "resolve_mask"]

Mask = Union[Any, Callable[[Any], Any]]


def _path_mask(pattern: str, keep_matches: bool) -> Callable[[Any], Any]:
    try:
        regex = re.compile(pattern)
    except (re.error, TypeError) as error:
        raise ValueError(f"pattern must be a valid regular expression, got {pattern!r}: {error}")

    def mask_fn(params: Any) -> Any:
        paths = [path_string(path) for path, _ in jax.tree_util.tree_leaves_with_path(params)]
        if paths and not any(regex.search(path) for path in paths):
            shown = ", ".join(repr(path) for path in paths[:5]) + (", ..." if len(paths) > 5 else "")
            raise ValueError(
                f"pattern {pattern!r} matches none of the {len(paths)} parameter paths ({shown}): "
                "a typo would otherwise select every parameter or none."
            )
        return jax.tree_util.tree_map_with_path(
            lambda path, _: bool(regex.search(path_string(path))) == keep_matches, params
        )

    return mask_fn


def exclude_paths(pattern: str) -> Callable[[Any], Any]:
    """A mask that is False for every parameter whose path matches ``pattern``.

    Paths are the params' key paths joined with ``/`` (``"Dense_0/bias"``), and
    ``pattern`` is searched with ``re.search``. A pattern that matches no path
    at all is an error (raised by the piece's ``init``), naming the pattern and
    some of the paths: a typo would otherwise decay every parameter.

    Args:
      pattern: a regular expression, e.g. ``r"bias|scale|LayerNorm"``.

    Returns:
      A callable ``params -> pytree of bools``, usable as any ``mask`` argument.

    Example:
      >>> import jax.numpy as jnp, optaxtra
      >>> params = {"dense": {"kernel": jnp.ones(2), "bias": jnp.ones(2)}}
      >>> optaxtra.exclude_paths("bias")(params)
      {'dense': {'bias': False, 'kernel': True}}
    """
    return _path_mask(pattern, keep_matches=False)


def select_paths(pattern: str) -> Callable[[Any], Any]:
    """A mask that is True exactly for parameters whose path matches ``pattern``.

    Args:
      pattern: a regular expression searched in ``"/"``-joined key paths; it
        must match at least one (see ``exclude_paths``).

    Returns:
      A callable ``params -> pytree of bools``.

    Example:
      >>> import jax.numpy as jnp, optaxtra
      >>> params = {"dense": {"kernel": jnp.ones(2), "bias": jnp.ones(2)}}
      >>> optaxtra.select_paths("kernel")(params)
      {'dense': {'bias': False, 'kernel': True}}
    """
    return _path_mask(pattern, keep_matches=True)


def check_mask(name: str, mask: Mask | None) -> None:
    """Raises at construction unless ``mask`` is None, a callable or a pytree of Python bools.

    Whether the tree matches the params can only be checked once they are seen
    (``resolve_mask``, in ``init`` and ``update``).
    """
    if mask is not None and not callable(mask):
        _check_bool_leaves(name, mask)


def _check_bool_leaves(name: str, tree: Any) -> None:
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        if not isinstance(leaf, bool):
            where = f" at {path_string(path)!r}" if path else ""
            raise TypeError(
                f"{name} must be None, a callable params -> pytree of bools, or a pytree of "
                f"Python bools like the params; got {leaf!r}{where}."
            )


def resolve_mask(mask: Mask | None, params: Any, name: str = "mask") -> Any:
    """Returns the mask as a pytree of Python bools with the params' structure.

    Args:
      mask: None (every leaf selected), a pytree of bools, or a callable.
      params: the params (or updates) the mask must match.
      name: the argument's name, for the error message.

    Raises:
      ValueError: if the mask's tree structure differs from the params'.
      TypeError: if a mask leaf is not a bool.
    """
    if mask is None:
        return jax.tree.map(lambda _: True, params)
    tree = mask(params) if callable(mask) else mask
    params_structure = jax.tree.structure(params)
    mask_structure = jax.tree.structure(tree)
    if params_structure != mask_structure:
        raise ValueError(
            f"{name} must have the structure of the params.\n"
            f"  params: {params_structure}\n  {name}: {mask_structure}"
        )
    _check_bool_leaves(name, tree)
    return tree
