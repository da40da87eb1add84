"""dpone_core: the orchestration engine behind ``dpone``.

Importing this package is cheap on purpose: submodules are imported where
they are used so that ``dpone --help`` stays fast and Dagster never loads.
"""

__version__ = "0.1.0"
