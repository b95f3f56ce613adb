"""``charlm``: a character-level language model of the documentation that ships with CPython."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from optaxtra._validation import check_int

from ._interface import Task, frequency_baseline
from ._transformer import CharTransformer

__all__ = ["charlm_task", "pydoc_text"]


def pydoc_text() -> str:
    """The text of ``pydoc_data.topics`` (about 465 KB of English), topics in sorted order.

    ``pydoc_data`` is part of the standard library of every CPython (it backs
    ``help("if")``), so the task works offline. Its exact content changes a
    little between Python versions.
    """
    from pydoc_data.topics import topics

    return "\n\n".join(topics[name] for name in sorted(topics))


def _windows(tokens: np.ndarray, length: int, count: int) -> np.ndarray:
    """``count`` evenly spaced, non-overlapping windows of ``length`` tokens."""
    starts = np.linspace(0, tokens.size - length, num=count).astype(np.int64)
    return np.stack([tokens[start : start + length] for start in starts])


def charlm_task(
    *,
    context: int = 32,
    width: int = 96,
    depth: int = 3,
    heads: int = 4,
    validation_fraction: float = 0.1,
    evaluation_windows: int = 64,
) -> Task:
    """The ``charlm`` task: next-character prediction on CPython's ``pydoc_data``.

    The text is split once: the last ``validation_fraction`` of the characters
    (contiguous, so no sentence is in both) is validation. Training batches are
    random windows of ``context + 1`` characters; the loss is the mean
    cross-entropy in nats per character (``ln(vocab)`` ~ 4.6 at chance). The
    model is a pre-LayerNorm Transformer (``depth`` blocks of ``width`` with
    ``heads`` heads, 0.35M parameters by default); Transformers are where
    Adam without warm-up is known to struggle.

    Args:
      context: characters the model sees.
      width: model width.
      depth: number of Transformer blocks.
      heads: attention heads.
      validation_fraction: fraction of the text held out, in (0, 1).
      evaluation_windows: windows in the validation and train evaluation batches.

    Returns:
      A ``Task``.

    Example:
      Validation is ``evaluation_windows`` windows of ``context + 1`` tokens:

      >>> from optaxtra.compare import charlm_task
      >>> task = charlm_task()
      >>> print(task.name, task.validation.shape)
      charlm (64, 33)

    References:
      Karpathy, "The Unreasonable Effectiveness of Recurrent Neural Networks"
      (char-rnn), 2015. https://karpathy.github.io/2015/05/21/rnn-effectiveness/;
      Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond",
      ICLR 2020 (warm-up in Transformers). https://arxiv.org/abs/1908.03265
    """
    for name, value in (("context", context), ("width", width), ("depth", depth), ("heads", heads),
                        ("evaluation_windows", evaluation_windows)):
        check_int(name, value, 1)
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction!r}.")
    if width % heads:
        raise ValueError(f"heads ({heads}) must divide width ({width}).")
    text = pydoc_text()
    vocabulary = sorted(set(text))
    code = {character: index for index, character in enumerate(vocabulary)}
    tokens = np.fromiter((code[character] for character in text), dtype=np.int32, count=len(text))
    cut = int(tokens.size * (1.0 - validation_fraction))
    train_tokens = jnp.asarray(tokens[:cut])
    validation = jnp.asarray(_windows(tokens[cut:], context + 1, evaluation_windows))
    train_eval = jnp.asarray(_windows(tokens[:cut], context + 1, evaluation_windows))
    model = CharTransformer(len(vocabulary), context, width, depth, heads)

    def init_params(key: jax.Array):
        return model.init(key, jnp.zeros((1, context), jnp.int32))

    def loss(params, windows: jax.Array) -> jax.Array:
        logits = model.apply(params, windows[:, :-1])
        return optax.softmax_cross_entropy_with_integer_labels(logits, windows[:, 1:]).mean()

    def accuracy(params, windows: jax.Array) -> jax.Array:
        predicted = jnp.argmax(model.apply(params, windows[:, :-1]), axis=-1)
        return jnp.mean((predicted == windows[:, 1:]).astype(jnp.float32))

    def sample_batch(key: jax.Array, batch_size: int) -> jax.Array:
        starts = jax.random.randint(key, (batch_size,), 0, train_tokens.shape[0] - context - 1)
        return jax.vmap(lambda start: jax.lax.dynamic_slice(train_tokens, (start,), (context + 1,)))(starts)

    return Task(
        name="charlm",
        init_params=init_params,
        loss=loss,
        sample_batch=sample_batch,
        validation=validation,
        train_eval=train_eval,
        accuracy=accuracy,
        target_loss=2.5,
        validation_target=0.37,  # AdamW's median best within 150 steps, at lr 0.001 (0.377), rounded down.
        steps=200,
        batch_size=8,
        learning_rates=(3e-4, 1e-3, 3e-3, 1e-2, 3e-2),
        **frequency_baseline(tokens[:cut], np.asarray(validation)[:, 1:], len(vocabulary)),
        description=(
            f"character LM on pydoc_data ({len(text) // 1000} K chars, {len(vocabulary)} symbols), "
            f"Transformer {depth}x{width}, context {context}"
        ),
    )
