"""Optimizers whose moments are stored in bfloat16 (the maths stays float32), for ``optaxtra compare``.

    optaxtra compare --optimizers adam,benchmarks/bf16_state.py:adam_bf16,lamb,benchmarks/bf16_state.py:lamb_bf16

The state memory of the moments halves; the benchmark's ``adam_bf16`` and
``lamb_bf16`` rows time them, and ``benchmarks/README.md`` reports their
effect on ``optaxtra compare``.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax

import optaxtra


def adam_bf16(learning_rate: float) -> optax.GradientTransformation:
    """``optaxtra.adam`` with both moments stored in bfloat16."""
    return optaxtra.adam(learning_rate, mu_dtype=jnp.bfloat16)


def lamb_bf16(learning_rate: float) -> optax.GradientTransformation:
    """``optaxtra.lamb`` (weight decay 1e-2, as in ``OPTIMIZERS``) with bfloat16 moments."""
    return optaxtra.lamb(learning_rate, weight_decay=1e-2, mu_dtype=jnp.bfloat16)
