"""Finding things in pytrees: states of a type inside an optimizer state, and readable paths.

The one place optaxtra searches a state tree. ``find_states`` is what
``slow_params``, ``averaged_params``, ``diagnostics``, the switching hand-offs
and the evaluation readers use; it is ``optax.tree_utils.tree_get_all_with_path``
with the match made on the type rather than on its name.
"""

from __future__ import annotations

import sys
from typing import Any

import jax
from optax import tree_utils as otu

__all__ = ["find_states", "path_string", "unwrap_variables"]


def path_string(path: tuple[Any, ...]) -> str:
    """Joins a ``jax.tree_util`` key path as ``"dense_1/kernel"``."""
    parts = []
    for key in path:
        for attribute in ("key", "name", "idx"):
            if hasattr(key, attribute):
                parts.append(str(getattr(key, attribute)))
                break
        else:
            parts.append(str(key))
    return "/".join(parts)


def unwrap_variables(tree: Any) -> Any:
    """``tree`` with every Flax NNX ``Variable`` replaced by the value it holds.

    ``flax.nnx.Optimizer`` keeps its optax state with each array wrapped in an
    ``OptArray``; the state's NamedTuples are kept. Unwrapped, it reads like the
    plain state (same fields, same paths). Flax is not imported here: a tree can
    hold its variables only if something else imported it already.
    """
    nnx = sys.modules.get("flax.nnx")
    if nnx is None:
        return tree
    is_variable = lambda node: isinstance(node, nnx.Variable)
    return jax.tree.map(lambda node: node.get_value() if is_variable(node) else node, tree, is_leaf=is_variable)


def find_states(tree: Any, state_type: type | tuple[type, ...]) -> list[tuple[tuple[Any, ...], Any]]:
    """Every node of ``tree`` that is a ``state_type``, with its key path, outermost first.

    Args:
      tree: an optimizer state, or any pytree holding one (a Flax ``TrainState``,
        an ``nnx.Optimizer``'s ``opt_state``).
      state_type: a NamedTuple state class, or a tuple of them.

    Returns:
      ``[(path, state), ...]`` in tree order; a state nested inside another
      found one (an average around an average) comes after it.

    Example:
      >>> import jax.numpy as jnp, optax, optaxtra
      >>> from optaxtra._trees import find_states, path_string
      >>> tx = optax.chain(optax.clip(1.0), optaxtra.ranger(1e-3))
      >>> found = find_states(tx.init(jnp.zeros(2)), optaxtra.LookaheadState)
      >>> [path_string(path) for path, _ in found]
      ['1']
    """
    types = state_type if isinstance(state_type, tuple) else (state_type,)
    tree = unwrap_variables(tree)
    found = [
        (_jax_path(path), node)
        for each in types
        for path, node in otu.tree_get_all_with_path(
            tree, each.__name__, filtering=lambda _, node, each=each: isinstance(node, each)
        )
    ]
    if len(types) == 1:
        return found
    leaf_paths = [path for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]

    def position(pair: tuple[tuple[Any, ...], Any]) -> tuple[int, int]:
        path = pair[0]
        first = next((i for i, leaf in enumerate(leaf_paths) if leaf[: len(path)] == path), len(leaf_paths))
        return first, len(path)

    return sorted(found, key=position)


def _jax_path(path: tuple[Any, ...]) -> tuple[Any, ...]:
    """optax's ``NamedTupleKey`` entries as the ``GetAttrKey`` that ``jax.tree_util`` uses."""
    return tuple(
        jax.tree_util.GetAttrKey(key.name) if isinstance(key, otu.NamedTupleKey) else key for key in path
    )
