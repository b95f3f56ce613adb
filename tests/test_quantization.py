"""Block-wise 8-bit optimizer state, checked against the paper and against bitsandbytes.

The dynamic map is rebuilt here from the paper's description (a sign bit, a
run of zero bits for the decade, an indicator bit, linear fraction bits) and
compared value by value. bitsandbytes 0.50.2 imports on a CPU-only torch and is
a second reference where it is installed (``pip install --no-deps
bitsandbytes==0.50.2``; otherwise those tests are skipped). Its map agrees to
2 float32 ulps (it is computed in float32, ours in float64 then rounded). Its
compiled CPU kernel does not always pick the nearest code: on the log-normal
data below 9% (signed) and 16% (unsigned) of its codes are not the nearest,
almost all of them for values under 1e-4 of the block's absmax (its pure-torch
``default`` kernel uses the midpoints, as we do). We round to nearest, as the
paper describes; the test pins that ours is never farther from the input.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optaxtra
from optaxtra._quantization import block_size_of, dynamic_map
from optaxtra._quantization import dequantize_blockwise as _dequantize
from optaxtra._quantization import quantize_blockwise as _quantize
from optaxtra._quantized_storage import quantized_leaves

# Compiled once each: op by op, the search for the nearest code is slow.
quantize_blockwise = jax.jit(_quantize, static_argnames=("signed", "block_size"))
dequantize_blockwise = jax.jit(_dequantize)

RNG = np.random.default_rng(0)
# Log-normal magnitudes spanning several decades, as optimizer moments do.
DATA = (RNG.standard_normal(5000) * np.exp(2 * RNG.standard_normal(5000))).astype(np.float32)


def paper_map(signed: bool) -> np.ndarray:
    """The dynamic tree map, from the description in Dettmers (2016) and Dettmers et al. (2021).

    After the sign bit, E zero bits (E = 0..6) set the decade 10**-E; an
    indicator bit follows; the remaining 6 - E bits (one more when the sign bit
    is repurposed, unsigned) index equal bins of [0.1, 1], stored at their
    centres. Exact 0 and 1 complete the 256 values.
    """
    values = {0.0, 1.0}
    for e in range(7):
        bits = 6 - e + (0 if signed else 1)
        for k in range(2**bits):
            centre = 0.1 + (k + 0.5) * 0.9 / 2**bits
            values.add(centre * 10.0**-e)
            if signed:
                values.add(-centre * 10.0**-e)
    return np.array(sorted(values))


@pytest.mark.parametrize("signed", [True, False])
def test_dynamic_map_is_the_papers(signed):
    table = dynamic_map(signed)
    assert table.shape == (256,) and table.dtype == np.float32
    np.testing.assert_array_max_ulp(table, paper_map(signed).astype(np.float32), maxulp=0)
    assert table[-1] == 1.0 and 0.0 in table
    # The top decade [0.1, 1] holds 64 values per sign (128 unsigned), besides 1.
    top = table[(table >= 0.1) & (table < 1.0)]
    assert len(top) == (64 if signed else 128)
    assert table[0] == pytest.approx(-0.99296875 if signed else 0.0)


def test_round_trip_picks_the_nearest_code_in_every_block():
    for signed in (True, False):
        x = DATA if signed else np.abs(DATA)
        q = quantize_blockwise(jnp.asarray(x), signed=signed, block_size=256)
        assert q.codes.shape == x.shape and q.absmax.shape == (20,)  # ceil(5000 / 256)
        absmax = np.repeat(np.asarray(q.absmax), 256)[: x.size]
        np.testing.assert_array_equal(absmax, np.abs(np.pad(x, (0, 120))).reshape(20, 256).max(1).repeat(256)[:5000])
        normed = x.astype(np.float64) / absmax
        table = dynamic_map(signed).astype(np.float64)
        index = np.asarray(q.codes).astype(np.int64) + (128 if signed else 0)
        best = np.abs(table[None, :] - normed[:, None]).min(1)
        # Unsigned: a positive value nearer 0 than the smallest code takes that code.
        tiny = (normed > 0) & (normed < table[1] / 2) if not signed else np.zeros(x.shape, bool)
        assert np.all(np.abs(table[index] - normed)[~tiny] <= best[~tiny] + 1e-7)
        assert np.all(index[tiny] == 1)
        # The bound this gives: half the widest gap of the map (or the distance from -1 to
        # the map's end), times the block's absmax, plus the float32 rounding of the product.
        error = np.abs(np.asarray(dequantize_blockwise(q)) - x)
        assert np.all(error <= absmax * (max(np.diff(table).max() / 2, 1 + table[0]) + 2.0**-22))
        # The largest element of each block is stored exactly (the map holds 1).
        assert np.all(error[np.abs(x) == absmax] == 0) if not signed else True


def test_zero_and_all_equal_blocks():
    x = jnp.concatenate([jnp.zeros(64), jnp.full(64, 3.5), jnp.full(64, -2.0)])
    q = quantize_blockwise(x, signed=True, block_size=64)
    out = np.asarray(dequantize_blockwise(q))
    np.testing.assert_array_equal(out[:64], 0.0)
    np.testing.assert_array_equal(out[64:128], 3.5)
    # The signed map's most negative value is -0.99296875, not -1: documented, pinned.
    np.testing.assert_allclose(out[128:], -2.0 * 0.99296875, rtol=1e-7)
    np.testing.assert_array_equal(q.absmax, [0.0, 3.5, 2.0])
    u = quantize_blockwise(jnp.zeros(100), signed=False, block_size=64)
    np.testing.assert_array_equal(dequantize_blockwise(u), 0.0)
    assert float(u.error) == 0.0


def test_a_second_moment_is_never_stored_as_zero_unless_it_is_zero():
    v = jnp.asarray([0.0, 1e-12, 1e-7, 2e-7, 1.0])
    stored = np.asarray(dequantize_blockwise(quantize_blockwise(v, signed=False, block_size=8)))
    smallest = dynamic_map(False)[1]
    np.testing.assert_array_equal(stored[:4], [0.0, smallest, smallest, smallest])
    m = np.asarray(dequantize_blockwise(quantize_blockwise(-v, signed=True, block_size=8)))
    np.testing.assert_array_equal(m[:4], 0.0)  # first moments: nearest, here 0


def test_a_gradient_that_stops_does_not_divide_by_eps():
    """One element's v is 1e-10 of its block's largest; its gradient is then 0 for a step."""
    tx = optaxtra.scale_by_adam(mu_dtype=jnp.int8, nu_dtype=optaxtra.blockwise_int8(min_size=0))
    full = optaxtra.scale_by_adam()
    g1, g2 = jnp.zeros(64).at[0].set(1e3).at[1].set(1e-2), jnp.zeros(64).at[0].set(1e3)
    updates = []
    for t in (tx, full):
        state = t.init(jnp.zeros(64))
        _, state = t.update(g1, state)
        updates.append(float(t.update(g2, state)[0][1]))
    assert 0 < updates[1] < 1 and 0 < updates[0] < 1, updates  # stored as 0, v would give m / eps ~ 5e5


def test_a_non_finite_value_poisons_its_block_only():
    for bad in (jnp.nan, jnp.inf, -jnp.inf):
        x = jnp.arange(192, dtype=jnp.float32).at[70].set(bad)
        q = quantize_blockwise(x, signed=True, block_size=64)
        out = np.asarray(dequantize_blockwise(q))
        assert np.isnan(out[64:128]).all() and np.isfinite(np.delete(out, np.s_[64:128])).all()
        assert np.isnan(float(q.error))


def test_the_block_size_is_read_back_from_the_shapes():
    for size, block in [(4096, 2048), (4097, 2048), (5000, 4096), (6145, 2048), (10, 2048), (1, 2)]:
        q = jax.eval_shape(lambda x, b=block: _quantize(x, signed=False, block_size=b), jnp.ones(size))
        assert q.codes.shape == (size,) and q.absmax.shape == (-(-size // block),)
        stored = block_size_of(q)
        # One block: any size at least the tensor's cuts it the same way.
        assert stored == block or (q.absmax.shape == (1,) and stored >= size)


def test_relative_error_is_the_one_of_the_stored_values():
    x = jnp.asarray(DATA)
    q = quantize_blockwise(x, signed=True, block_size=2048)
    expected = np.linalg.norm(np.asarray(dequantize_blockwise(q)) - DATA) / np.linalg.norm(DATA)
    assert float(q.error) == pytest.approx(expected, rel=1e-5)


# bitsandbytes as a second reference.


@pytest.fixture(scope="module")
def bnb():
    torch = pytest.importorskip("torch")
    functional = pytest.importorskip("bitsandbytes.functional")
    return torch, functional


@pytest.mark.parametrize("signed", [True, False])
def test_map_and_blockwise_quantization_match_bitsandbytes(bnb, signed):
    torch, F = bnb
    code = F.create_dynamic_map(signed=signed)
    np.testing.assert_array_max_ulp(dynamic_map(signed), code.numpy(), maxulp=2)
    x = DATA if signed else np.abs(DATA)
    codes, state = F.quantize_blockwise(torch.tensor(x), code=code, blocksize=2048)
    ours = quantize_blockwise(jnp.asarray(x), signed=signed, block_size=2048)
    np.testing.assert_array_equal(np.asarray(ours.absmax), state.absmax.numpy())
    theirs = codes.numpy().astype(np.int64)
    mine = np.asarray(ours.codes).astype(np.int64) + (128 if signed else 0)
    # Decoding: their codes through our dequantizer give their values exactly.
    decoded = dequantize_blockwise(ours._replace(codes=jnp.asarray((theirs - (128 if signed else 0)).astype(ours.codes.dtype))))
    # Up to 3 ulps: the maps differ by 2 (float32 construction), then one rounding of the product.
    np.testing.assert_array_max_ulp(np.asarray(decoded), F.dequantize_blockwise(codes, state).numpy(), maxulp=3)
    # Encoding: where the codes differ (9% signed, 16% unsigned on DATA), ours is the nearer
    # value. Their kernel strays mostly below 1e-4 of absmax; above 1e-2, 0.3% differ, by one code.
    # Unsigned values under half the smallest code are ours by policy (stored as it, not as 0).
    table, normed = code.numpy().astype(np.float64), x / np.repeat(state.absmax.numpy(), 2048)[: x.size]
    policy = (normed > 0) & (normed < table[1] / 2) if not signed else np.zeros(x.shape, bool)
    assert np.all(mine[policy] == 1)
    differ = (mine != theirs) & ~policy
    assert np.all(np.abs(table[mine] - normed)[differ] <= np.abs(table[theirs] - normed)[differ])
    assert np.abs(mine - theirs)[np.abs(normed) > 1e-2].max() <= 1


# The optimizers.

EIGHT_BIT = optaxtra.blockwise_int8(block_size=64, min_size=256)
PARAMS = {"w": jnp.asarray(RNG.standard_normal((16, 32)), jnp.float32), "b": jnp.zeros(32), "n": jnp.zeros(3, jnp.int32)}


def grads(seed: int) -> dict:
    g = jax.tree.map(lambda p: jnp.asarray(np.random.default_rng(seed).standard_normal(p.shape), jnp.float32), PARAMS)
    return {**g, "n": np.zeros(3, jax.dtypes.float0)}


def test_adamw_int8_state_layout_and_bytes():
    tx = optaxtra.adamw(1e-3, mu_dtype=jnp.int8, nu_dtype=jnp.int8)
    params = {"w": jnp.zeros((128, 64)), "b": jnp.zeros(64)}
    adam = tx.init(params)[0]
    assert adam.mu["w"].codes.dtype == jnp.int8 and adam.nu["w"].codes.dtype == jnp.uint8
    assert adam.mu["w"].codes.shape == (128, 64) and adam.mu["w"].absmax.shape == (4,)
    assert adam.mu["b"].dtype == jnp.float32  # below min_size
    np.testing.assert_array_equal(dequantize_blockwise(adam.mu["w"]), 0.0)
    nbytes = sum(leaf.nbytes for leaf in jax.tree.leaves((adam.mu["w"], adam.nu["w"])))
    assert nbytes == 2 * 128 * 64 + 2 * (4 * 4 + 4)


def reference_adam(steps, lr=1e-2, b1=0.9, b2=0.999, eps=1e-8):
    """Adam with each moment quantized after its update, as bitsandbytes' 8-bit Adam does."""
    w = np.asarray(PARAMS["w"], np.float64)
    m = v = jnp.zeros(w.shape)
    for t in range(1, steps + 1):
        g = grads(t)["w"]
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr * np.asarray((m / (1 - b1**t)) / (jnp.sqrt(v / (1 - b2**t)) + eps))
        m = dequantize_blockwise(quantize_blockwise(m, signed=True, block_size=64))
        v = dequantize_blockwise(quantize_blockwise(v, signed=False, block_size=64))
    return w


def test_adam_steps_match_quantize_after_each_update_and_stay_close_to_float32():
    tx = optaxtra.adam(1e-2, mu_dtype=EIGHT_BIT, nu_dtype=EIGHT_BIT)
    full = optaxtra.adam(1e-2)
    step, full_step = jax.jit(tx.update), jax.jit(full.update)
    params, state, fparams, fstate = PARAMS, tx.init(PARAMS), PARAMS, full.init(PARAMS)
    for t in range(1, 4):
        updates, state = step(grads(t), state, params)
        params = optax.apply_updates(params, updates)
        fupdates, fstate = full_step(grads(t), fstate, fparams)
        fparams = optax.apply_updates(fparams, fupdates)
    np.testing.assert_allclose(params["w"], reference_adam(3), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(params["b"], fparams["b"])  # kept in float32
    drift = np.abs(np.asarray(params["w"] - fparams["w"])).max()
    assert 0 < drift < 0.1 * 3e-2  # below a tenth of three steps of size lr
    # diagnostics: the relative error of the last requantization of each 8-bit leaf.
    errors = {k: v for k, v in optaxtra.diagnostics(state).items() if k.endswith("quantization/relative_error")}
    assert sorted(errors) == ["1/mu/w/quantization/relative_error", "1/nu/w/quantization/relative_error"]
    assert all(0 < float(v) < 0.05 for v in errors.values())


ALIASES = {
    "amsgrad": lambda s: optaxtra.amsgrad(1e-2, mu_dtype=s, nu_dtype=s),
    "rectified_adabelief": lambda s: optax.chain(
        optaxtra.scale_by_radam_rectifier(mu_dtype=s, nu_dtype=s, second_moment=optaxtra.belief_second_moment()),
        optaxtra.scale_by_learning_rate(1e-2),
    ),
    "lamb": lambda s: optaxtra.lamb(1e-2, mu_dtype=s, nu_dtype=s),
    "ranger": lambda s: optaxtra.ranger(1e-2, mu_dtype=s, nu_dtype=s),
    "nadam": lambda s: optaxtra.nadam(1e-2, mu_dtype=s, nu_dtype=s),
    "adamax": lambda s: optaxtra.adamax(1e-2, mu_dtype=s, nu_dtype=s),
    "stable_adamw": lambda s: optaxtra.stable_adamw(1e-2, mu_dtype=s),
    "lion": lambda s: optaxtra.lion(1e-3, mu_dtype=s),
    "adopt": lambda s: optaxtra.adopt(1e-2, mu_dtype=s),
    "ademamix": lambda s: optaxtra.ademamix(1e-2, mu_dtype=s),
    "simplified_ademamix": lambda s: optaxtra.simplified_ademamix(1e-3, alpha=1.0, mu_dtype=s),
    "muon": lambda s: optaxtra.muon(1e-2, mu_dtype=s),
    "ralamb": lambda s: optaxtra.ralamb(1e-2, mu_dtype=s, nu_dtype=s),
}


def test_every_moment_piece_keeps_8bit_state_under_jit_and_vmap():
    for name, make in ALIASES.items():
        codes = [leaf for leaf in jax.tree.leaves(make(EIGHT_BIT).init(PARAMS)) if leaf.dtype in (jnp.int8, jnp.uint8)]
        full_size = [
            leaf for leaf in jax.tree.leaves(make(EIGHT_BIT).init(PARAMS))
            if leaf.shape == (16, 32) and leaf.dtype == jnp.float32
        ]
        assert codes and all(c.shape == (16, 32) for c in codes), name
        assert len(full_size) == (1 if name == "ranger" else 0), name  # Ranger's slow weights

    @jax.jit  # one program for all of them: one compilation
    def two_steps(g1, g2):
        differences = {}
        for name, make in ALIASES.items():
            last = []
            for tx in (make(EIGHT_BIT), make(None)):
                state = tx.init(PARAMS)
                for g in (g1, g2):
                    updates, state = tx.update(g, state, PARAMS)
                last.append(updates["w"])
            differences[name] = jnp.abs(last[0] - last[1]).max() / jnp.abs(last[1]).max()
        return differences

    # Two quantizations of each moment move the update by about the map's resolution
    # (Lion's update is a sign: the 8-bit momentum gives the same one here).
    for name, difference in two_steps(grads(1), grads(2)).items():
        assert (name == "lion" or 0 < float(difference)) and float(difference) < 0.1, (name, float(difference))
    # vmap over a batch of runs (e.g. seeds): the state is batched like the params.
    tx = ALIASES["amsgrad"](EIGHT_BIT)
    batch = jax.tree.map(lambda p: jnp.stack([p, p]), {"w": PARAMS["w"]})
    states = jax.vmap(tx.init)(batch)
    updates, states = jax.jit(jax.vmap(tx.update))(batch, states, batch)
    assert states[1].mu["w"].absmax.shape == (2, 8)  # amsgrad: chain(decay, adam, lr)


@pytest.mark.parametrize(
    ("name", "code_dtypes"),
    [("simplified_ademamix", [jnp.int8, jnp.uint8]), ("muon", [jnp.int8]), ("ralamb", [jnp.int8, jnp.uint8])],
)
def test_8bit_state_stays_8bit_through_jitted_training_steps(name, code_dtypes):
    tx, traces = ALIASES[name](EIGHT_BIT), []
    step = jax.jit(lambda g, s, p: traces.append(1) or tx.update(g, s, p))
    params, state = PARAMS, tx.init(PARAMS)
    for t in range(1, 4):
        updates, state = step(grads(t), state, params)
        params = optax.apply_updates(params, updates)
    assert len(traces) == 1  # the state after a step has the types and shapes of the initial one
    assert jax.tree.structure(state) == jax.tree.structure(tx.init(PARAMS))
    # First moments and momenta with the signed map, second moments with the unsigned one.
    assert [leaf.codes.dtype for leaf in quantized_leaves(state)] == code_dtypes
    assert all(leaf.codes.shape == (16, 32) and leaf.absmax.shape == (8,) for leaf in quantized_leaves(state))
    assert np.isfinite(np.asarray(params["w"])).all() and not np.array_equal(params["w"], PARAMS["w"])
    np.testing.assert_array_equal(params["n"], PARAMS["n"])


@pytest.mark.parametrize("make", [optaxtra.scale_by_simplified_ademamix, optaxtra.scale_by_muon, optaxtra.ralamb])
def test_a_dtype_that_is_neither_float_nor_8bit_is_refused(make):
    with pytest.raises(TypeError, match=r"mu_dtype.*stores it in 8 bits"):
        make(mu_dtype=jnp.int32)


def test_a_non_finite_gradient_shows_in_the_update():
    tx = optaxtra.adam(1e-2, mu_dtype=EIGHT_BIT, nu_dtype=EIGHT_BIT)
    step = jax.jit(tx.update)
    g = grads(1)
    g["w"] = g["w"].at[0, 0].set(jnp.inf)
    updates, state = step(g, tx.init(PARAMS), PARAMS)
    # This step uses the values it computed: non-finite where float32 Adam's is.
    assert np.isnan(np.asarray(updates["w"])[0, 0]) and np.isfinite(np.asarray(updates["w"]).ravel()[1:]).all()
    # The stored block of 64 (two rows) reads back as NaN: the next step shows it.
    absmax = np.asarray(state[1].mu["w"].absmax)  # adam: chain(decay, adam, lr)
    assert np.isnan(absmax[0]) and np.isfinite(absmax[1:]).all()
    updates, state = step(grads(2), state, PARAMS)
    assert np.isnan(np.asarray(updates["w"])[:2]).all() and np.isfinite(np.asarray(updates["w"])[2:]).all()


@pytest.mark.parametrize(
    "make", [optaxtra.scale_by_lion, optaxtra.scale_by_simplified_ademamix, optaxtra.scale_by_muon],
    ids=["lion", "simplified_ademamix", "muon"],
)
def test_an_8bit_state_of_other_params_is_refused(make):
    """Codes and ``absmax`` are not shaped like the update: the check is against a fresh state's shapes."""
    tx = make(mu_dtype=EIGHT_BIT)
    state = tx.init({"w": jnp.zeros((64, 128))})
    with pytest.raises(ValueError, match="the momentum in the state"):
        tx.update({"w": jnp.ones((64, 256))}, state, {"w": jnp.zeros((64, 256))})


def test_bad_requests_are_refused_at_construction():
    with pytest.raises(ValueError, match="block_size must be a power of two"):
        optaxtra.blockwise_int8(block_size=1000)
    with pytest.raises(ValueError, match="min_size"):
        optaxtra.blockwise_int8(min_size=-1)
    with pytest.raises(ValueError, match="float16"):
        optaxtra.adam(1e-3, nu_dtype=jnp.float16)
    with pytest.raises(TypeError, match="mu_dtype"):
        optaxtra.adam(1e-3, mu_dtype=jnp.int32)


def test_restoring_a_checkpoint_of_8bit_state_continues_bit_for_bit(tmp_path):
    ocp = pytest.importorskip("orbax.checkpoint")
    tx = optaxtra.adamw(1e-2, mu_dtype=EIGHT_BIT, nu_dtype=EIGHT_BIT)
    params = {k: v for k, v in PARAMS.items() if k != "n"}
    step = jax.jit(lambda g, s, p: tx.update(g, s, p)[1])
    g = {k: v for k, v in grads(1).items() if k != "n"}
    state = step(g, tx.init(params), params)
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(tmp_path / "ckpt", state)
    with ocp.StandardCheckpointer() as checkpointer:
        restored = checkpointer.restore(tmp_path / "ckpt", jax.eval_shape(tx.init, params))
    assert jax.tree.structure(restored) == jax.tree.structure(state)
    jax.tree.map(np.testing.assert_array_equal, step(g, restored, params), step(g, state, params))
