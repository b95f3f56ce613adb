"""Optimizers whose moments are stored in bfloat16 (the maths stays float32), for ``optaxtra compare``.

    optaxtra compare --optimizers adam,benchmarks/bf16_state.py:adam_bf16,lamb,benchmarks/bf16_state.py:lamb_bf16

Both moments are bfloat16, the second stored with stochastic rounding (in
plain bfloat16, ``b2 * v`` rounds back to ``v``): the state is half of
float32's. The benchmark's ``adam_bf16`` and
``lamb_bf16`` rows time them, and ``benchmarks/README.md`` reports their
effect on ``optaxtra compare``.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax

import optaxtra


def adam_bf16(learning_rate: float) -> optax.GradientTransformation:
    """``optaxtra.adam`` with both moments stored in bfloat16."""
    return optaxtra.adam(learning_rate, mu_dtype=jnp.bfloat16, nu_dtype=jnp.bfloat16)


def lamb_bf16(learning_rate: float) -> optax.GradientTransformation:
    """``optaxtra.lamb`` (weight decay 1e-2, as in ``OPTIMIZERS``) with bfloat16 moments."""
    return optaxtra.lamb(learning_rate, weight_decay=1e-2, mu_dtype=jnp.bfloat16, nu_dtype=jnp.bfloat16)
