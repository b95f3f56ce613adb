"""The one error the command line turns into a message and exit code 2."""

from __future__ import annotations

__all__ = ["UsageError"]


class UsageError(ValueError):
    """Bad input from the user: printed without a traceback, exit code 2."""
