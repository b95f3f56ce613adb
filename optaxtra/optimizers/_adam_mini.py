"""Adam-mini (Zhang et al. 2024): AdamW with one second moment per block."""

from __future__ import annotations

import re
from typing import Any, Sequence

import jax
import optax

from .._hyperparams import ScalarOrSchedule
from .._trees import path_string
from ..transforms._adam_mini import scale_by_adam_mini
from ..transforms._adam_mini_blocks import ADAM_MINI_FLAX_RULES, Blocks
from ..transforms._learning_rate import scale_by_learning_rate
from ..transforms._masking import Mask
from ..transforms._weight_decay import add_decayed_weights

__all__ = ["adam_mini"]

_NOT_DECAYED = re.compile("norm|ln|bias")


def _authors_decay_mask(params: Any) -> Any:
    """False for params whose lower-cased path contains ``norm``, ``ln`` or ``bias`` (the authors' rule)."""
    return jax.tree_util.tree_map_with_path(
        lambda path, _: not _NOT_DECAYED.search(path_string(path).lower()), params
    )


def adam_mini(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Mask | None = None,
    *,
    rules: Sequence[tuple[str, Blocks]] = ADAM_MINI_FLAX_RULES,
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""Adam-mini: AdamW whose second moment is one number per block of entries.

    .. math::
      m_t = b_1 m_{t-1} + (1 - b_1) g_t,\quad
      v_{B,t} = b_2 v_{B,t-1} + (1 - b_2)\, \mathrm{mean}_{i \in B}\, g_{t,i}^2,\\
      p_i \leftarrow p_i - \eta_t \Bigl(\frac{m_{t,i} / (1 - b_1^t)}
        {\sqrt{v_{B,t} / (1 - b_2^t)} + \epsilon} + \lambda\, p_i\Bigr)
      \quad (i \in B)

    The blocks come from ``rules`` (``scale_by_adam_mini``; by default the
    authors' partition for Flax Transformers: per head for queries and keys,
    per output neuron for the other kernels, per token for embeddings, per
    entry for biases, per param for norms). The decay is decoupled and
    multiplied by the learning rate, as the authors' ``p *= 1 - lr * wd``;
    with ``mask=None`` it skips every param whose lower-cased path contains
    ``norm``, ``ln`` or ``bias``, their rule. Defaults are the authors'
    ``adam_mini`` 1.1.1 code: ``lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
    weight_decay=0`` (its docstring says eps 1e-6; the code's 1e-8 is used).

    Args:
      learning_rate: ``eta``, a number, array or schedule.
      b1: first-moment decay in [0, 1).
      b2: second-moment decay in [0, 1).
      eps: added to ``sqrt(v_hat)``, >= 0.
      weight_decay: ``lambda`` >= 0, multiplied by the learning rate.
      mask: which params decay; None for the authors' rule above.
      rules: the partition, ``(pattern, blocks)`` pairs (``adam_mini_blocks``).
      mu_dtype: storage dtype of the first moment.

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      The first step is ``-lr * g / rms(g)`` per block: one block for the
      LayerNorm scale, whose root mean square is 5.

      >>> import jax.numpy as jnp, optax, optaxtra
      >>> tx = optaxtra.adam_mini(0.1, weight_decay=0.5)
      >>> params = {"LayerNorm_0": {"scale": jnp.ones(2)}}
      >>> grads = {"LayerNorm_0": {"scale": jnp.array([5.0, -5.0])}}
      >>> updates, _ = tx.update(grads, tx.init(params), params)
      >>> print(optax.apply_updates(params, updates)["LayerNorm_0"]["scale"])  # not decayed
      [0.9 1.1]

    References:
      Zhang et al., "Adam-mini: Use Fewer Learning Rates To Gain More",
      ICLR 2025. https://arxiv.org/abs/2406.16793
    """
    return optax.chain(
        scale_by_adam_mini(b1, b2, eps, rules=rules, mu_dtype=mu_dtype),
        add_decayed_weights(weight_decay, mask=_authors_decay_mask if mask is None else mask),
        scale_by_learning_rate(learning_rate),
    )
