"""Parameter trees the benchmarks run on: shapes only, filled with random numbers.

* ``gpt2``: GPT-2's layout (token and position embeddings, then per block two
  layer norms, the fused QKV and output projections and the MLP, each with a
  bias): 2 + 12 x 12 = 146 leaves. ``width`` scales it: 224 gives 8M params,
  448 gives 31M; GPT-2 small itself is width 768 with a 50,257 vocabulary.
* ``many_small`` / ``few_large``: the same number of params in 2,000 small
  leaves (1,000 kernels and 1,000 biases) or in 200 larger ones.
* ``resnet``: ResNet-18's layout (convolutions without bias, each followed by
  a batch norm's scale and bias; a final dense layer): 62 leaves, 11.7M params
  at ``width=64``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["TREES", "build", "gpt2", "many_small", "few_large", "resnet"]

Shapes = dict[str, Any]


def gpt2(width: int = 224, layers: int = 12, vocab: int = 2048, context: int = 1024) -> Shapes:
    """GPT-2-shaped shapes: 146 leaves for 12 layers."""
    tree: Shapes = {"wte": (vocab, width), "wpe": (context, width)}
    for i in range(layers):
        tree[f"h{i:02d}"] = {
            "ln_1": {"scale": (width,), "bias": (width,)},
            "attn": {
                "c_attn": {"kernel": (width, 3 * width), "bias": (3 * width,)},
                "c_proj": {"kernel": (width, width), "bias": (width,)},
            },
            "ln_2": {"scale": (width,), "bias": (width,)},
            "mlp": {
                "c_fc": {"kernel": (width, 4 * width), "bias": (4 * width,)},
                "c_proj": {"kernel": (4 * width, width), "bias": (width,)},
            },
        }
    return tree


def many_small(leaves: int = 2000, fan_in: int = 24, fan_out: int = 40) -> Shapes:
    """``leaves / 2`` dense layers of ``fan_in x fan_out`` plus bias: 1M params by default."""
    return {
        f"layer{i:04d}": {"kernel": (fan_in, fan_out), "bias": (fan_out,)}
        for i in range(leaves // 2)
    }


def few_large(leaves: int = 200, fan_in: int = 24, fan_out: int = 40, small_leaves: int = 2000) -> Shapes:
    """The params of ``many_small(small_leaves, fan_in, fan_out)`` in ``leaves`` leaves."""
    factor = small_leaves // leaves
    return {
        f"layer{i:04d}": {"kernel": (fan_in * factor, fan_out), "bias": (fan_out * factor,)}
        for i in range(leaves // 2)
    }


def resnet(width: int = 64, blocks: tuple[int, ...] = (2, 2, 2, 2), classes: int = 1000) -> Shapes:
    """ResNet-18-shaped shapes (basic blocks): 62 leaves, 11.7M params at width 64."""
    def conv_bn(k, cin, cout):
        return {"kernel": (k, k, cin, cout), "bn": {"scale": (cout,), "bias": (cout,)}}

    tree: Shapes = {"stem": conv_bn(7, 3, width)}
    cin = width
    for stage, count in enumerate(blocks):
        cout = width * 2**stage
        for b in range(count):
            block = {"conv1": conv_bn(3, cin, cout), "conv2": conv_bn(3, cout, cout)}
            if cin != cout:
                block["down"] = conv_bn(1, cin, cout)
            tree[f"stage{stage}_block{b}"] = block
            cin = cout
    tree["head"] = {"kernel": (cin, classes), "bias": (classes,)}
    return tree


def build(shapes: Shapes, seed: int = 0, dtype: Any = np.float32) -> Any:
    """Random float arrays (as numpy) with the given shapes, params-like in scale."""
    rng = np.random.default_rng(seed)

    def fill(node):
        if isinstance(node, dict):
            return {key: fill(value) for key, value in node.items()}
        return (0.02 * rng.standard_normal(node)).astype(dtype)

    return fill(shapes)


def count(shapes: Shapes) -> tuple[int, int]:
    """``(leaves, params)`` of a shapes tree."""
    if isinstance(shapes, dict):
        pairs = [count(value) for value in shapes.values()]
        return sum(p[0] for p in pairs), sum(p[1] for p in pairs)
    return 1, int(np.prod(shapes))


TREES = {
    "gpt2_8m": lambda: gpt2(224),
    "gpt2_31m": lambda: gpt2(448),
    "many_small": lambda: many_small(),
    "few_large": lambda: few_large(),
    "resnet18": lambda: resnet(64),
}
