"""Keep secrets out of everything we print or persist.

Two sources of secrets: passwords inside connection URLs, and values read
from environment variables that a manifest marks secret (or whose name says
so). Every string that leaves the engine goes through :func:`redact`.
"""

from __future__ import annotations

import re
import threading

MASK = "***"
_URL_PASSWORD = re.compile(
    r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^@\s/]+)(?P<tail>@)"
)
_KEYWORD_PASSWORD = re.compile(r"(?i)(?P<head>\bpassword\s*=\s*)(?P<pw>'[^']*'|\"[^\"]*\"|[^\s;]+)")

_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(value: str) -> None:
    """Remember a secret value so that it is masked wherever it appears later."""
    if len(value) >= 3:
        with _lock:
            _secrets.add(value)


def redact_url(url: str) -> str:
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}{m['tail']}", url)


def redact(text: str) -> str:
    """Mask URL passwords, ``password=...`` pairs and every registered secret."""
    out = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}{m['tail']}", text)
    out = _KEYWORD_PASSWORD.sub(lambda m: f"{m['head']}{MASK}", out)
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in out:
            out = out.replace(secret, MASK)
    return out
