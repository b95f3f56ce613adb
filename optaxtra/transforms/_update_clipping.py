"""``clip_by_update_rms``: StableAdamW's update clipping, as a wrapper around a chain."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .._diagnostics import register_diagnostics, spread
from .._leaves import is_trainable
from .._tree_checks import check_state_type
from .._trees import find_states
from ._stable_adam import ScaleByStableAdamState

__all__ = ["ClipByUpdateRmsState", "clip_by_update_rms"]


class ClipByUpdateRmsState(NamedTuple):
    """State of ``clip_by_update_rms``.

    Attributes:
      inner_state: the wrapped chain's state; its ``scale_by_stable_adam``
        records each tensor's ``RMS_t``, from which ``optaxtra.diagnostics``
        reports the factors ``1 / max(1, RMS_t)`` (min, mean, max over the
        trainable tensors).
    """

    inner_state: Any


def _stable_adam_state(inner_state: Any) -> ScaleByStableAdamState:
    found = find_states(inner_state, ScaleByStableAdamState)
    if len(found) != 1:
        raise ValueError(
            "clip_by_update_rms wraps a chain with exactly one scale_by_stable_adam, whose RMS it "
            f"reads; found {len(found)}."
        )
    return found[0][1]


def _factor(rms: jax.Array) -> jax.Array:
    return 1.0 / jnp.maximum(1.0, rms)


def clip_by_update_rms(inner: optax.GradientTransformation) -> optax.GradientTransformation:
    r"""Divides each tensor's update from ``inner`` by ``max(1, RMS_t)`` (StableAdamW's update clipping).

    .. math::
      u_t \leftarrow u_t / \max(1, \mathrm{RMS}_t),\qquad
      \mathrm{RMS}_t = \sqrt{\operatorname{mean}(g_t^2 / \max(\hat v_t, \epsilon^2))}

    per tensor, where ``RMS_t`` is what the ``scale_by_stable_adam`` inside
    ``inner`` recorded for this update. Wrapped around the direction and the
    decay, and followed by ``scale_by_learning_rate``, it is Wortsman et al.'s
    per-tensor learning rate ``eta_t / max(1, RMS_t)``, which scales the
    decoupled decay too (as in the paper, torch-optimi and pytorch-optimizer).

    Args:
      inner: a chain containing exactly one ``scale_by_stable_adam``.

    Returns:
      An ``optax.GradientTransformation`` with state ``ClipByUpdateRmsState``.

    Raises:
      ValueError: at ``init``, if ``inner``'s state holds no
        ``scale_by_stable_adam`` state or more than one.

    Example:
      The first update has ``v_hat = g**2``, so ``RMS = 1`` and nothing is
      clipped; a gradient 10 times the first meets ``v_hat = 50.75``
      (``b2 = 0.99``): ``RMS = sqrt(100 / 50.75) = 1.404``.

      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.clip_by_update_rms(optaxtra.scale_by_stable_adam())
      >>> state = tx.init(jnp.zeros(2))
      >>> for g in ([1.0, 1.0], [10.0, 10.0]):
      ...     updates, state = tx.update(jnp.array(g), state)
      ...     print(f"{float(optaxtra.diagnostics(state)['update_clipping/factor_max']):.4f}")
      1.0000
      0.7124

    References:
      Wortsman et al., "Stable and low-precision training for large-scale
      vision-language models", NeurIPS 2023, Algorithm 2.
      https://arxiv.org/abs/2304.13013
    """

    def init_fn(params):
        inner_state = inner.init(params)
        _stable_adam_state(inner_state)
        return ClipByUpdateRmsState(inner_state)

    def update_fn(updates, state, params=None):
        check_state_type(state, ClipByUpdateRmsState, "clip_by_update_rms")
        updates, inner_state = inner.update(updates, state.inner_state, params)
        factors = jax.tree.map(_factor, _stable_adam_state(inner_state).rms)
        clipped = jax.tree.map(
            lambda u, f: (u * f.astype(u.dtype)) if is_trainable(u) else u, updates, factors
        )
        return clipped, ClipByUpdateRmsState(inner_state)

    return optax.GradientTransformation(init_fn, update_fn)


def _clipping_diagnostics(state: ClipByUpdateRmsState) -> dict[str, jax.Array]:
    adam = _stable_adam_state(state.inner_state)
    trainable = [rms for rms, m in zip(jax.tree.leaves(adam.rms), jax.tree.leaves(adam.mu)) if is_trainable(m)]
    return spread("update_clipping/factor_", [_factor(rms) for rms in trainable])


register_diagnostics(ClipByUpdateRmsState, _clipping_diagnostics)
