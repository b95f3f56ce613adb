"""A small decoder-only Transformer in Flax, the model of the ``charlm`` task."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = ["CharTransformer"]


class _Block(nn.Module):
    """Pre-LayerNorm block: causal self-attention, then a GELU MLP, each residual."""

    width: int
    heads: int

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
        h = nn.LayerNorm()(x)
        x = x + nn.MultiHeadDotProductAttention(num_heads=self.heads)(h, mask=mask)
        h = nn.LayerNorm()(x)
        h = nn.Dense(self.width)(nn.gelu(nn.Dense(4 * self.width)(h)))
        return x + h


class CharTransformer(nn.Module):
    """GPT-style character model: token and learned position embeddings, tied read-out.

    Attributes:
      vocab_size: number of distinct characters.
      context: maximum sequence length.
      width: model width ``d_model``.
      depth: number of blocks.
      heads: attention heads per block (must divide ``width``).

    References:
      Vaswani et al., "Attention Is All You Need", NeurIPS 2017.
      https://arxiv.org/abs/1706.03762; Radford et al., "Language Models are
      Unsupervised Multitask Learners", 2019 (pre-LayerNorm placement).
    """

    vocab_size: int
    context: int
    width: int
    depth: int
    heads: int

    @nn.compact
    def __call__(self, tokens: jax.Array) -> jax.Array:
        """Next-character logits, shape ``tokens.shape + (vocab_size,)``."""
        embed = nn.Embed(self.vocab_size, self.width, embedding_init=nn.initializers.normal(0.02))
        positions = self.param("positions", nn.initializers.normal(0.02), (self.context, self.width))
        length = tokens.shape[-1]
        x = embed(tokens) + positions[None, :length]
        mask = nn.make_causal_mask(jnp.ones(tokens.shape, jnp.int32))
        for _ in range(self.depth):
            x = _Block(self.width, self.heads)(x, mask)
        return embed.attend(nn.LayerNorm()(x))
