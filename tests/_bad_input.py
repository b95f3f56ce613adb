"""The check every bad-input table runs: the call raises, and the message names what was wrong."""

from __future__ import annotations

from typing import Callable, Sequence

import pytest


def assert_refused(make: Callable[[], object], error: type[Exception], words: Sequence[str]) -> None:
    """``make()`` raises ``error`` whose message contains every one of ``words``
    (the argument's name, the value given, the valid range)."""
    with pytest.raises(error) as raised:
        make()
    for word in words:
        assert word in str(raised.value), (word, str(raised.value))
