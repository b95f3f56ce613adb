"""Test-wide settings: strict dtype and rank promotion, as the library promises to obey them."""

import jax

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")
