"""Named artifacts of a run: ``--artifact name=path`` read into path, size and SHA-256.

The name is a short identifier (letters, digits, ``_``, ``-``, ``.``) so it can
be a JSON key, a Dagster metadata key suffix and a word in Markdown. The path is
stored absolute (resolved against the working directory) so the entry says which
file it means wherever it is read; the hash is of the bytes read, streamed.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from dpone_core.ops.errors import OpsInputError

__all__ = ["Artifact", "describe_file", "parse_artifact_spec", "read_artifacts"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
_CHUNK = 1024 * 1024


class Artifact(BaseModel):
    """A file a run produced or was registered with, as it was when registered."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


def parse_artifact_spec(text: str) -> tuple[str, str]:
    """``name=path`` -> (name, path); the first ``=`` separates them."""
    name, sep, path = text.partition("=")
    if not sep or not path:
        raise OpsInputError("--artifact", "", f"expected NAME=PATH (got {text!r})")
    if not _NAME.fullmatch(name):
        raise OpsInputError(
            "--artifact",
            name,
            "expected a name of letters, digits, '_', '-' or '.' (at most 64, starting with a "
            f"letter or digit) (got {name!r})",
        )
    return name, path


def describe_file(path: str | os.PathLike[str], *, what: str) -> Artifact:
    """Size and SHA-256 of a regular file, read once; ``what`` names it in errors."""
    shown = os.fspath(path)
    absolute = Path(os.path.abspath(shown))
    digest = hashlib.sha256()
    size = 0
    try:
        with absolute.open("rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise OpsInputError(what, shown, "expected a regular file")
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise OpsInputError(what, shown, f"cannot read the file: {exc.strerror or exc}") from None
    return Artifact(path=str(absolute), size=size, sha256=digest.hexdigest())


def read_artifacts(specs: list[str]) -> dict[str, Artifact]:
    """Every ``--artifact`` as name -> artifact; a name given twice is an error."""
    found: dict[str, Artifact] = {}
    for spec in specs:
        name, path = parse_artifact_spec(spec)
        if name in found:
            raise OpsInputError("--artifact", name, "expected each artifact name once")
        found[name] = describe_file(path, what=f"--artifact {name}")
    return found
