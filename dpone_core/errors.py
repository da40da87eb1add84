"""User-facing errors: each renders as one line that names the file, the field
and what was expected, so the CLI can print it without a traceback (exit 2)."""

from __future__ import annotations


class DponeUsageError(Exception):
    """The invocation or its input is invalid; retrying cannot help."""


class ManifestError(DponeUsageError):
    """A manifest is missing, unparsable or does not match the format."""

    def __init__(self, file: str, field: str, expected: str) -> None:
        self.file = file
        self.field = field
        self.expected = expected
        where = f"{file}: {field}" if field else file
        super().__init__(f"{where}: {expected}")
