"""The README's Python examples run, and print what their comments say.

Each ```python block of ``README.md`` runs in a fresh interpreter (the
multi-device example sets ``XLA_FLAGS`` before importing JAX, which only a new
process can do). A ``print(...)`` line whose trailing comment is made of
output-like tokens (numbers, ``~number`` for a value shown to the digits
written, or a repr such as ``P('data',)``) must print exactly those tokens;
other comments describe and are not checked. The listing of the optimizers'
chains is evaluated line by line against each alias in ``tests/test_chains.py``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

import optaxtra

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCKS = [
    (README[: match.start()].count("\n") + 2, match.group(1))
    for match in re.finditer(r"```python\n(.*?)```", README, re.S)
]
LISTING_START = "adam    = chain("
NUMBER = re.compile(r"~?[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
REPR = re.compile(r"\w+\(.*\)")
# Print lines with an expected output (README line: tokens), so that a test checking nothing fails.
EXPECTED_CHECKS = 3


def _expected(line: str) -> list[str] | None:
    """The tokens a print line's comment expects, or None if the comment describes."""
    if not line.lstrip().startswith("print(") or "#" not in line:
        return None
    tokens = line.split("#", 1)[1].split()
    if tokens and all(NUMBER.fullmatch(t) or REPR.fullmatch(t) for t in tokens):
        return tokens
    return None


def _matches(expected: str, printed: str) -> bool:
    if not expected.startswith("~"):
        return expected == printed
    shown = Decimal(expected[1:])
    half_digit = Decimal(1).scaleb(shown.as_tuple().exponent) / 2  # half a unit in the last digit shown
    return abs(Decimal(printed) - shown) <= half_digit


def _runnable():
    return [(line, code) for line, code in BLOCKS if not code.startswith(LISTING_START)]


def test_the_readme_has_its_examples():
    assert len(_runnable()) >= 12 and len(BLOCKS) == len(_runnable()) + 1
    assert sum(_expected(l) is not None for _, code in BLOCKS for l in code.splitlines()) == EXPECTED_CHECKS


@pytest.mark.parametrize("line, code", _runnable(), ids=[f"line{line}" for line, _ in _runnable()])
def test_readme_example_runs_and_prints_what_it_says(line, code):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, f"README line {line}:\n{result.stderr[-3000:]}"
    printed = iter(result.stdout.splitlines())
    for source in code.splitlines():
        if not source.lstrip().startswith("print("):
            continue
        output = next(printed)  # each print in these examples writes one line
        expected = _expected(source)
        if expected is not None:
            assert len(output.split()) == len(expected), (line, source, output)
            assert all(_matches(e, p) for e, p in zip(expected, output.split())), (line, source, output)


def test_matches_reads_the_digits_shown():
    assert _matches("~8.57e-4", "0.000857143") and not _matches("~8.57e-4", "0.000858")
    assert _matches("~1.2e-4", "0.00011999998") and not _matches("~1.2e-4", "0.000126")
    assert _matches("0.95", "0.95") and not _matches("0.95", "0.950")
    assert _expected("print(x)   # rho_t, r_t, lookahead sync") is None
    assert _expected("print(x.spec)   # P('data',)") == ["P('data',)"]


def test_readme_user_files_work_with_compare(tmp_path):
    """``my_chains.py`` and ``my_task.py`` as the README writes them, run as its commands use them."""
    files = re.findall(r"```python\n(# (my_\w+\.py)\n.*?)```", README, re.S)
    assert sorted(name for _, name in files) == ["my_chains.py", "my_task.py"]
    for code, name in files:
        (tmp_path / name).write_text(code)
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    command = [sys.executable, "-m", "optaxtra", "compare", "--task", "my_task.py:make_task",
               "--optimizers", "adam,my_chains:clipped_adam", "--lrs", "1e-2", "--seeds", "1", "--out", "results"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = (tmp_path / "results" / "summary.txt").read_text()
    assert "tanh-regression: best" in summary and "clipped_adam" in summary and "adam" in summary
