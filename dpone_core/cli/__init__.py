"""``dpone``: the command-line adapter (see :mod:`dpone_core.cli.main`).

``dpone_core.cli:main`` is the console script; ``python -m dpone_core.cli``
works too. Flag spellings live in :mod:`dpone_core.cli.flags` only.
"""

from dpone_core.cli.main import EXIT_FAILED, EXIT_OK, EXIT_USAGE, build_parser, main

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]
