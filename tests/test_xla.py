"""``overwrite`` returns the new value exactly, and keeps the old one an input of a jitted step."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optaxtra._xla import overwrite

SPECIAL = [0.0, -0.0, 1.5, -3.0, np.inf, -np.inf, np.nan, np.finfo(np.float32).tiny]


@pytest.mark.parametrize("previous", SPECIAL)
@pytest.mark.parametrize("value", SPECIAL)
def test_float_result_is_the_new_value_bit_for_bit(previous, value):
    got = jax.jit(overwrite)(jnp.float32(previous), jnp.float32(value))
    assert got.dtype == jnp.float32
    assert np.float32(got).tobytes() == np.float32(value).tobytes()


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.uint8, jnp.bool_])
def test_integer_and_boolean_results_are_the_new_value(dtype):
    info = np.iinfo(dtype) if dtype != jnp.bool_ else None
    values = [False, True] if info is None else [info.min, 0, 1, info.max]
    for previous in values:
        for value in values:
            got = jax.jit(overwrite)(jnp.asarray(previous, dtype), jnp.asarray(value, dtype))
            assert got.dtype == dtype and got == value


def test_value_is_cast_and_broadcast_to_the_previous_field():
    got = overwrite(jnp.zeros(3, jnp.float32), 2)
    assert got.dtype == jnp.float32 and got.tolist() == [2.0, 2.0, 2.0]


def test_a_constant_written_with_it_reuses_the_donated_buffer():
    def record(previous, constant):
        return jax.jit(lambda s: constant(s), donate_argnums=0).lower(previous).compile().as_text()

    plain = record(jnp.float32(0), lambda s: jnp.float32(1e-3))
    kept = record(jnp.float32(0), lambda s: overwrite(s, jnp.float32(1e-3)))
    # The module header lists the outputs aliased to donated inputs.
    assert "alias" not in plain.splitlines()[0]
    assert "may-alias" in kept.splitlines()[0] or "must-alias" in kept.splitlines()[0]


@pytest.mark.parametrize(
    "previous, value",
    [(jnp.complex64(1.0), jnp.complex64(2.0)), (jnp.int32(0), 2.5), (jnp.bool_(False), 0.5)],
)
def test_fields_without_a_lowest_value_or_that_would_truncate_are_refused(previous, value):
    with pytest.raises(TypeError, match="overwrite"):
        overwrite(previous, value)


def test_works_under_vmap_and_scan():
    previous, values = jnp.zeros(4, jnp.float32), jnp.array([1.0, -2.0, np.nan, 4.0], jnp.float32)
    batched = jax.vmap(overwrite)(previous, values)
    np.testing.assert_array_equal(batched, values)

    def body(carry, value):
        new = overwrite(carry, value)
        return new, new

    last, seen = jax.lax.scan(body, jnp.float32(0), values)
    np.testing.assert_array_equal(seen, values)
    assert np.isclose(float(last), 4.0)
