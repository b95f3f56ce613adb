"""Muon for the matrices, AdamW for every other param."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._hyperparams import ScalarOrSchedule
from .._leaves import is_trainable
from ..transforms._learning_rate import scale_by_learning_rate
from ..transforms._masking import Mask
from ..transforms._muon import NS_COEFFICIENTS, AdjustLr, Layout, scale_by_muon
from ..transforms._weight_decay import add_decayed_weights
from ._adam import adamw

__all__ = ["muon"]


def _labels(muon_params: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    """``params -> tree of "muon" | "adamw"``: the matrices (or ``muon_params``'s choice) get Muon."""

    def labels(params: Any) -> Any:
        chosen = muon_params(params) if muon_params is not None else jax.tree.map(
            lambda p: is_trainable(p) and np.ndim(p) == 2, params
        )
        return jax.tree.map(lambda use: "muon" if use else "adamw", chosen)

    return labels


def muon(
    learning_rate: ScalarOrSchedule = 1e-3,
    momentum: float = 0.95,
    weight_decay: ScalarOrSchedule = 0.1,
    mask: Mask | None = None,
    *,
    nesterov: bool = True,
    ns_coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
    ns_steps: int = 5,
    eps: float = 1e-7,
    ns_dtype: Any = "bfloat16",
    adjust_lr: AdjustLr = "original",
    layout: Layout = "in_out",
    muon_params: Callable[[Any], Any] | None = None,
    adam_learning_rate: ScalarOrSchedule | None = None,
    adam_b1: ScalarOrSchedule = 0.9,
    adam_b2: ScalarOrSchedule = 0.999,
    adam_eps: ScalarOrSchedule = 1e-8,
    adam_weight_decay: ScalarOrSchedule = 1e-2,
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""Muon on the matrices, AdamW on the rest (``torch.optim.Muon`` beside ``torch.optim.AdamW``).

    .. math::
      W \leftarrow W - \eta_t \big(s\, \mathrm{NS}_5(\tilde B_t) + \lambda W\big)

    for each matrix ``W`` (``scale_by_muon``: momentum ``B`` without bias
    correction, Nesterov's ``(1 - mu) g + mu B``, Jordan's Newton–Schulz
    iteration in bfloat16, ``s = sqrt(max(1, fan_out / fan_in))``), with the
    decay multiplied by the learning rate but not by ``s``, as torch's. Every
    other param (vectors, scalars, and matrices ``muon_params`` leaves out,
    e.g. embeddings) is trained by ``adamw``. Defaults are torch's:
    ``learning_rate=1e-3``, ``momentum=0.95``, ``weight_decay=0.1``, AdamW's
    ``weight_decay=1e-2``; AdamW's learning rate is Muon's unless given.

    Args:
      learning_rate: Muon's ``eta``, a number, array or schedule.
      momentum: ``mu`` in [0, 1).
      weight_decay: Muon's decay ``lambda`` >= 0, multiplied by the LR.
      mask: which Muon params decay.
      nesterov: Nesterov's momentum.
      ns_coefficients: the iteration's ``(a, b, c)``.
      ns_steps: the number of iterations.
      eps: the least norm divided by before the iteration.
      ns_dtype: the dtype the iteration runs in (torch's bfloat16).
      adjust_lr: ``"original"``, ``"match_rms_adamw"`` or ``"none"``.
      layout: ``"in_out"`` (JAX kernels) or ``"out_in"`` (PyTorch weights).
      muon_params: ``params -> tree of bools``, the params Muon trains; None
        for every trainable matrix.
      adam_learning_rate: AdamW's learning rate; None for Muon's.
      adam_b1: AdamW's first-moment decay.
      adam_b2: AdamW's second-moment decay.
      adam_eps: AdamW's eps.
      adam_weight_decay: AdamW's decay, multiplied by its LR.
      mu_dtype: storage dtype of Muon's momentum; ``jnp.int8`` (or
        ``blockwise_int8(...)``) stores it block-wise in 8 bits (AdamW's
        moments keep the params' dtype).

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.muon(0.1, weight_decay=0.0, adam_weight_decay=0.0)
      >>> params = {"w": jnp.eye(2), "b": jnp.zeros(2)}
      >>> grads = {"w": jnp.eye(2), "b": jnp.array([1.0, -1.0])}
      >>> updates, _ = tx.update(grads, tx.init(params), params)
      >>> print(updates["b"])  # AdamW's first step: -lr * sign(g)
      [-0.1  0.1]

    References:
      Jordan et al., "Muon: An optimizer for hidden layers in neural
      networks", 2024. https://kellerjordan.github.io/posts/muon/

      Liu et al., "Muon is Scalable for LLM Training", 2025.
      https://arxiv.org/abs/2502.16982
    """
    matrices = optax.chain(
        scale_by_muon(
            momentum, nesterov=nesterov, ns_coefficients=ns_coefficients, ns_steps=ns_steps, eps=eps,
            ns_dtype=ns_dtype, adjust_lr=adjust_lr, layout=layout, mu_dtype=mu_dtype,
        ),
        add_decayed_weights(weight_decay, mask=mask),
        scale_by_learning_rate(learning_rate),
    )
    rest = adamw(
        learning_rate if adam_learning_rate is None else adam_learning_rate,
        adam_b1, adam_b2, adam_eps, weight_decay=adam_weight_decay,
    )
    return optax.partition({"muon": matrices, "adamw": rest}, _labels(muon_params))
