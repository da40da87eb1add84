"""Table names as manifests spell them (``table`` or ``schema.table``) and their SQL form.

Names are used exactly as written: every identifier is quoted in the SQL we
generate, so ``Orders`` and ``orders`` are different tables on PostgreSQL (write
the name the way the database stores it; unquoted PostgreSQL names are lower
case). SQLite has no schemas besides ``main``; ``main.table`` is accepted there.
"""

from __future__ import annotations

from dataclasses import dataclass

from dpone_core.errors import ManifestError

__all__ = ["TableName"]


@dataclass(frozen=True)
class TableName:
    schema: str | None
    name: str

    @classmethod
    def parse(cls, text: str, *, file: str, field: str) -> TableName:
        """Split ``schema.table``; anything else than one or two non-empty parts is an error."""
        parts = text.strip().split(".")
        if len(parts) > 2 or any(not part.strip() for part in parts):
            raise ManifestError(file, field, f"expected 'table' or 'schema.table' (got {text!r})")
        if len(parts) == 2:
            return cls(schema=parts[0].strip(), name=parts[1].strip())
        return cls(schema=None, name=parts[0].strip())

    @property
    def display(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name

    def sibling(self, name: str) -> TableName:
        """Another table in the same schema (staging, ledger)."""
        return TableName(schema=self.schema, name=name)

    def __str__(self) -> str:
        return self.display
