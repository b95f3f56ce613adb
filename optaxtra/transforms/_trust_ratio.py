"""``trust_ratio``: per-layer rescaling by ``||w|| / ||u||`` (LARS, LAMB)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .._hyperparams import compute_dtype
from .._validation import check_real
from ._masking import Mask, resolve_mask
from ._second_moment import abs_squared

__all__ = ["TrustRatioState", "trust_ratio"]


class TrustRatioState(NamedTuple):
    """State of ``trust_ratio``.

    Attributes:
      ratios: the trust ratio each adapted layer (leaf) got on the last
        update, a pytree like the params of float32 scalars (1 before the
        first update) with None for layers the mask excludes. Read by
        ``optaxtra.diagnostics``.
    """

    ratios: Any


def _squared_norm(x: jax.Array, axis_name: str | None) -> jax.Array:
    value = jnp.sum(abs_squared(x.astype(compute_dtype(x.dtype)))).astype(jnp.float32)
    return jax.lax.psum(value, axis_name) if axis_name is not None else value


def trust_ratio(
    trust_coefficient: float = 1.0,
    eps: float = 0.0,
    *,
    separate_weight_decay: float | None = None,
    max_weight_norm: float | None = None,
    max_ratio: float | None = None,
    mask: Mask | None = None,
    weight_decay_mask: Mask | None = None,
    axis_name: str | None = None,
) -> optax.GradientTransformation:
    r"""Scales each layer's update by its trust ratio.

    Default (LAMB paper, optax ``lamb``/``lars``), for each leaf ``p`` with
    incoming update ``u`` (which already holds any decay added before):

    .. math::
      \text{ratio} = \eta\, \|p\| / (\|u\| + \epsilon), \qquad u \leftarrow \text{ratio}\cdot u

    With ``separate_weight_decay = wd`` (the LARS paper, torch-optimizer's
    ``LARS``), the piece adds the decay itself, since the denominator needs the
    two norms apart: ``ratio = eta ||p|| / (||u|| + wd ||p|| + eps)`` and
    ``u <- ratio * (u + wd p)``.

    The ratio is 1 where ``||p||`` or the denominator's norm is zero (the
    LAMB paper leaves it undefined; optax and torch-optimizer use 1).

    Args:
      trust_coefficient: ``eta`` > 0 (LARS's trust coefficient; 1 for LAMB).
      eps: added to the denominator, >= 0.
      separate_weight_decay: None, or the LARS paper's decay ``wd`` >= 0.
      max_weight_norm: clamp ``||p||`` at this value (torch-optimizer's
        ``Lamb`` clamps at 10); None for no clamp.
      max_ratio: cap the ratio at this value (fastai's LAMB caps at 10).
      mask: which layers are adapted (TF-Addons' ``exclude_from_layer_adaptation``,
        inverted); the others pass through unscaled.
      weight_decay_mask: which layers ``separate_weight_decay`` applies to.
      axis_name: for params sharded under ``shard_map``/``pmap`` where each
        device holds a slice of a layer: the norms are summed over this axis.
        Not needed under ``jax.jit`` with sharded arrays (norms are global).

    Returns:
      An ``optax.GradientTransformation`` with state ``TrustRatioState``; its
      ``update`` needs ``params``.

    Example:
      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.trust_ratio()
      >>> params = {"w": jnp.array([3.0, 4.0])}          # ||w|| = 5
      >>> updates = {"w": jnp.array([0.0, 0.5])}          # ||u|| = 0.5
      >>> scaled, state = tx.update(updates, tx.init(params), params)
      >>> scaled["w"], state.ratios["w"]
      (Array([0., 5.], dtype=float32), Array(10., dtype=float32))

    References:
      You, Gitman & Ginsburg, "Large Batch Training of Convolutional Networks"
      (LARS), 2017. https://arxiv.org/abs/1708.03888

      You et al., "Large Batch Optimization for Deep Learning: Training BERT in
      76 minutes" (LAMB), ICLR 2020. https://arxiv.org/abs/1904.00962
    """
    check_real("trust_coefficient", trust_coefficient, 0.0, low_open=True, allow_schedule=False)
    check_real("eps", eps, 0.0, allow_schedule=False)
    if separate_weight_decay is not None:
        check_real("separate_weight_decay", separate_weight_decay, 0.0, allow_schedule=False)
    if max_weight_norm is not None:
        check_real("max_weight_norm", max_weight_norm, 0.0, low_open=True, allow_schedule=False)
    if max_ratio is not None:
        check_real("max_ratio", max_ratio, 0.0, low_open=True, allow_schedule=False)

    def init_fn(params):
        adapted = resolve_mask(mask, params)
        resolve_mask(weight_decay_mask, params, "weight_decay_mask")
        ones = lambda _, adapt: jnp.ones([], jnp.float32) if adapt else None
        return TrustRatioState(jax.tree.map(ones, params, adapted))

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("trust_ratio needs the params: call update(updates, state, params).")
        adapted = resolve_mask(mask, params)
        decayed = resolve_mask(weight_decay_mask, params, "weight_decay_mask")

        def leaf(u, p, adapt, decay):
            wd = separate_weight_decay if (separate_weight_decay is not None and decay) else 0.0
            dtype = compute_dtype(u.dtype)
            direction = u.astype(dtype) + wd * p.astype(dtype) if wd else u.astype(dtype)
            if not adapt:
                return direction.astype(u.dtype), None
            weight_norm = jnp.sqrt(_squared_norm(p, axis_name))
            if max_weight_norm is not None:
                weight_norm = jnp.minimum(weight_norm, max_weight_norm)
            if separate_weight_decay is None:
                denominator = jnp.sqrt(_squared_norm(u, axis_name))
            else:
                denominator = jnp.sqrt(_squared_norm(u, axis_name)) + wd * weight_norm
            ratio = trust_coefficient * weight_norm / (denominator + eps)
            ratio = jnp.where((weight_norm > 0) & (denominator > 0), ratio, 1.0)
            if max_ratio is not None:
                ratio = jnp.minimum(ratio, max_ratio)
            return (ratio.astype(dtype) * direction).astype(u.dtype), ratio

        results = jax.tree.map(leaf, updates, params, adapted, decayed)
        treedef = jax.tree.structure(updates)
        pairs = treedef.flatten_up_to(results)
        new_updates = treedef.unflatten([pair[0] for pair in pairs])
        ratios = treedef.unflatten([pair[1] for pair in pairs])
        return new_updates, TrustRatioState(ratios)

    return optax.GradientTransformation(init_fn, update_fn)
