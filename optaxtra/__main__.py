"""The ``optaxtra`` command (also ``python -m optaxtra``): ``optaxtra compare``.

The command lives in ``optaxtra.compare``, which needs the ``compare`` extra.
Without it, ``main`` prints one line saying how to install it and returns 1,
instead of an ``ImportError`` traceback.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Sequence

# Import names of the ``compare`` extra's packages (pyproject.toml) that the command imports.
COMPARE_EXTRA = ("flax", "matplotlib", "mnist1d", "rich", "scipy", "sklearn")


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit code.

    Args:
      argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
      0 for ``--version``; 1 if the ``compare`` extra is not installed, else the command's code
      (0 on success, 2 on bad input, 130 if interrupted).
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["--version"]:  # Needs no extra.
        from optaxtra import __version__

        print(f"optaxtra {__version__}")
        return 0
    missing = [name for name in COMPARE_EXTRA if importlib.util.find_spec(name) is None]
    if missing:
        print(
            f"optaxtra: the command needs the compare extra ({', '.join(missing)} not installed): "
            'pip install "optaxtra[compare]"',
            file=sys.stderr,
        )
        return 1
    from optaxtra.compare.cli.main import main as command  # Only now: it imports the extra's packages.

    return command(arguments)


if __name__ == "__main__":
    sys.exit(main())
