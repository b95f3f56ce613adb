"""Adam-mini against the authors' ``adam_mini`` 1.1.1 (``Adam_mini``), on a small Transformer.

The same Transformer (one block; grouped-query attention: 4 query heads, 2
key/value heads) is written twice: as PyTorch names and ``(out, in)`` weights,
which the authors' code partitions by name, and in Flax's layouts (``Embed``,
``MultiHeadDotProductAttention``'s ``(d_model, heads, head_dim)`` kernels,
``Dense`` ``(in, out)`` kernels), which ``ADAM_MINI_FLAX_RULES`` partitions.
Both get the same gradients (open loop: a fixed sequence, its scale varying
from row to row so that the blocks' second moments differ), and the params are
compared after every step at the torch parity tolerance
(``tests/test_parity_torch.py``). The authors' optimizer runs in one process
without ``torch.distributed``: on a machine without CUDA its world size is 0
and it takes no collective path, so nothing is patched.
"""

from __future__ import annotations

import functools
import inspect
from typing import Callable, NamedTuple

import adam_mini as authors
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

import optaxtra
from optaxtra.optimizers._adam_mini import _authors_decay_mask
from tests._bad_input import assert_refused

RTOL = 1e-5
ATOL = 1e-6
STEPS = 25
VOCAB, CONTEXT, D, HEADS, KV_HEADS, FFN, LAYERS = 13, 6, 8, 4, 2, 16, 1
HEAD_DIM = D // HEADS


def _shapes() -> dict[str, tuple[int, ...]]:
    """The PyTorch model's named params (``Adam_mini`` reads these names)."""
    shapes = {"embed.weight": (VOCAB, D), "positions": (CONTEXT, D)}
    for i in range(LAYERS):
        layer = f"layers.{i}."
        shapes.update({
            layer + "norm1.weight": (D,), layer + "norm1.bias": (D,),
            layer + "attn.q_proj.weight": (HEADS * HEAD_DIM, D), layer + "attn.q_proj.bias": (HEADS * HEAD_DIM,),
            layer + "attn.k_proj.weight": (KV_HEADS * HEAD_DIM, D), layer + "attn.k_proj.bias": (KV_HEADS * HEAD_DIM,),
            layer + "attn.v_proj.weight": (KV_HEADS * HEAD_DIM, D), layer + "attn.v_proj.bias": (KV_HEADS * HEAD_DIM,),
            layer + "attn.o_proj.weight": (D, HEADS * HEAD_DIM), layer + "attn.o_proj.bias": (D,),
            layer + "norm2.weight": (D,), layer + "norm2.bias": (D,),
            layer + "mlp.fc1.weight": (FFN, D), layer + "mlp.fc1.bias": (FFN,),
            layer + "mlp.fc2.weight": (D, FFN), layer + "mlp.fc2.bias": (D,),
        })
    shapes.update({"norm.weight": (D,), "norm.bias": (D,), "lm_head.weight": (VOCAB, D)})
    return shapes


SHAPES = _shapes()


def _flax_place(name: str) -> tuple[tuple[str, ...], Callable, Callable]:
    """Where a PyTorch param lives in the Flax tree, and the maps there (exact: transposes, reshapes) and back."""
    same = lambda x: x
    if name == "embed.weight":
        return ("Embed_0", "embedding"), same, same
    if name == "positions":
        return ("positions",), same, same
    if name.startswith("norm."):
        return ("LayerNorm_0", "scale" if name.endswith("weight") else "bias"), same, same
    if name == "lm_head.weight":
        return ("lm_head", "kernel"), np.transpose, np.transpose
    _, i, *rest = name.split(".")
    block = f"_Block_{i}"
    if rest[0] in ("norm1", "norm2"):
        norm = "LayerNorm_0" if rest[0] == "norm1" else "LayerNorm_1"
        return (block, norm, "scale" if rest[1] == "weight" else "bias"), same, same
    if rest[0] == "mlp":
        dense = "Dense_0" if rest[1] == "fc1" else "Dense_1"
        if rest[2] == "bias":
            return (block, dense, "bias"), same, same
        return (block, dense, "kernel"), np.transpose, np.transpose
    projection, kind = rest[1], rest[2]
    attention = (block, "MultiHeadDotProductAttention_0")
    if projection == "o_proj":
        if kind == "bias":
            return attention + ("out", "bias"), same, same
        return (attention + ("out", "kernel"), lambda w: w.T.reshape(HEADS, HEAD_DIM, D),
                lambda k: k.reshape(HEADS * HEAD_DIM, D).T)
    flax_name = {"q_proj": "query", "k_proj": "key", "v_proj": "value"}[projection]
    heads = HEADS if projection == "q_proj" else KV_HEADS
    if kind == "bias":
        return attention + (flax_name, "bias"), lambda b: b.reshape(heads, HEAD_DIM), lambda b: b.reshape(-1)
    return (attention + (flax_name, "kernel"), lambda w: w.T.reshape(D, heads, HEAD_DIM),
            lambda k: k.reshape(D, heads * HEAD_DIM).T)


def to_flax(tree: dict[str, np.ndarray]) -> dict:
    out: dict = {}
    for name, value in tree.items():
        path, forward, _ = _flax_place(name)
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = forward(value)
    return out


def _at(tree: dict, name: str):
    """The Flax tree's entry for the PyTorch param ``name``, as stored."""
    return functools.reduce(lambda node, key: node[key], _flax_place(name)[0], tree)


def from_flax(tree: dict, leading: int = 0) -> dict[str, np.ndarray]:
    """The PyTorch-named arrays of a Flax tree (with ``leading`` stacked axes, e.g. steps)."""
    out = {}
    for name in SHAPES:
        path, _, back = _flax_place(name)
        value = np.asarray(_at(tree, name))
        lead = value.shape[:leading]
        flat = value.reshape((-1,) + value.shape[leading:])
        out[name] = np.stack([back(v) for v in flat]).reshape(lead + SHAPES[name])
    return out


_rng = np.random.default_rng(2406)
INITIAL = {name: (0.5 * _rng.normal(size=shape)).astype(np.float32) for name, shape in SHAPES.items()}
# Each row's scale drawn once over ~3 decades, so that blocks (rows, heads) see different second moments.
_ROW_SCALE = {
    name: np.exp(1.5 * _rng.normal(size=shape[:1] + (1,) * (len(shape) - 1))) for name, shape in SHAPES.items()
}
GRADS = {
    name: (_rng.normal(size=(STEPS,) + shape) * _ROW_SCALE[name]).astype(np.float32) for name, shape in SHAPES.items()
}


class AuthorsRun(NamedTuple):
    trajectory: dict[str, np.ndarray]
    second_moments: dict[str, int]  # entries of each param's second moment
    decayed: dict[str, bool]  # whether each param's group decays


@functools.cache
def authors_run(lr: float, betas: tuple[float, float], eps: float, weight_decay: float) -> AuthorsRun:
    tensors = {name: torch.nn.Parameter(torch.tensor(value)) for name, value in INITIAL.items()}
    optimizer = authors.Adam_mini(
        list(tensors.items()), lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
        dim=D, n_heads=HEADS, n_kv_heads=KV_HEADS, verbose=False,
    )
    trajectory = {name: [] for name in SHAPES}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: idle intra-op threads would spin on a busy machine
    try:
        for t in range(STEPS):
            for name, tensor in tensors.items():
                tensor.grad = torch.tensor(GRADS[name][t])
            optimizer.step()
            for name, tensor in tensors.items():
                trajectory[name].append(tensor.detach().numpy().copy())
    finally:
        torch.set_num_threads(threads)
    second_moments = {}
    for name, tensor in tensors.items():
        state = optimizer.state[tensor]
        second_moments[name] = (state["v"] if "v" in state else state["vmean"]).numel()
    decayed = {group["name"]: group["weight_decay"] > 0 for group in optimizer.param_groups}
    return AuthorsRun({name: np.stack(values) for name, values in trajectory.items()}, second_moments, decayed)


def ours_trajectory(tx: optax.GradientTransformation, params, grads):
    def step(carry, g):
        params, state = carry
        updates, state = tx.update(g, state, params)
        params = optax.apply_updates(params, updates)
        return (params, state), params

    params = jax.tree.map(jnp.asarray, params)
    run = jax.jit(lambda c, g: jax.lax.scan(step, c, g)[1])
    return run((params, tx.init(params)), jax.tree.map(jnp.asarray, grads))


def flax_trajectory(tx: optax.GradientTransformation) -> dict[str, np.ndarray]:
    per_step = [to_flax({name: g[t] for name, g in GRADS.items()}) for t in range(STEPS)]
    grads = jax.tree.map(lambda *steps: np.stack(steps), *per_step)
    return from_flax(ours_trajectory(tx, to_flax(INITIAL), grads), leading=1)


def assert_close(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    for name in SHAPES:
        np.testing.assert_allclose(actual[name], expected[name], rtol=RTOL, atol=ATOL, err_msg=name)


def applied_decay(lr: float, weight_decay: float) -> float:
    """The decay ``p.mul_(1 - lr * wd)`` applies in float32 (see ``tests/test_parity_adopt.py``)."""
    return 1.0 - float(np.float32(1.0 - lr * weight_decay))


CASES = [
    pytest.param((0.1, (0.9, 0.999), 1e-8, 0.0), lambda: optaxtra.adam_mini(0.1), id="defaults_lr_0_1"),
    pytest.param(
        (0.05, (0.8, 0.99), 1e-2, 0.1),
        lambda: optaxtra.adam_mini(0.05, 0.8, 0.99, 1e-2, weight_decay=applied_decay(0.05, 0.1) / 0.05),
        id="nondefault_eps_and_decay",
    ),
]


@pytest.mark.parametrize("reference, ours", CASES)
def test_flax_layout_matches_the_authors_step_by_step(reference, ours):
    assert_close(flax_trajectory(ours()), authors_run(*reference).trajectory)


# The same run in the PyTorch layout, with rules a user would write for it: ``(out, in)`` weights keep
# axis 0 (one block per row), the query and key rows are cut into heads (grouped-query keys: 2).
TORCH_RULES = (
    (r"bias$", "element"),
    (r"q_proj\.weight$", optaxtra.AdamMiniHeads(HEADS, axis=0)),
    (r"k_proj\.weight$", optaxtra.AdamMiniHeads(KV_HEADS, axis=0)),
    (r"(embed|lm_head|v_proj|o_proj|mlp).*weight$", (0,)),
)


def test_torch_layout_with_its_own_rules_matches_the_authors():
    trajectory = ours_trajectory(optaxtra.adam_mini(0.1, rules=TORCH_RULES), INITIAL, GRADS)
    assert_close(jax.tree.map(np.asarray, trajectory), authors_run(0.1, (0.9, 0.999), 1e-8, 0.0).trajectory)
    assert optaxtra.adam_mini_blocks(INITIAL, TORCH_RULES)["layers.0.attn.k_proj.weight"] == TORCH_RULES[2][1]


def test_the_blocks_are_the_authors():
    """Each param's second moment has as many entries as the authors' (per head, row, token, entry, param)."""
    ours = optaxtra.scale_by_adam_mini().init(to_flax(INITIAL)).nu
    sizes = {name: int(np.size(_at(ours, name))) for name in SHAPES}
    assert sizes == authors_run(0.1, (0.9, 0.999), 1e-8, 0.0).second_moments
    assert sizes["layers.0.attn.q_proj.weight"] == HEADS and sizes["layers.0.attn.k_proj.weight"] == KV_HEADS


def test_the_decay_mask_is_the_authors():
    """No decay where the lower-cased name holds ``norm``, ``ln`` or ``bias``: in both layouts."""
    expected = authors_run(0.05, (0.8, 0.99), 1e-2, 0.1).decayed
    assert not all(expected.values()) and any(expected.values())
    flax_mask = _authors_decay_mask(to_flax(INITIAL))
    assert {name: _at(flax_mask, name) for name in SHAPES} == expected
    assert _authors_decay_mask(INITIAL) == expected


def test_the_parity_check_sees_another_partition():
    """Adam's per-entry second moment everywhere (AdamW) leaves the authors' trajectory at once."""
    with pytest.raises(AssertionError):
        assert_close(flax_trajectory(optaxtra.adam_mini(0.1, rules=((".", "element"),))),
                     authors_run(0.1, (0.9, 0.999), 1e-8, 0.0).trajectory)


def test_defaults_are_the_authors_code_not_its_docstring():
    """``Adam_mini``'s docstring gives eps 1e-6; its signature (what runs) 1e-8, which we follow."""
    theirs = inspect.signature(authors.Adam_mini.__init__).parameters
    ours = inspect.signature(optaxtra.adam_mini).parameters
    assert theirs["eps"].default == ours["eps"].default == 1e-8
    assert "defaults to 1e-06" in authors.Adam_mini.__init__.__doc__
    assert theirs["lr"].default == ours["learning_rate"].default == 1e-3
    assert theirs["betas"].default == (ours["b1"].default, ours["b2"].default) == (0.9, 0.999)
    assert theirs["weight_decay"].default == ours["weight_decay"].default == 0.0


def test_two_steps_by_hand():
    """One block per row: v = b2 v + (1 - b2) mean(g**2 of the row), both moments bias-corrected."""
    tx = optaxtra.scale_by_adam_mini(0.5, 0.5, 0.0, rules=(("w", (0,)),))
    state, update = tx.init({"w": jnp.zeros((2, 2))}), jax.jit(tx.update)
    # Step 1: row means of g**2 are 1 and 2; v_hat = (1, 2), m_hat = g.
    updates, state = update({"w": jnp.array([[1.0, 1.0], [2.0, 0.0]])}, state)
    np.testing.assert_allclose(updates["w"], [[1.0, 1.0], [2.0 / np.sqrt(2.0), 0.0]], rtol=1e-6)
    np.testing.assert_allclose(state.nu["w"], [[0.5], [1.0]])
    # Step 2: row means 5 and 0; v = (0.25 + 2.5, 0.5 + 0) = (2.75, 0.5), v_hat = v / 0.75;
    # m = b1 m + (1 - b1) g = ((1.75, 0.75), (0.5, 0)), m_hat = m / 0.75.
    updates, state = update({"w": jnp.array([[3.0, 1.0], [0.0, 0.0]])}, state)
    np.testing.assert_allclose(state.nu["w"], [[2.75], [0.5]])
    expected = np.array([[1.75, 0.75], [0.5, 0.0]]) / 0.75 / np.sqrt(np.array([[2.75], [0.5]]) / 0.75)
    np.testing.assert_allclose(updates["w"], expected, rtol=1e-6)


def test_the_default_rules_read_flax_names_linen_and_nnx():
    from optaxtra.compare.tasks._transformer import CharTransformer

    model = CharTransformer(vocab_size=33, context=16, width=32, depth=1, heads=4)
    params = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 16), jnp.int32))
    blocks = optaxtra.adam_mini_blocks(params)
    attention = "params/_Block_0/MultiHeadDotProductAttention_0/"
    assert blocks[attention + "query/kernel"] == blocks[attention + "key/kernel"] == (-2,)
    assert blocks[attention + "value/kernel"] == (-2, -1)
    assert blocks[attention + "out/kernel"] == blocks["params/_Block_0/Dense_0/kernel"] == (-1,)
    assert blocks["params/Embed_0/embedding"] == (0,)
    assert blocks[attention + "query/bias"] == blocks["params/LayerNorm_0/bias"] == "element"
    assert blocks["params/LayerNorm_0/scale"] == blocks["params/positions"] == "tensor"
    # nnx.Optimizer's paths end in the Variable's ``value``: the same blocks.
    nnx_like = {"attn": {name: {"kernel": {"value": jnp.ones((8, 2, 4))}} for name in ("key", "value")}}
    assert optaxtra.adam_mini_blocks(nnx_like) == {"attn/key/kernel/value": (-2,), "attn/value/kernel/value": (-2, -1)}


def test_second_moments_of_a_gpt2_small_tree_are_under_one_percent_of_adams():
    """Adam-mini's ``nu`` over Adam's on GPT-2 small's shapes (124M params; nothing is allocated)."""
    from optaxtra.compare.tasks._transformer import CharTransformer

    model = CharTransformer(vocab_size=50257, context=1024, width=768, depth=12, heads=12)
    params = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 8), jnp.int32))
    nbytes = lambda tree: sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(tree))
    mini = jax.eval_shape(optaxtra.scale_by_adam_mini().init, params)
    adam = jax.eval_shape(optaxtra.scale_by_adam().init, params)
    assert nbytes(mini.mu) == nbytes(adam.mu)
    assert nbytes(mini.nu) < 0.01 * nbytes(adam.nu)


@pytest.mark.parametrize(
    "make, error, words",
    [
        (lambda: optaxtra.adam_mini(rules="kernel"), TypeError, ("rules", "sequence")),
        (lambda: optaxtra.adam_mini(rules=(("kernel", (0,), 1),)), TypeError, ("rules[0]", "pair")),
        (lambda: optaxtra.adam_mini(rules=(("(", (0,)),)), ValueError, ("rules[0]", "'('", "regular expression")),
        (lambda: optaxtra.adam_mini(rules=(("w", "row"),)), ValueError, ("rules[0] blocks", "'row'", "'element'")),
        (lambda: optaxtra.adam_mini(rules=(("w", (0, 0)),)), TypeError, ("rules[0] blocks", "distinct")),
        (lambda: optaxtra.adam_mini(rules=(("w", optaxtra.AdamMiniHeads(0)),)), ValueError, ("num_heads", ">= 1")),
        (lambda: optaxtra.adam_mini(b2=1.0), ValueError, ("b2", "1.0", "[0, 1)")),
        (lambda: optaxtra.adam_mini(eps=-1.0), ValueError, ("eps", "-1.0")),
        (lambda: optaxtra.adam_mini(rules=(("w", (2,)),)).init({"w": jnp.ones((3, 2))}), ValueError,
         ("'w'", "axis 2", "(3, 2)")),
        (lambda: optaxtra.adam_mini(rules=(("w", optaxtra.AdamMiniHeads(4, axis=0)),)).init({"w": jnp.ones((6, 2))}),
         ValueError, ("'w'", "4 heads", "6")),
    ],
)
def test_bad_input_names_the_argument_the_value_and_the_range(make, error, words):
    assert_refused(make, error, words)


def test_a_state_from_other_rules_is_refused_by_path():
    params = {"Dense_0": {"kernel": jnp.ones((3, 2))}}
    state = optaxtra.scale_by_adam_mini(rules=()).init(params)
    with pytest.raises(ValueError, match="'Dense_0/kernel'.*\\(1, 2\\)"):
        optaxtra.scale_by_adam_mini().update(params, state)
