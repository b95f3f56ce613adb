"""Adam-mini's partition: which entries of each param share one second moment.

A partition is a sequence of rules ``(pattern, blocks)``: ``pattern`` is a
regular expression searched in the param's ``"/"``-joined path (as
``exclude_paths`` reads it), the first rule that matches decides, and a param
no rule matches is one block (the authors' default for norms and whatever
their names do not recognise). ``blocks`` is one of:

* ``"element"``: every entry its own block (Adam's second moment);
* ``"tensor"``: the whole param one block;
* a tuple of axes: one block per index of those axes, averaged over the others
  (``(-1,)`` for a Flax ``Dense`` kernel ``(in, out)``: one per output neuron);
* ``AdamMiniHeads(num_heads, axis)``: ``axis`` cut into ``num_heads`` equal
  runs, one block per run (a query projection whose output axis holds the
  heads side by side, as PyTorch's ``(heads * head_dim, d_model)`` weights).
"""

from __future__ import annotations

import math
import re
from typing import Any, NamedTuple, Sequence, Union

import jax
import numpy as np

from .._leaves import is_trainable
from .._trees import path_string
from .._validation import check_int

__all__ = ["ADAM_MINI_FLAX_RULES", "AdamMiniHeads", "BlockLayout", "adam_mini_blocks", "adam_mini_layouts"]


class AdamMiniHeads(NamedTuple):
    """One block per head: ``axis`` holds ``num_heads`` heads of equal size, side by side.

    Attributes:
      num_heads: the number of heads along ``axis`` (for grouped-query keys
        and values, the number of key/value heads).
      axis: the axis that holds the heads.
    """

    num_heads: int
    axis: int = -1


Blocks = Union[str, tuple, AdamMiniHeads]

# ``nnx.Optimizer`` hands over params whose paths end in the Variable's ``value``.
_END = r"(/value)?$"

#: The partition for Flax Transformers (``flax.linen`` and ``flax.nnx`` names),
#: the authors' partition in Flax's layouts: biases keep Adam's second moment;
#: ``MultiHeadDotProductAttention``'s query and key kernels ``(d_model, heads,
#: head_dim)`` one per head; its value kernel one per output neuron ``(head,
#: dim)``; every other kernel (``Dense`` ``(in, out)``, the attention output
#: ``(heads, head_dim, out)``, a read-out layer) one per output neuron; an
#: ``Embed`` table one per token. Norm scales and anything else (learned
#: position tables) fall through to one block per param. A query or key made
#: by a 2-D ``Dense`` ``(d_model, heads * head_dim)`` needs a rule of its own
#: ahead of these, ``AdamMiniHeads(heads, axis=-1)``: here axis -2 of such a
#: kernel is ``d_model``.
ADAM_MINI_FLAX_RULES: tuple[tuple[str, Blocks], ...] = (
    (r"(^|/)bias" + _END, "element"),
    (r"(^|/)(query|key)/kernel" + _END, (-2,)),
    (r"(^|/)value/kernel" + _END, (-2, -1)),
    (r"(^|/)kernel" + _END, (-1,)),
    (r"(^|/)embedding" + _END, (0,)),
)


class BlockLayout(NamedTuple):
    """How one param is averaged: reshaped to ``view``, its ``|g|**2`` averaged over ``reduce``.

    ``nu_shape`` is ``view`` with the reduced axes set to 1 (the stored second
    moment); ``size`` is the number of entries each block averages.
    """

    view: tuple[int, ...]
    reduce: tuple[int, ...]
    nu_shape: tuple[int, ...]
    size: int


def _is_axis(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_blocks(where: str, blocks: Any) -> None:
    if isinstance(blocks, AdamMiniHeads):
        check_int(f"{where} num_heads", blocks.num_heads, 1)
        if not _is_axis(blocks.axis):
            raise TypeError(f"{where} axis must be an integer, got {blocks.axis!r}.")
    elif isinstance(blocks, tuple):
        if not all(_is_axis(axis) for axis in blocks) or len(set(blocks)) != len(blocks):
            raise TypeError(f"{where} must hold distinct integer axes, got {blocks!r}.")
    elif blocks not in ("element", "tensor"):
        raise ValueError(
            f"{where} must be 'element', 'tensor', a tuple of axes or an AdamMiniHeads, got {blocks!r}."
        )


def check_rules(rules: Any) -> None:
    """Raises at construction unless ``rules`` is a sequence of ``(regex, blocks)`` pairs."""
    if isinstance(rules, (str, bytes)) or not isinstance(rules, Sequence):
        raise TypeError(f"rules must be a sequence of (pattern, blocks) pairs, got {rules!r}.")
    for index, rule in enumerate(rules):
        if not (isinstance(rule, tuple) and len(rule) == 2 and isinstance(rule[0], str)):
            raise TypeError(f"rules[{index}] must be a (pattern, blocks) pair, got {rule!r}.")
        try:
            re.compile(rule[0])
        except re.error as error:
            raise ValueError(f"rules[{index}] pattern {rule[0]!r} is not a valid regular expression: {error}")
        _check_blocks(f"rules[{index}] blocks", rule[1])


def _layout(path: str, shape: tuple[int, ...], blocks: Blocks, pattern: str | None) -> BlockLayout:
    ndim = len(shape)
    rule = "no rule (one block)" if pattern is None else f"rule {pattern!r}"

    def axis_of(axis: int) -> int:
        if not -ndim <= axis < ndim:
            raise ValueError(f"{rule} names axis {axis} of {path!r}, which has shape {shape}.")
        return axis % ndim

    view = shape
    if blocks == "element":
        kept = set(range(ndim))
    elif blocks == "tensor":
        kept = set()
    elif isinstance(blocks, AdamMiniHeads):
        axis = axis_of(blocks.axis)
        if shape[axis] % blocks.num_heads:
            raise ValueError(
                f"{rule} cuts axis {blocks.axis} of {path!r} (shape {shape}) into "
                f"{blocks.num_heads} heads, which does not divide {shape[axis]}."
            )
        view = shape[:axis] + (blocks.num_heads, shape[axis] // blocks.num_heads) + shape[axis + 1:]
        kept = {axis}
    else:
        kept = {axis_of(axis) for axis in blocks}
    reduce = tuple(a for a in range(len(view)) if a not in kept)
    nu_shape = tuple(1 if a in reduce else n for a, n in enumerate(view))
    return BlockLayout(view, reduce, nu_shape, math.prod(view[a] for a in reduce))


def adam_mini_blocks(params: Any, rules: Sequence[tuple[str, Blocks]] = ADAM_MINI_FLAX_RULES) -> dict[str, Blocks]:
    """Which blocks each param gets under ``rules``, by path: to read a partition before training.

    Args:
      params: the params (arrays, or anything with a ``shape``).
      rules: ``(pattern, blocks)`` pairs, the first match deciding.

    Returns:
      ``{path: blocks}`` for every trainable param, in tree order
      (``"tensor"`` where no rule matches).

    Raises:
      ValueError: a rule names an axis a param lacks, or heads that do not
        divide the axis.

    Example:
      >>> import jax.numpy as jnp, optaxtra
      >>> params = {"Dense_0": {"kernel": jnp.ones((4, 3)), "bias": jnp.ones(3)},
      ...           "LayerNorm_0": {"scale": jnp.ones(3)}}
      >>> optaxtra.adam_mini_blocks(params)
      {'Dense_0/bias': 'element', 'Dense_0/kernel': (-1,), 'LayerNorm_0/scale': 'tensor'}
    """
    check_rules(rules)
    return {path: blocks for path, blocks, _ in _resolve(params, rules) if blocks is not None}


def _resolve(params: Any, rules: Sequence[tuple[str, Blocks]]) -> list[tuple[str, Blocks | None, BlockLayout | None]]:
    """``(path, blocks, layout)`` for each leaf in tree order; None for frozen leaves."""
    compiled = [(re.compile(pattern), pattern, blocks) for pattern, blocks in rules]
    resolved = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        name = path_string(path)
        if not is_trainable(leaf):
            resolved.append((name, None, None))
            continue
        found = next(((pattern, blocks) for regex, pattern, blocks in compiled if regex.search(name)), None)
        pattern, blocks = found if found is not None else (None, "tensor")
        resolved.append((name, blocks, _layout(name, tuple(np.shape(leaf)), blocks, pattern)))
    return resolved


def adam_mini_layouts(params: Any, rules: Sequence[tuple[str, Blocks]]) -> list[BlockLayout | None]:
    """Each leaf's ``BlockLayout`` in tree order (None for frozen leaves), checked against its shape."""
    return [layout for _, _, layout in _resolve(params, rules)]
