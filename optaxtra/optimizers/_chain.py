"""Helpers the aliases share for assembling chains."""

from __future__ import annotations

from typing import Any, Callable

import optax

from .._hyperparams import is_exactly_zero


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
