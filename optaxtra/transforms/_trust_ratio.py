"""``trust_ratio``: per-layer rescaling by ``||w|| / ||u||`` (LARS, LAMB)."""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .._diagnostics import register_diagnostics, spread
from .._hyperparams import compute_dtype, is_exactly_zero
from .._xla import overwrite
from .._leaves import frozen_update, is_trainable
from .._trees import path_string
from .._tree_checks import check_state_type, check_tree_matches
from .._validation import check_bool, check_real
from ._masking import Mask, check_mask, resolve_mask
from ._second_moment import abs_squared

__all__ = ["TrustRatioState", "trust_ratio"]


class TrustRatioState(NamedTuple):
    """State of ``trust_ratio``.

    Attributes:
      ratios: the trust ratio each adapted layer (leaf) got on the last
        update, a pytree like the params of float32 scalars (1 before the
        first update; the norms are summed in float32 for every dtype) with
        None for layers the mask excludes. Read by ``optaxtra.diagnostics``.
    """

    ratios: Any


def _summed_axes(param: jax.Array, axis_name: str | tuple[str, ...] | None) -> tuple[str, ...]:
    """The mapped axes a layer is split over, whose partial norms must be summed.

    ``shard_map`` (with its default ``check_vma=True``) records in each value's
    type the axes it varies over: a layer replicated over an axis already holds
    its whole norm and is not summed (that would count it once per device).
    Where this is not tracked (``pmap``, ``check_vma=False``; detected because
    ``axis_index`` itself is then untracked), every layer is taken to be split.
    """
    if axis_name is None:
        return ()
    varying = lambda x: getattr(getattr(jax.typeof(x), "mat", None), "varying", frozenset())
    axes = axis_name if isinstance(axis_name, tuple) else (axis_name,)
    return tuple(
        axis for axis in axes
        if axis in varying(param) or axis not in varying(jax.lax.axis_index(axis))
    )


def _check_axis_name(axis_name: Any) -> None:
    names = axis_name if isinstance(axis_name, tuple) else (axis_name,)
    if axis_name is not None and not (names and all(isinstance(name, str) for name in names)):
        raise TypeError(
            f"axis_name must be None, a mesh axis name (str) or a tuple of them, got {axis_name!r}."
        )


def _squared_norm(x: jax.Array, axes: tuple[str, ...]) -> jax.Array:
    value = jnp.sum(abs_squared(x.astype(compute_dtype(x.dtype)))).astype(jnp.float32)
    return jax.lax.psum(value, axes) if axes else value


def trust_ratio(
    trust_coefficient: float = 1.0,
    eps: float = 0.0,
    *,
    weight_decay: float | jax.Array = 0.0,
    separate_norms: bool = False,
    max_weight_norm: float | None = None,
    max_ratio: float | None = None,
    mask: Mask | None = None,
    weight_decay_mask: Mask | None = None,
    axis_name: str | tuple[str, ...] | None = None,
) -> optax.GradientTransformation:
    r"""Scales each layer's update by its trust ratio.

    Default (LAMB paper, optax ``lamb``/``lars``), for each leaf ``p`` with
    incoming update ``u`` (which already holds any decay added before):

    .. math::
      \text{ratio} = \eta\, \|p\| / (\|u\| + \epsilon), \qquad u \leftarrow \text{ratio}\cdot u

    With ``weight_decay = wd`` the piece adds the decay itself: ``u + wd p``
    takes the place of ``u`` above, exactly as ``add_decayed_weights(wd)``
    placed before the piece would (the same arithmetic). Inside the piece the sum
    is never stored: the norm and the step each compute it from ``u`` and
    ``p``, so when ``u`` is a plain input (LARS's gradient) XLA keeps no
    parameter-sized temporary (measured in ``benchmarks/README.md``).
    With ``separate_norms=True`` (the LARS paper, torch-optimizer's
    ``LARS``) the denominator takes the two norms apart:
    ``ratio = eta ||p|| / (||u|| + wd ||p|| + eps)``.

    The ratio is 1 where ``||p||`` or the denominator's norm is zero (the
    LAMB paper leaves it undefined; optax and torch-optimizer use 1).

    Args:
      trust_coefficient: ``eta`` > 0 (LARS's trust coefficient; 1 for LAMB).
      eps: added to the denominator, >= 0.
      weight_decay: ``wd`` >= 0, a number or an array (not a schedule: the
        piece keeps no step count), added to the update (``u + wd p``) in the
        layers ``weight_decay_mask`` selects, adapted or not.
      separate_norms: the LARS paper's denominator ``||u|| + wd ||p||``
        instead of ``||u + wd p||``.
      max_weight_norm: clamp ``||p||`` at this value (torch-optimizer's
        ``Lamb`` clamps at 10); None for no clamp.
      max_ratio: cap the ratio at this value (fastai's LAMB caps at 10).
      mask: which layers are adapted (TF-Addons' ``exclude_from_layer_adaptation``,
        inverted); the others pass through unscaled.
      weight_decay_mask: which layers ``weight_decay`` applies to.
      axis_name: for params sharded under ``shard_map``/``pmap`` where each
        device holds a slice of a layer: the norms are summed over this mesh
        axis (or tuple of axes). Under ``shard_map`` layers replicated over the
        axis are recognised and not summed; under ``pmap`` every adapted layer
        must be split. Not needed under ``jax.jit`` with sharded arrays, where
        norms are global.

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
    check_real("weight_decay", weight_decay, 0.0, allow_schedule=False)
    check_bool("separate_norms", separate_norms)
    if max_weight_norm is not None:
        check_real("max_weight_norm", max_weight_norm, 0.0, low_open=True, allow_schedule=False)
    if max_ratio is not None:
        check_real("max_ratio", max_ratio, 0.0, low_open=True, allow_schedule=False)
    check_mask("mask", mask)
    check_mask("weight_decay_mask", weight_decay_mask)
    _check_axis_name(axis_name)

    def init_fn(params):
        adapted = resolve_mask(mask, params)
        resolve_mask(weight_decay_mask, params, "weight_decay_mask")
        ones = lambda p, adapt: jnp.ones([], jnp.float32) if adapt and is_trainable(p) else None
        return TrustRatioState(jax.tree.map(ones, params, adapted))

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("trust_ratio needs the params: call update(updates, state, params).")
        check_state_type(state, TrustRatioState, "trust_ratio")
        check_tree_matches(updates, params, piece="trust_ratio")
        adapted = resolve_mask(mask, params)
        decayed = resolve_mask(weight_decay_mask, params, "weight_decay_mask")

        def leaf(u, p, adapt, decay, previous):
            if not is_trainable(p):
                return frozen_update(u, p), None
            dtype = compute_dtype(u.dtype)
            u32, p32 = u.astype(dtype), jnp.asarray(p).astype(dtype)
            decays = decay and not is_exactly_zero(weight_decay)
            wd = weight_decay if isinstance(weight_decay, numbers.Real) else jnp.asarray(weight_decay, dtype)
            direction = u32 + wd * p32 if decays else u32
            if not adapt:
                return direction.astype(u.dtype), None
            axes = _summed_axes(p, axis_name)
            weight_norm = jnp.sqrt(_squared_norm(p32, axes))
            if max_weight_norm is not None:
                weight_norm = jnp.minimum(weight_norm, max_weight_norm)
            if not decays:
                denominator = jnp.sqrt(_squared_norm(u32, axes))
            elif separate_norms:
                denominator = jnp.sqrt(_squared_norm(u32, axes)) + jnp.asarray(wd, jnp.float32) * weight_norm
            else:
                # u - (-wd) p is u + wd p to the last bit, but a different expression:
                # XLA then fuses the sum into the norm and into the step apart,
                # instead of storing it once for both.
                denominator = jnp.sqrt(_squared_norm(u32 - (-wd) * p32, axes))
            ratio = trust_coefficient * weight_norm / (denominator + eps)
            ratio = jnp.where((weight_norm > 0) & (denominator > 0), ratio, 1.0)
            if max_ratio is not None:
                ratio = jnp.minimum(ratio, max_ratio)
            # The step scales by the recorded ratio itself: XLA then computes it once for both.
            ratio = overwrite(previous, ratio)
            return (ratio.astype(dtype) * direction).astype(u.dtype), ratio

        treedef = jax.tree.structure(updates)
        trees = (updates, params, adapted, decayed, state.ratios)
        pairs = [leaf(*args) for args in zip(*(treedef.flatten_up_to(t) for t in trees))]
        new_updates = treedef.unflatten([pair[0] for pair in pairs])
        ratios = treedef.unflatten([pair[1] for pair in pairs])
        return new_updates, TrustRatioState(ratios)

    return optax.GradientTransformation(init_fn, update_fn)


def _trust_ratio_diagnostics(state: TrustRatioState) -> dict[str, jax.Array]:
    pairs = jax.tree_util.tree_leaves_with_path(state.ratios)
    stats = {f"trust_ratio/{path_string(path)}": ratio for path, ratio in pairs}
    return stats | spread("trust_ratio/", [ratio for _, ratio in pairs])


register_diagnostics(TrustRatioState, _trust_ratio_diagnostics)
