"""``python -m hhjax``: the ``hhjax`` command line (see :mod:`hhjax.cli`)."""

import sys

from hhjax.cli import main

if __name__ == "__main__":
    sys.exit(main())
