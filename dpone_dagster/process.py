"""One manifest process as the Dagster adapter sees it, and how manifests are found.

A :class:`DponeProcess` is what the translator receives: the loaded manifest
(validated, hashed), the selector and the process spec, plus the SQL dialect of
each connection. Dialects are derived once per manifest from the URL scheme, so
no code path that builds asset specs ever needs (or could leak) a connection URL.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dpone_core.manifest import (
    CommandProcess,
    LoadedManifest,
    ProcessSpec,
    TransferProcess,
    load_manifest,
)

__all__ = [
    "DponeProcess",
    "connection_dialects",
    "expand_manifest_paths",
    "processes_of",
]

#: Dialect names as Dagster's ``kinds`` spell them (they pick the icon in the UI).
_DIALECT_KINDS = {"postgresql": "postgres", "postgres": "postgres", "sqlite": "sqlite"}


def _dialect(url: str) -> str:
    """The dialect part of a SQLAlchemy URL scheme (``postgresql+psycopg`` -> ``postgres``).

    Only the text before ``:`` is looked at, so the password part of the URL never
    leaves this function.
    """
    scheme = url.split(":", 1)[0].split("+", 1)[0].strip().lower()
    return _DIALECT_KINDS.get(scheme, scheme or "unknown")


def connection_dialects(loaded: LoadedManifest) -> dict[str, str]:
    """Connection name -> dialect kind, without keeping any URL."""
    return {name: _dialect(url) for name, url in loaded.manifest.connections.items()}


@dataclass(frozen=True)
class DponeProcess:
    """A manifest process plus where it came from: the translator's input."""

    manifest: LoadedManifest
    selector: str
    spec: ProcessSpec
    #: connection name -> dialect kind (``sqlite``, ``postgres``, ...); never URLs.
    dialects: Mapping[str, str] = field(default_factory=dict)

    @property
    def manifest_name(self) -> str:
        """The manifest's file name without its extension (``manifests/shop.yml`` -> ``shop``)."""
        return self.manifest.path.stem

    @property
    def manifest_path(self) -> Path:
        return self.manifest.path

    @property
    def is_transfer(self) -> bool:
        return isinstance(self.spec, TransferProcess)

    @property
    def is_command(self) -> bool:
        return isinstance(self.spec, CommandProcess)

    @property
    def line(self) -> int | None:
        """The line of the process's name in the manifest (for code references)."""
        return self.manifest.process_lines.get(self.selector)

    @property
    def spec_hash(self) -> str:
        """A short hash of this process's own spec (not the whole manifest).

        Used as the asset's code version, so editing one process marks only that
        asset as changed, not every sibling in the manifest.
        """
        text = self.spec.model_dump_json()
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def processes_of(loaded: LoadedManifest, select: Iterable[str] | None = None) -> list[DponeProcess]:
    """The processes of ``loaded`` (all, or those named in ``select``, in manifest order)."""
    dialects = connection_dialects(loaded)
    available = loaded.manifest.processes
    if select is None:
        names = list(available)
    else:
        wanted = list(select)
        unknown = [name for name in wanted if name not in available]
        if unknown:
            known = ", ".join(repr(name) for name in available)
            raise ValueError(
                f"{loaded.path}: no process named {unknown[0]!r}; available selectors: {known}"
            )
        chosen = set(wanted)
        names = [name for name in available if name in chosen]
    return [
        DponeProcess(manifest=loaded, selector=name, spec=available[name], dialects=dialects)
        for name in names
    ]


_MANIFEST_SUFFIXES = (".yml", ".yaml")


def expand_manifest_paths(manifests: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Files stay as given; a directory stands for its ``*.yml``/``*.yaml`` files, sorted.

    Sorting makes the asset order (and so the repository snapshot) independent of
    the file system's directory order.
    """
    if isinstance(manifests, str | os.PathLike):
        raise TypeError("manifests must be a list of paths, not a single path")
    paths: list[Path] = []
    for entry in manifests:
        path = Path(entry)
        if path.is_dir():
            paths.extend(
                sorted(p for p in path.iterdir() if p.suffix in _MANIFEST_SUFFIXES and p.is_file())
            )
        else:
            paths.append(path)
    return paths


def load_all(paths: Iterable[Path]) -> list[LoadedManifest]:
    """Load every manifest (each problem is a one-line ``ManifestError``)."""
    return [load_manifest(path) for path in paths]
