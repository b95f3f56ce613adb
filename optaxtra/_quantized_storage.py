"""How a moment leaf is kept: as an array of a float dtype, or block-wise in 8 bits.

The moment pieces take a storage request where they take a dtype
(``mu_dtype``, ``nu_dtype``): ``jnp.int8`` (or ``jnp.uint8``, ``"int8"``)
asks for block-wise 8-bit storage with the paper's defaults, and
``blockwise_int8(block_size=..., min_size=...)`` sets them. The first moment
(and every other signed average) is stored with the signed dynamic map in
``int8`` codes; the second moment (never negative) with the unsigned map in
``uint8`` codes, whichever of the two the request names. Leaves with fewer
than ``min_size`` elements (biases, norms: bitsandbytes' 4,096 by default),
complex leaves and frozen (integer) leaves are kept as arrays: in float32
(the dtype the 8-bit values are computed in) or their own dtype.

Each step dequantizes the stored moment, updates it in float32 and
quantizes it again (``_quantization``); the step uses the float32 values it
computed, as bitsandbytes' 8-bit Adam does, and only codes and ``absmax``
stay in the state.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._quantization import (
    QuantizedArray,
    block_size_of,
    check_block_size,
    dequantize_blockwise,
    dynamic_map,
    is_quantized,
    quantize_blockwise,
)
from ._leaves import is_trainable, leaf_dtype
from ._validation import check_dtype, check_int, check_nu_dtype

__all__ = ["BlockwiseInt8", "blockwise_int8", "check_state_dtype", "float_dtype", "init_shapes", "load", "store", "zeros"]

_EIGHT_BIT = (np.dtype(np.int8), np.dtype(np.uint8))


class BlockwiseInt8(NamedTuple):
    """A request for block-wise 8-bit state (see ``blockwise_int8``)."""

    block_size: int = 2048
    min_size: int = 4096


def blockwise_int8(*, block_size: int = 2048, min_size: int = 4096) -> BlockwiseInt8:
    """Block-wise 8-bit storage for a moment: pass it as ``mu_dtype`` or ``nu_dtype``.

    ``jnp.int8`` as a dtype means ``blockwise_int8()``.

    Args:
      block_size: elements per block, a power of two >= 2 (the paper's 2,048).
        Each block keeps one float32 ``absmax``: ``4 / block_size`` bytes per
        element on top of the 1-byte codes.
      min_size: leaves with fewer elements are kept in float32, >= 0
        (bitsandbytes' 4,096; 0 quantizes every real floating leaf).

    Returns:
      A ``BlockwiseInt8`` request.

    Example:
      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.adamw(1e-3, mu_dtype=jnp.int8, nu_dtype=jnp.int8)
      >>> state = tx.init({"w": jnp.zeros((64, 128)), "b": jnp.zeros(128)})
      >>> adam = state[0]
      >>> adam.mu["w"].codes.dtype, adam.nu["w"].codes.dtype, adam.mu["b"].dtype
      (dtype('int8'), dtype('uint8'), dtype('float32'))

    References:
      Dettmers et al., "8-bit Optimizers via Block-wise Quantization", ICLR
      2022. https://arxiv.org/abs/2110.02861
    """
    check_block_size("block_size", block_size)
    check_int("min_size", min_size, 0)
    return BlockwiseInt8(block_size, min_size)


def storage_spec(requested: Any) -> BlockwiseInt8 | None:
    """The 8-bit request ``requested`` makes, or None for a float dtype (or None)."""
    if isinstance(requested, BlockwiseInt8):
        return requested
    if requested is None or isinstance(requested, tuple):
        return None
    try:
        return BlockwiseInt8() if np.dtype(requested) in _EIGHT_BIT else None
    except TypeError:
        return None


def float_dtype(requested: Any) -> Any:
    """The float dtype behind a storage request: float32 for 8-bit, else ``requested``."""
    return jnp.float32 if storage_spec(requested) is not None else requested


def check_state_dtype(name: str, value: Any, *, second_moment: bool = False, allow_complex: bool = False) -> None:
    """Raises unless ``value`` is an 8-bit request or a dtype the moment accepts."""
    if isinstance(value, BlockwiseInt8):
        check_block_size(f"{name}.block_size", value.block_size)
        check_int(f"{name}.min_size", value.min_size, 0)
        return
    if storage_spec(value) is not None:
        return
    try:
        if second_moment:
            check_nu_dtype(value)
        else:
            check_dtype(name, value, allow_complex=allow_complex)
    except TypeError as error:
        raise TypeError(f"{error} jnp.int8 (or optaxtra.blockwise_int8()) stores it in 8 bits.") from None


def zeros(array: jax.Array, requested: Any, *, signed: bool) -> Any:
    """A zero moment leaf stored as ``requested`` asks, given its zeros as an array.

    ``array`` is what float storage would hold (zeros in the leaf's storage
    dtype, laid out like the param); it is returned unchanged unless 8-bit
    storage applies to it.
    """
    spec = storage_spec(requested)
    if spec is None or not _quantizable(array, spec):
        return array
    codes = jnp.full_like(array, _zero_code(signed), dtype=jnp.int8 if signed else jnp.uint8)
    n_blocks = -(-array.size // spec.block_size)
    return QuantizedArray(codes, jnp.zeros((n_blocks,), jnp.float32), jnp.zeros((), jnp.float32))


def _quantizable(array: jax.Array, spec: BlockwiseInt8) -> bool:
    return bool(jnp.issubdtype(array.dtype, jnp.floating)) and array.size >= max(spec.min_size, 1)


def _zero_code(signed: bool) -> int:
    index = int(np.flatnonzero(dynamic_map(signed) == 0)[0])
    return index - 128 if signed else index


def load(stored: Any) -> Any:
    """A stored moment leaf as an array: 8-bit leaves dequantized to float32."""
    return dequantize_blockwise(stored) if is_quantized(stored) else stored


def store(new: jax.Array, old: Any) -> Any:
    """``new`` (float32) stored like ``old``: requantized with ``old``'s map and block size.

    Float leaves are returned unchanged: the caller rounds them.
    """
    if not is_quantized(old):
        return new
    return quantize_blockwise(new, signed=old.codes.dtype == jnp.int8, block_size=block_size_of(old))


def quantized_leaves(tree: Any) -> list[QuantizedArray]:
    """The 8-bit leaves of a state tree, in order."""
    return [leaf for leaf in jax.tree.leaves(tree, is_leaf=is_quantized) if is_quantized(leaf)]


def init_shapes(init_fn: Any, updates: Any) -> Any:
    """The shapes ``init_fn`` gives a state for params like ``updates``: what an 8-bit state must match.

    An 8-bit leaf's codes and ``absmax`` are not shaped like its update, so a
    piece checks its stored state against this instead of against ``updates``.
    """
    like_param = lambda u: jax.ShapeDtypeStruct(jnp.shape(u), leaf_dtype(u) if is_trainable(u) else jnp.bool_)
    return jax.eval_shape(init_fn, jax.tree.map(like_param, updates))
