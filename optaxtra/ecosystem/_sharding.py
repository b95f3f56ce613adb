"""Optimizer state laid out like the params it was created from (optax issue #548).

``tx.init(params)`` run eagerly on sharded params already gives every
param-shaped state leaf (moments, slow weights) the param's sharding. Under
``jax.jit`` with automatic sharding, XLA places zeros that depend on no input
where it likes (replicated, or on one device); ``init_sharded`` pins them to the
params' shardings instead, so the state is never gathered onto one device.
"""

from __future__ import annotations

from typing import Any

import jax
import optax
from jax.sharding import NamedSharding, PartitionSpec, Sharding, SingleDeviceSharding

from .._quantization import QuantizedArray, absmax_sharding, is_quantized

__all__ = ["state_sharding", "init_sharded"]


def _replicated(shardings: list[Sharding | None]) -> Sharding:
    """Replicated over the params' mesh (or on their device) for counts and scalars."""
    for sharding in shardings:
        if isinstance(sharding, NamedSharding):
            return NamedSharding(sharding.mesh, PartitionSpec())
    for sharding in shardings:
        if sharding is not None:
            return SingleDeviceSharding(next(iter(sharding.device_set)))
    return SingleDeviceSharding(jax.devices()[0])


def _one_level(node: Any) -> tuple[list[Any], Any]:
    return jax.tree_util.tree_flatten(node, is_leaf=lambda child: child is not node)


def state_sharding(tx: optax.GradientTransformation, params: Any) -> Any:
    """The sharding each leaf of ``tx.init(params)`` should have.

    A part of the state laid out like the params (a subtree with their tree
    structure, leaves of their shapes: Adam's moments, Lookahead's slow
    weights, AMSGrad's ``(v, v_max)`` pairs) gets the params' shardings; every
    other leaf (step counts, per-layer trust ratios, scalars) is replicated over
    the params' mesh. Nothing is computed: the state is traced abstractly.
    Block-wise 8-bit moments keep their codes laid out like the params and
    their ``absmax`` split like the params' leading axis where every shard
    holds whole blocks (``optaxtra._quantization.absmax_sharding``).

    Args:
      tx: any optimizer.
      params: the params, as arrays or as ``jax.ShapeDtypeStruct`` with a
        ``sharding`` (e.g. the abstract target of an orbax restore).

    Returns:
      A pytree of ``jax.sharding.Sharding`` with the structure of the state,
      usable as ``out_shardings`` or in an orbax restore target.

    Example:
      >>> import jax, jax.numpy as jnp, optaxtra
      >>> params = {"w": jnp.ones((4, 2))}
      >>> shardings = optaxtra.state_sharding(optaxtra.adam(1e-3), params)
      >>> shardings[1].mu["w"] == params["w"].sharding
      True
    """
    abstract = jax.eval_shape(tx.init, params)
    param_leaves, param_def = jax.tree.flatten(params)
    param_shardings = [getattr(leaf, "sharding", None) for leaf in param_leaves]
    replicated = _replicated(param_shardings)

    def like_params(node: Any) -> Any:
        try:
            per_param = param_def.flatten_up_to(node)
        except (ValueError, TypeError):
            return None
        def layout(subtree: Any, param: Any, sharding: Sharding | None) -> Any:
            like = lambda leaf: sharding is not None and leaf.shape == param.shape

            def place(leaf: Any) -> Any:
                if is_quantized(leaf):  # codes like the param; absmax by its rule (optaxtra._quantization)
                    absmax = absmax_sharding(sharding, param.shape, leaf.absmax.shape[0])
                    return QuantizedArray(place(leaf.codes), absmax or replicated, replicated)
                return sharding if like(leaf) else replicated

            return jax.tree.map(place, subtree, is_leaf=is_quantized)

        laid_out = [layout(*entry) for entry in zip(per_param, param_leaves, param_shardings)]
        return param_def.unflatten(laid_out)

    def assign(node: Any) -> Any:
        if isinstance(node, jax.ShapeDtypeStruct):
            return replicated
        if jax.tree.structure(node).num_leaves and (matched := like_params(node)) is not None:
            return matched
        children, treedef = _one_level(node)
        return treedef.unflatten([assign(child) for child in children])

    return assign(abstract)


def init_sharded(tx: optax.GradientTransformation, params: Any) -> Any:
    """``tx.init(params)`` compiled, with the state laid out like the params.

    Args:
      tx: any optimizer.
      params: sharded params.

    Returns:
      The optimizer state; see ``state_sharding`` for where each leaf lives.

    Example:
      >>> import jax.numpy as jnp, optaxtra
      >>> params = {"w": jnp.ones((4, 2))}
      >>> state = optaxtra.init_sharded(optaxtra.ranger(1e-3), params)
      >>> state.slow["w"].sharding == params["w"].sharding
      True
    """
    return jax.jit(tx.init, out_shardings=state_sharding(tx, params))(params)
