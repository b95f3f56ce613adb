"""``diagnostics``: one call that turns an optimizer state into scalars to log."""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from ._trees import find_states, path_string
from ._validation import check_registration

__all__ = ["diagnostics", "register_diagnostics", "spread"]

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


def spread(prefix: str, values: list[jax.Array]) -> dict[str, jax.Array]:
    """``{prefix + "min" | "mean" | "max": ...}`` of per-leaf scalars, for a reader; ``{}`` for none."""
    if not values:
        return {}
    stacked = jnp.stack([jnp.asarray(value, jnp.float32) for value in values])
    return {f"{prefix}min": stacked.min(), f"{prefix}mean": stacked.mean(), f"{prefix}max": stacked.max()}


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
    * ``ema/decay``, ``ema/count`` (``ema_averaging``); ``swa/averaged``,
      ``swa/n_averaged`` (``swa_averaging``);
    * ``switch/switched``, ``switch/switched_at`` (``switch``, ``swats``) and
      ``swats/sgd_learning_rate``, ``swats/projected_learning_rate``;
    * ``nonfinite/skipped``, ``nonfinite/consecutive`` (``skip_nonfinite``);
    * the successors': ``nadam/mu_t``, ``nadam/mu_product``; ``adopt/clip``;
      ``ademamix/alpha``, ``ademamix/b3``; ``simplified_ademamix/b1``;
      ``update_clipping/factor_min|mean|max`` (StableAdamW's per-tensor factor
      ``1 / max(1, RMS)``); ``cautious/kept_min|mean|max`` (the fraction of
      entries each leaf's mask kept); ``schedule_free/c_t``,
      ``schedule_free/learning_rate``; ``muon/update_rms_min|mean|max``;
    * whatever else was added with ``register_diagnostics``.

    Each state type's module registers its reader, so the keys of the
    successors' pieces are listed with them. A name produced by two parts of
    the state is prefixed with the part's path in the state tree. Flax NNX
    states (an ``nnx.Optimizer``'s ``opt_state``) give the same keys as the
    plain state.

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
    found = [
        (path_string(path), name, value)
        for path, state in find_states(opt_state, tuple(_REGISTRY))
        for name, value in _REGISTRY[type(state)](state).items()
    ]
    counts = Counter(name for _, name, _ in found)
    return {
        (f"{path}/{name}" if counts[name] > 1 and path else name): jnp.asarray(value, jnp.float32)
        for path, name, value in found
    }


def _hyperparams(state: optax.InjectHyperparamsState) -> dict[str, jax.Array]:
    return {
        f"hyperparams/{name}": value
        for name, value in state.hyperparams.items()
        if jnp.ndim(value) == 0
    }


register_diagnostics(optax.InjectHyperparamsState, _hyperparams)
# optax 0.2.8's inject_hyperparams builds this one (not a subclass of the above).
register_diagnostics(optax.InjectStatefulHyperparamsState, _hyperparams)
