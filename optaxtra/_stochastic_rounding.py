"""Stochastic rounding of float32 state to bfloat16, with noise computed in place.

A moving average stored in bfloat16 cannot move by less than half a unit in
the last place (2**-8 relative): with ``b2 = 0.999`` the step ``(1 - b2) (g**2
- v)`` is 2**-10 of ``v``, so round-to-nearest returns ``v`` unchanged and the
average stalls. Rounding up with probability equal to the discarded fraction
makes every stored value an unbiased estimate of the float32 one, so the
average moves as it should in expectation.

The random bits are a hash of each element's index, the step count and a salt
(murmur3's 32-bit finaliser), computed element-wise where they are used: no
key in the state, no random-number kernel, nothing stored; the same step gives
the same bits, so a run is reproducible and jit, vmap and sharding see plain
integer arithmetic.

References:
  Gupta et al., "Deep Learning with Limited Numerical Precision", ICML 2015
  (stochastic rounding). https://arxiv.org/abs/1502.02551
  Zamirai et al., "Revisiting BFloat16 Training", 2020 (bfloat16 optimizer
  state with stochastic rounding). https://arxiv.org/abs/2010.06192
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

__all__ = ["stochastic_round_to_bfloat16"]

_GOLDEN = 0x9E3779B1  # 2**32 / golden ratio: spreads consecutive indices
_STEP = 0x85EBCA77
_SALT = 0xC2B2AE3D
_LOW_16 = 0xFFFF
_HIGH_16 = 0xFFFF0000


def _u32(value: int) -> jax.Array:
    return jnp.asarray(value, jnp.uint32)


def _noise_16(shape: tuple[int, ...], count: jax.Array, salt: int) -> jax.Array:
    """16 pseudo-random bits per element (uint32 in [0, 2**16)), a hash of (index, count, salt)."""
    x = jnp.arange(math.prod(shape), dtype=jnp.uint32).reshape(shape) * _u32(_GOLDEN)
    x = x + (count.astype(jnp.uint32) * _u32(_STEP) + _u32(salt % 2**32) * _u32(_SALT))
    x = x ^ (x >> _u32(16))  # murmur3 fmix32
    x = x * _u32(0x85EBCA6B)
    x = x ^ (x >> _u32(13))
    x = x * _u32(0xC2B2AE35)
    x = x ^ (x >> _u32(16))
    return x & _u32(_LOW_16)


def stochastic_round_to_bfloat16(x: jax.Array, count: jax.Array, salt: int) -> jax.Array:
    """``x`` (float32) rounded to bfloat16, up with probability equal to the dropped fraction.

    bfloat16 is the upper half of float32's bits: adding 16 random bits to
    the lower half and truncating rounds the magnitude up with probability
    (lower half) / 2**16, which is unbiased for either sign. Infinities and
    NaN get no noise, so they stay infinite and NaN (a NaN whose payload lies
    only in the lower half, which arithmetic does not produce, would become
    an infinity: non-finite either way).

    Args:
      x: a float32 array.
      count: the step count (an integer scalar): new bits every step.
      salt: an integer that tells arrays apart (e.g. a leaf's index).

    Returns:
      A bfloat16 array of ``x``'s shape.
    """
    bits = jax.lax.bitcast_convert_type(x, jnp.uint32)
    noise = _noise_16(x.shape, count, salt) * jnp.isfinite(x).astype(jnp.uint32)  # inf, NaN: no carry
    rounded = jax.lax.bitcast_convert_type((bits + noise) & _u32(_HIGH_16), jnp.float32)
    return rounded.astype(jnp.bfloat16)  # exact: the lower half is zero
