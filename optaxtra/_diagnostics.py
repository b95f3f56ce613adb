"""``diagnostics``: one call that turns an optimizer state into scalars to log."""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from .transforms._learning_rate import ScaleByLearningRateState
from .transforms._lookahead import LookaheadState
from .transforms._masking import path_string
from .transforms._rectifier import ScaleByRadamRectifierState
from .transforms._trust_ratio import TrustRatioState
from ._validation import check_registration

__all__ = ["diagnostics", "register_diagnostics"]

_REGISTRY: dict[type, Callable[[Any], dict[str, jax.Array]]] = {}


def register_diagnostics(state_type: type, reader: Callable[[Any], dict[str, jax.Array]]) -> None:
    """Teaches ``diagnostics`` to read a state type.

    Args:
      state_type: the NamedTuple state class of a transformation.
      reader: ``state -> {name: scalar array}``.

    Raises:
      TypeError: if ``state_type`` is not a class or ``reader`` not callable.
    """
    check_registration(state_type, reader, "state -> dict of scalars")
    _REGISTRY[state_type] = reader


def _children(node: Any) -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        return [(str(key), value) for key, value in node.items()]
    if isinstance(node, tuple) and hasattr(node, "_fields"):
        return list(zip(node._fields, node))
    if isinstance(node, (tuple, list)):
        return [(str(index), value) for index, value in enumerate(node)]
    return []


def _collect(node: Any, path: str, out: list[tuple[str, str, jax.Array]]) -> None:
    reader = _REGISTRY.get(type(node))
    if reader is not None:
        out.extend((path, name, value) for name, value in reader(node).items())
    for key, child in _children(node):
        _collect(child, f"{path}/{key}" if path else key, out)


def diagnostics(opt_state: Any) -> dict[str, jax.Array]:
    """A flat dict of scalars describing the optimizer's last update.

    Works on any optimizer state (optaxtra's, or optax chains containing
    optaxtra pieces) and under ``jit``. Keys:

    * ``rectifier/rho_t``, ``rectifier/r_t``, ``rectifier/adaptive`` (1.0 when
      RAdam's adaptive step was on);
    * ``trust_ratio/<layer path>`` and ``trust_ratio/min|mean|max``;
    * ``lookahead/synced`` (1.0 on a sync step), ``lookahead/step``;
    * ``learning_rate``: the rate ``scale_by_learning_rate`` last applied;
    * ``hyperparams/<name>`` for ``optax.inject_hyperparams`` states;
    * whatever else was added with ``register_diagnostics``.

    A name produced by two parts of the state is prefixed with the part's
    path in the state tree.

    Args:
      opt_state: the optimizer state after an update.

    Returns:
      ``{name: float32 scalar array}``.

    Example:
      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.radam(1e-3)
      >>> params = jnp.zeros(3)
      >>> state = tx.init(params)
      >>> for _ in range(6):
      ...     _, state = tx.update(jnp.ones(3), state, params)
      >>> stats = optaxtra.diagnostics(state)
      >>> print(f"{float(stats['rectifier/rho_t']):.3f} {float(stats['rectifier/adaptive'])}")
      5.994 1.0
    """
    found: list[tuple[str, str, jax.Array]] = []
    _collect(opt_state, "", found)
    counts = Counter(name for _, name, _ in found)
    return {
        (f"{path}/{name}" if counts[name] > 1 and path else name): jnp.asarray(value, jnp.float32)
        for path, name, value in found
    }


def _trust_ratios(state: TrustRatioState) -> dict[str, jax.Array]:
    pairs = jax.tree_util.tree_leaves_with_path(state.ratios)
    stats = {f"trust_ratio/{path_string(path)}": ratio for path, ratio in pairs}
    if pairs:
        stacked = jnp.stack([ratio for _, ratio in pairs])
        stats.update(
            {
                "trust_ratio/min": stacked.min(),
                "trust_ratio/mean": stacked.mean(),
                "trust_ratio/max": stacked.max(),
            }
        )
    return stats


def _hyperparams(state: optax.InjectHyperparamsState) -> dict[str, jax.Array]:
    return {
        f"hyperparams/{name}": value
        for name, value in state.hyperparams.items()
        if jnp.ndim(value) == 0
    }


register_diagnostics(
    ScaleByRadamRectifierState,
    lambda s: {
        "rectifier/rho_t": s.rho,
        "rectifier/r_t": s.rectification,
        "rectifier/adaptive": s.rectification > 0,
    },
)
register_diagnostics(TrustRatioState, _trust_ratios)
register_diagnostics(LookaheadState, lambda s: {"lookahead/synced": s.synced, "lookahead/step": s.count})
register_diagnostics(ScaleByLearningRateState, lambda s: {"learning_rate": s.learning_rate})
register_diagnostics(optax.InjectHyperparamsState, _hyperparams)
# optax 0.2.8's inject_hyperparams builds this one (not a subclass of the above).
register_diagnostics(optax.InjectStatefulHyperparamsState, _hyperparams)
