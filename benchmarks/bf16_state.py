"""Optimizers whose first moment is stored in bfloat16 (the maths stays float32), for ``optaxtra compare``.

    optaxtra compare --optimizers adam,benchmarks/bf16_state.py:adam_bf16,lamb,benchmarks/bf16_state.py:lamb_bf16

The first moment's memory halves (the second moment stays float32: in
bfloat16, ``b2 * v`` rounds back to ``v``), so Adam's state is 0.75x; the benchmark's ``adam_bf16`` and
``lamb_bf16`` rows time them, and ``benchmarks/README.md`` reports their
effect on ``optaxtra compare``.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax

import optaxtra


def adam_bf16(learning_rate: float) -> optax.GradientTransformation:
    """``optaxtra.adam`` with its first moment stored in bfloat16."""
    return optaxtra.adam(learning_rate, mu_dtype=jnp.bfloat16)


def lamb_bf16(learning_rate: float) -> optax.GradientTransformation:
    """``optaxtra.lamb`` (weight decay 1e-2, as in ``OPTIMIZERS``) with a bfloat16 first moment."""
    return optaxtra.lamb(learning_rate, weight_decay=1e-2, mu_dtype=jnp.bfloat16)
