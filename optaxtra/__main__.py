"""``python -m optaxtra``: the same command line as the ``optaxtra`` entry point."""

import sys

from optaxtra.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
