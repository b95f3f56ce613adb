"""Hand-offs for ``switch``: building the second optimizer's state from the first's."""

from __future__ import annotations

from typing import Any

import jax
from optax import tree_utils as otu

from .._validation import check_real
from ._switch import HandOff

__all__ = ["carry_first_moment"]


def _is_state_field(path: tuple[Any, ...], value: Any) -> bool:
    """A NamedTuple field holding arrays: not a parameter that happens to be named ``mu`` or
    ``trace``, nor the empty buffer of ``trace(None)``."""
    return bool(path) and isinstance(path[-1], otu.NamedTupleKey) and value is not None


def _one_field(tree: Any, field: str, what: str) -> Any:
    found = otu.tree_get_all_with_path(tree, field, _is_state_field)
    if len(found) != 1:
        raise ValueError(f"carry_first_moment needs exactly one state with a {field!r} field in "
                         f"the {what} optimizer's state, found {len(found)}.")
    return found[0][1]


def carry_first_moment(scale: float = 1.0) -> HandOff:
    r"""A hand-off that starts SGD's momentum buffer at ``scale`` times Adam's first moment.

    Finds the state with a ``mu`` field in the first optimizer's state
    (``scale_by_adam``, ``scale_by_radam_rectifier``, optax's Adam) and the
    one with a ``trace`` field in the second's (``optaxtra.sgd`` with
    momentum, ``optax.trace``). Adam's ``m`` is an average of gradients,
    SGD's buffer ``b = mu b + g`` a sum that tends to ``g / (1 - mu)``: pass
    ``scale = 1 / (1 - momentum)`` for a buffer of the same size as the one
    SGD would have built.

    Args:
      scale: multiplies the first moment, a number.

    Returns:
      A ``hand_off`` for ``switch``.

    Example:
      >>> import jax.numpy as jnp, optaxtra
      >>> adam, sgd = optaxtra.adam(0.1), optaxtra.sgd(0.1, momentum=0.9)
      >>> params = jnp.zeros(2)
      >>> _, adam_state = adam.update(jnp.ones(2), adam.init(params), params)
      >>> hand_off = optaxtra.carry_first_moment(scale=1 / (1 - 0.9))
      >>> hand_off(adam_state, sgd.init(params))[1].trace  # m = 0.1 * g after one step
      Array([1., 1.], dtype=float32)
    """
    check_real("scale", scale, allow_schedule=False)

    def hand_off(first_state: Any, second_state: Any) -> Any:
        moment = _one_field(first_state, "mu", "first")
        buffer = _one_field(second_state, "trace", "second")
        carried = jax.tree.map(lambda m, b: (scale * m).astype(b.dtype), moment, buffer)
        return otu.tree_set(second_state, _is_state_field, trace=carried)

    return hand_off
