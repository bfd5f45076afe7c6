"""``python -m fairpath``: the same as the ``fairpath`` command."""

import sys

from fairpath.cli import main

if __name__ == "__main__":
    sys.exit(main())
