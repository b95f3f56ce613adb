"""Adam-mini's second moments against Adam's, in bytes, on Transformer trees (shapes only).

    python benchmarks/adam_mini_memory.py

Nothing is allocated: the params and both states are traced with
``jax.eval_shape``. Rows: the ``charlm`` task's Transformer at its default size
and at GPT-2 small's (12 blocks of width 768, 12 heads, 50,257 tokens, tied
read-out), both partitioned by ``ADAM_MINI_FLAX_RULES``; and the benchmarks'
``gpt2`` tree at GPT-2 small's size, whose fused query-key-value kernel
``(width, 3 * width)`` needs rules of its own (one block per head of each of
the three, by ``AdamMiniHeads``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import optaxtra
from optaxtra.compare.tasks._charlm import pydoc_text
from optaxtra.compare.tasks._transformer import CharTransformer

sys.path.insert(0, str(Path(__file__).resolve().parent))
import trees  # noqa: E402

HEADS = 12
GPT2_RULES = (
    (r"bias$", "element"),
    (r"c_attn/kernel$", optaxtra.AdamMiniHeads(3 * HEADS, axis=-1)),
    (r"kernel$", (-1,)),
    (r"wte$", (0,)),
)


def _nbytes(tree) -> int:
    return sum(leaf.size * np.dtype(leaf.dtype).itemsize for leaf in jax.tree.leaves(tree))


def _char_transformer(vocab: int, context: int, width: int, depth: int, heads: int):
    model = CharTransformer(vocab, context, width, depth, heads)
    return jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 8), jnp.int32))


def rows():
    vocab = len(set(pydoc_text()))
    flax_rules = optaxtra.ADAM_MINI_FLAX_RULES
    yield "charlm (default: width 96, 3 blocks, 4 heads)", _char_transformer(vocab, 32, 96, 3, 4), flax_rules
    yield "charlm at GPT-2 small's size", _char_transformer(50257, 1024, 768, 12, HEADS), flax_rules
    gpt2 = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s, jnp.float32), trees.gpt2(768, vocab=50257),
                        is_leaf=lambda node: isinstance(node, tuple))
    yield "benchmarks gpt2 tree at GPT-2 small's size (fused QKV)", gpt2, GPT2_RULES


def main() -> None:
    print("| tree | params | Adam `nu` | Adam-mini `nu` | `nu` fraction | state (`mu` + `nu`) vs Adam's |")
    print("|---|---|---|---|---|---|")
    for name, params, rules in rows():
        adam = jax.eval_shape(optaxtra.scale_by_adam().init, params)
        mini = jax.eval_shape(optaxtra.scale_by_adam_mini(rules=rules).init, params)
        count = sum(leaf.size for leaf in jax.tree.leaves(params))
        adam_nu, mini_nu = _nbytes(adam.nu), _nbytes(mini.nu)
        state = (_nbytes(mini.mu) + mini_nu) / (_nbytes(adam.mu) + adam_nu)
        print(f"| {name} | {count / 1e6:.2f}M | {adam_nu / 2**20:.1f} MiB | {mini_nu / 2**10:.1f} KiB "
              f"| {100 * mini_nu / adam_nu:.3f}% | {100 * state:.1f}% |")


if __name__ == "__main__":
    main()
