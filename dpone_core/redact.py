"""Keep secrets out of everything we print or persist.

Every string that leaves the engine goes through :func:`redact`, which masks
three things as ``***``:

* **registered secrets** -- values handed to :func:`register_secret`: secret
  ``${VAR}`` references of a manifest, passwords of the URLs dpone handles
  (:func:`register_url_secrets`) and the values of secret-like environment
  variables (:func:`register_environment_secrets`, rule in
  :func:`is_secret_env_name`);
* **URL passwords by their shape** in free text, ``scheme://user:password@``,
  for a password without ``/``, ``@`` or whitespace (a URL whose password has
  those cannot be told apart from text by a pattern: it is found by parsing
  when dpone handles the URL, and masked because it was registered);
* **``password=...`` pairs** (also ``passwd=``, and with any prefix: ``PGPASSWORD=``,
  ``db_password=``), quoted or not.

:func:`redact` runs in time linear in the length of the text: the registered
secrets are one compiled alternation (rebuilt when the set changes, longest
first), and both patterns start with a literal and have bounded quantifiers,
so no input makes them backtrack over the whole text.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from urllib.parse import unquote

__all__ = [
    "MASK",
    "is_secret_env_name",
    "redact",
    "redact_url",
    "register_environment_secrets",
    "register_secret",
    "register_url_secrets",
    "safe_cut",
    "secrets_generation",
    "url_password_candidates",
]

MASK = "***"
#: Shorter registered values are ignored: masking them would garble ordinary text.
MIN_SECRET_CHARS = 3
#: Values of secret-like environment variables shorter than this are not registered
#: (``TOKEN_CACHE=false``, ``USE_SECRET=1``): a real credential is longer.
MIN_ENV_SECRET_CHARS = 6
#: Pieces of a URL password between ``@ / ? #`` that are at least this long are
#: registered too: a parser that splits the URL there shows them as a host or path.
MIN_URL_PIECE_CHARS = 6
#: Each line of a registered secret that spans lines is registered too when it is at
#: least this long (a PEM key's body lines are 64): a stream that passes text on by
#: lines (the live output of a command) may show one line before the next arrives.
MIN_SECRET_LINE_CHARS = 8
#: At most this many ``@`` of one URL are considered (URLs are short; text is not parsed).
_MAX_AT_SIGNS = 16

# ``://`` is a literal prefix (a fast search), the scheme's last character is checked
# behind it, and every repeat is bounded: linear in the text, whatever it holds.
_URL_PASSWORD = re.compile(
    r"://(?<=[A-Za-z0-9+.\-]://)(?P<user>[^:/@\s]{0,256}):(?P<pw>[^@\s/]{1,1024})@"
)
_KEYWORD_PASSWORD = re.compile(
    r"(?i)(?P<head>pass(?:word|wd)\s{0,16}=\s{0,16})"
    r"(?P<pw>'[^'\n]{0,4096}'|\"[^\"\n]{0,4096}\"|[^\s;]+)"
)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]{0,63}://")
#: What may follow the ``@`` that ends the userinfo: ``host[:port][,host...]`` and then
#: the path, query, fragment or the end.
_HOST = re.compile(r"[^@/?#\s]*(?:[/?#]|\Z)")
_URL_DELIMITERS = re.compile(r"[@/?#]")
_PATH_START = re.compile(r"[/?#]")
_NOT_USER = re.compile(r"[/?#\s]")
_AT = re.compile("@")

_lock = threading.Lock()
_secrets: set[str] = set()
_secrets_pattern: re.Pattern[str] | None = None
_longest_secret = 0


def register_secret(value: str) -> None:
    """Remember a secret value so that it is masked wherever it appears later.

    A value that spans lines is masked whole where it appears whole, and line by
    line (lines of at least ``MIN_SECRET_LINE_CHARS``) where it arrives in pieces.
    """
    global _secrets_pattern, _longest_secret
    if len(value) < MIN_SECRET_CHARS:
        return
    lines = [line for line in value.splitlines() if len(line) >= MIN_SECRET_LINE_CHARS]
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        _secrets.update(lines)  # a one-line value is its own only line: nothing new
        _longest_secret = max(_longest_secret, len(value))
        # Longest first: of two secrets starting at the same place, the longer is masked.
        ordered = sorted(_secrets, key=lambda s: (-len(s), s))
        _secrets_pattern = re.compile("|".join(re.escape(s) for s in ordered))


def secrets_generation() -> int:
    """Changes whenever a secret is registered (secrets are only ever added), so a
    cache of redacted text can tell that its masking may be out of date."""
    with _lock:
        return len(_secrets)


# -- environment variables -------------------------------------------------------------

_NAME_WORDS = re.compile(r"[^A-Z0-9]+")
#: ``<word>_KEY`` is secret for these words only: most ``*_KEY`` names are keys of
#: another kind (``PARTITION_KEY``, ``CONCURRENCY_KEY``, ``CACHE_KEY``, ``GPG_KEY``).
_KEY_KINDS = frozenset(
    {
        "API",
        "ACCESS",
        "PRIVATE",
        "SECRET",
        "SIGNING",
        "ENCRYPTION",
        "MASTER",
        "AUTH",
        "CLIENT",
        "LICENSE",
        "HMAC",
        "SESSION",
        "ACCOUNT",
        "SERVICE",
        "WEBHOOK",
    }
)
_SECRET_WORD = re.compile(r"(?:PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|CREDENTIAL|APIKEY)S?\Z")


def is_secret_env_name(name: str) -> bool:
    """Whether environment variable ``name`` holds a secret, by its name (case-insensitive).

    The name is split into words at every character that is not a letter or a
    digit. It is secret when a word *ends with* PASSWORD, PASSWD, PASSPHRASE,
    SECRET, TOKEN, CREDENTIAL or APIKEY (optionally plural: ``PGPASSWORD``,
    ``GITHUB_TOKEN``, ``GOOGLE_APPLICATION_CREDENTIALS``), when its last word is
    KEY after one of the words of ``_KEY_KINDS`` (``OPENAI_API_KEY``,
    ``SSH_PRIVATE_KEY``, ``SIGNING_KEY``), or when a word after the first is PWD
    (``MYSQL_PWD``). So ``PATH``, ``HOME``, ``PWD``, ``TOKENIZERS_PARALLELISM``,
    ``DPONE_PARTITION_KEY``, ``GPG_KEY`` and ``AWS_ACCESS_KEY_ID`` are not.
    """
    words = [word for word in _NAME_WORDS.split(name.upper()) if word]
    if any(_SECRET_WORD.search(word) for word in words):
        return True
    if len(words) >= 2 and words[-1] == "KEY" and words[-2] in _KEY_KINDS:
        return True
    return "PWD" in words[1:]


def register_environment_secrets(environ: Mapping[str, str]) -> None:
    """Register the secrets an environment holds, so that a command echoing them is masked.

    Registered: the value of every variable with a secret-like name
    (:func:`is_secret_env_name`) that is at least ``MIN_ENV_SECRET_CHARS`` long,
    the password of every value that is a URL (:func:`register_url_secrets`,
    whatever the variable's name: ``DATABASE_URL``, ``DPONE_ORCHESTRATION_DSN``)
    and the value of every ``password=...`` inside a value (keyword DSNs).
    """
    for name, value in environ.items():
        if is_secret_env_name(name):
            for candidate in {value, value.strip()}:
                if len(candidate) >= MIN_ENV_SECRET_CHARS:
                    register_secret(candidate)
        if "://" in value:
            register_url_secrets(value.strip())
        if "pass" in value.lower():
            for match in _KEYWORD_PASSWORD.finditer(value):
                register_secret(match["pw"].strip("'\""))


# -- URLs ------------------------------------------------------------------------------


def _password_spans(url: str) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
    """Where the password of ``url`` is, read two ways: (standard, up to the last ``@``).

    *Standard* is what ``urlsplit`` does: the authority ends at the first ``/``,
    ``?`` or ``#``, and the userinfo at its last ``@``. A password holding one of
    those characters unencoded breaks that reading, so the second reading ends the
    userinfo at the *last* ``@`` of the URL that is followed by something shaped like
    a host (no ``@``, ``/``, ``?``, ``#`` or space up to the path, query, fragment or
    end). Either is None when that reading finds no password.
    """
    scheme = _SCHEME.match(url)
    if scheme is None:
        return None, None
    start = scheme.end()
    mark = _PATH_START.search(url, start)
    netloc_end = len(url) if mark is None else mark.start()

    def span(at: int) -> tuple[int, int] | None:
        colon = url.find(":", start, at)
        if colon < 0 or _NOT_USER.search(url, start, colon):
            return None  # no password, or the "user" is really a host and a path
        return (colon + 1, at) if at > colon + 1 else None

    standard_at = url.rfind("@", start, netloc_end)
    standard = span(standard_at) if standard_at >= 0 else None
    last = None
    ats = [m.start() for m in _AT.finditer(url, start)][-_MAX_AT_SIGNS:]
    for at in reversed(ats):
        if _HOST.match(url, at + 1):
            last = span(at)
            break
    return standard, last


def url_password_candidates(url: str) -> list[str]:
    """The password(s) of ``url`` as spelled in it (see :func:`_password_spans`)."""
    found: list[str] = []
    for where in _password_spans(url):
        if where is not None and url[where[0] : where[1]] not in found:
            found.append(url[where[0] : where[1]])
    return found


def register_url_secrets(url: str) -> None:
    """Register the password of ``url``, however it is spelled, so that it is masked anywhere.

    Call it wherever dpone handles a URL (manifest connections, the backend DSN).
    Registered: every candidate password (:func:`url_password_candidates`), each
    percent-decoded, and the pieces of the most likely one between ``@ / ? #``
    that are at least ``MIN_URL_PIECE_CHARS`` long.
    """
    standard, last = _password_spans(url)
    for index, where in enumerate((standard, last)):
        if where is None:
            continue
        password = url[where[0] : where[1]]
        primary = index == 0 or standard is None
        for spelling in {password, unquote(password)}:
            register_secret(spelling)
            if primary:
                for piece in _URL_DELIMITERS.split(spelling):
                    if len(piece) >= MIN_URL_PIECE_CHARS:
                        register_secret(piece)


def redact_url(url: str) -> str:
    """``url`` with its password masked, found by parsing (then :func:`redact` on the rest)."""
    standard, last = _password_spans(url)
    where = standard or last
    if where is not None:
        url = url[: where[0]] + MASK + url[where[1] :]
    return redact(url)


# -- text ------------------------------------------------------------------------------


#: The longest text a shape pattern can match before a cut would split it: a URL
#: password (``://`` + 256 + ``:`` + 1024 + ``@``), a quoted ``password=`` value
#: (a 41-character head + 4,096 + two quotes). An unquoted ``password=`` value is
#: unbounded; a cut never falls inside the part that has arrived (see safe_cut).
SHAPE_REACH_CHARS = 4200


def safe_cut(text: str, limit: int) -> int:
    """Where a text that is still growing may be cut, at or before ``limit``, so that
    each side redacted alone unmasks nothing that redacting them together would mask.

    The last ``max(longest secret, SHAPE_REACH_CHARS)`` characters may hold the start
    of a match whose end has not arrived, so the cut stays before them; then it moves
    back to the start of any match (registered secret or shape) that spans it. ``0``
    means: no safe cut yet, wait for more text.
    """
    pattern = _secrets_pattern
    cut = min(limit, len(text) - max(_longest_secret, SHAPE_REACH_CHARS))
    if cut <= 0:
        return 0
    spans = [
        match.span()
        for candidate in (pattern, _URL_PASSWORD, _KEYWORD_PASSWORD)
        if candidate is not None
        for match in candidate.finditer(text)
    ]
    moved = True
    while moved:
        moved = False
        for start, end in spans:
            if start < cut < end:
                cut, moved = start, True
    return cut


def _mask_registered(text: str) -> str:
    pattern = _secrets_pattern  # one read: a registration meanwhile swaps the whole object
    return text if pattern is None else pattern.sub(MASK, text)


def redact(text: str) -> str:
    """Mask registered secrets, URL passwords and ``password=...`` pairs; linear time."""
    out = _mask_registered(text)
    if "://" in out:
        out = _URL_PASSWORD.sub(lambda m: f"://{m['user']}:{MASK}@", out)
    return _KEYWORD_PASSWORD.sub(lambda m: f"{m['head']}{MASK}", out)
