"""Injective, contained file names for user-supplied keys and run ids.

``a/b`` and ``a_b`` must never share a file, ``..`` must never leave its
directory, and long or non-ASCII keys must still fit a file name. Readable
names percent-encode every byte outside ``[A-Za-z0-9_-]`` (so they never
contain ``.`` or ``~``); names that would be too long become a readable
prefix, ``~`` and a SHA-256 of the key, which no readable name can equal.
"""

from __future__ import annotations

import hashlib
import string

_SAFE = frozenset(string.ascii_letters + string.digits + "_-")
_MAX_READABLE = 120
_PREFIX = 60


def file_safe_name(key: str) -> str:
    """Map ``key`` to a file-name stem; injective over all non-empty strings."""
    if not key:
        raise ValueError("an empty key has no file name")
    encoded = "".join(
        ch if ch in _SAFE else "".join(f"%{b:02X}" for b in ch.encode("utf-8")) for ch in key
    )
    if len(encoded) <= _MAX_READABLE:
        return encoded
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return f"{encoded[:_PREFIX]}~{digest}"
