"""Helpers the aliases share for assembling chains."""

from __future__ import annotations

import numbers
from typing import Any, Callable

import optax


def unless_zero(value: Any, piece: Callable[[], optax.GradientTransformation]) -> optax.GradientTransformation:
    """``piece()``, or ``optax.identity()`` when ``value`` is the number 0.

    A decay of exactly 0 still reads every parameter on every step; leaving the
    piece out keeps Adam at one pass over its inputs. Arrays and schedules
    always keep the piece, so a sweep that includes 0 compiles one program.
    """
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and value == 0:
        return optax.identity()
    return piece()
