"""Helpers the aliases share for assembling chains."""

from __future__ import annotations

from typing import Any, Callable

import optax

from .._hyperparams import is_exactly_zero
from .._validation import check_bool, check_real
from ..transforms._momentum import trace


def unless_zero(value: Any, piece: Callable[[], optax.GradientTransformation]) -> optax.GradientTransformation:
    """``piece()``, or ``optax.identity()`` when ``value`` is the number 0.

    A decay of exactly 0 still reads every parameter on every step; leaving the
    piece out keeps Adam at one pass over its inputs. Arrays and schedules
    always keep the piece, so a sweep that includes 0 compiles one program.
    The piece is built either way, so its construction-time checks (a
    malformed ``mask``, say) still run when it is left out.
    """
    built = piece()
    return optax.identity() if is_exactly_zero(value) else built


def optional_momentum(momentum: Any, nesterov: bool) -> optax.GradientTransformation:
    """``trace(momentum, nesterov)``, left out for the number 0, with the aliases' argument names.

    Raises:
      ValueError: ``momentum`` outside [0, 1), or ``nesterov=True`` with ``momentum=0``.
      TypeError: ``nesterov`` not a bool.
    """
    check_real("momentum", momentum, 0.0, 1.0, high_open=True, allow_schedule=False)
    check_bool("nesterov", nesterov)
    if nesterov and is_exactly_zero(momentum):
        raise ValueError("nesterov=True needs momentum > 0, got momentum=0.")
    return unless_zero(momentum, lambda: trace(momentum, nesterov))
