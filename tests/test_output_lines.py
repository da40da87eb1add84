"""Live command output is redacted however the pipe's reads cut it (OutputLines, safe_cut).

Reads end anywhere: inside a line, a UTF-8 sequence, a secret. The properties: no
registered secret, no line of a multi-line secret and no password shape ever
reaches the observer whole or in part through a cut, and where nothing needed
masking nothing is lost or reordered. One test runs a real command through the
executor with an observer, its output flushed so that each piece is its own read.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from dpone_core.executor.command_observer import observing_commands
from dpone_core.executor.output_lines import OutputLines
from dpone_core.redact import MASK, SHAPE_REACH_CHARS, redact, register_secret, safe_cut
from tests.test_command_observer import Observer, execute, manifest

# Distinct values per test module: the registry of secrets is global to a process.
SECRET = "Zq7-output-lines-secret-41c9"
PEM = (
    "-----BEGIN TEST KEY-----\n"
    "MIIBVgIBADANBgkqhkiG9w0BAQEFAASCAUAwggE8AgEAAkEAq7BFUpkGp3+LQmlQ\n"
    "Yx8s2ZL0d+RwJ3XnGm8aKf1Q0yX3bW2cK9uTzp1DWmhm1ZP0e3vQnKx9q8A9LmN2\n"
    "-----END TEST KEY-----"
)
PEM_BODY = PEM.splitlines()[1:3]
LINE_BYTES = 8192  # small enough for quick examples, larger than SHAPE_REACH_CHARS

register_secret(SECRET)
register_secret(PEM)


def _stream(data: bytes, cuts: list[int], line_bytes: int = LINE_BYTES) -> list[str]:
    texts: list[str] = []
    lines = OutputLines(texts.append, line_bytes=line_bytes)
    start = 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        lines.feed(data[start:cut])
        start = cut
    lines.close()
    return texts


def _leaks(text: str) -> list[str]:
    return [s for s in (SECRET, *PEM_BODY, "hunter2-value", "pg-pass-77") if s in text]


PIECES = st.sampled_from(
    [
        SECRET,
        "password=hunter2-value ",
        "postgresql://app:pg-pass-77@db/x ",
        "é",
        " ",
        "filler text ",
    ]
)


@settings(max_examples=60, deadline=None)
@given(
    parts=st.lists(st.tuples(PIECES, st.integers(0, 3000)), min_size=1, max_size=40),
    cuts=st.lists(st.integers(0, 10**6), max_size=30),
)
def test_one_long_line_cut_anywhere_leaks_nothing_and_loses_nothing(
    parts: list[tuple[str, int]], cuts: list[int]
) -> None:
    text = "".join(piece + "x" * pad for piece, pad in parts)
    texts = _stream(text.encode(), cuts)
    assert all(t.endswith("\n") for t in texts)
    assert all(len(t.encode()) <= LINE_BYTES + 1 for t in texts)
    joined = "".join(texts)
    assert _leaks(joined) == []
    # The line has no line break of its own: every "\n" is a cut's, and without them
    # the pieces are exactly the whole line redacted at once.
    assert joined.replace("\n", "") == redact(text)


@settings(max_examples=40, deadline=None)
@given(
    before=st.text(alphabet="ab \n", max_size=200),
    cuts=st.lists(st.integers(0, 10**4), max_size=12),
)
def test_a_secret_that_spans_lines_is_masked_line_by_line_when_it_arrives_in_pieces(
    before: str, cuts: list[int]
) -> None:
    text = before + "\n" + PEM + "\nafter\n"
    joined = "".join(_stream(text.encode(), cuts))
    assert _leaks(joined) == []
    assert joined.endswith("after\n")


def test_lines_of_a_multi_line_secret_are_masked_alone() -> None:
    assert redact(PEM) == MASK
    assert redact(PEM_BODY[0]) == MASK
    assert redact("-----END TEST KEY-----") == MASK  # 22 characters: registered too
    register_secret("ab\ncd\nthe-rest-of-it")  # short lines are not registered alone
    assert redact("ab") == "ab" and redact("the-rest-of-it") == MASK


def test_safe_cut_never_splits_a_match_and_waits_near_the_end() -> None:
    head = "y" * 10_000
    text = head + SECRET + "z" * 10_000
    inside = len(head) + 5
    assert safe_cut(text, inside) == len(head)  # moved back to the secret's start
    assert safe_cut(text, len(text)) == len(text) - SHAPE_REACH_CHARS
    assert safe_cut("q" * 100, 50) == 0  # too short to know: wait for more text
    growing = "w" * 5000 + "password=" + "v" * 5000  # an unquoted value still arriving
    assert safe_cut(growing, len(growing)) == 5000


def test_a_line_past_twice_line_bytes_is_cut_even_inside_a_growing_password() -> None:
    """Memory stays bounded: a hostile unbroken run is cut at twice line_bytes."""
    data = ("password=" + "v" * (3 * LINE_BYTES)).encode()
    texts = _stream(data, [LINE_BYTES * 2 + 1])
    assert texts[0].startswith("password=" + MASK)
    assert all(len(t.encode()) <= LINE_BYTES + 1 for t in texts)


def test_a_real_command_whose_reads_cut_secrets_leaks_nothing(tmp_path: Path) -> None:
    """Each write is flushed and followed by a pause, so the executor reads it alone."""
    code = (
        "import sys, time\n"
        "def out(text):\n"
        "    sys.stdout.write(text); sys.stdout.flush(); time.sleep(0.05)\n"
        f"pem = {PEM!r}.split('\\n')\n"
        "for line in pem:\n"
        "    out(line[:20]); out(line[20:] + '\\n')\n"
        f"out('a' * (64 * 1024 - 10)); out({SECRET[:9]!r}); out({SECRET[9:]!r} + 'b' * 70000)\n"
        "out('\\n')\n"
    )
    observer = Observer()
    with observing_commands(observer):
        result = execute(manifest(tmp_path, code))
    assert result.passed, result.result.errors
    text = observer.watches[0].text("stdout")
    assert _leaks(text) == []
    assert text.count(MASK) >= 3  # two PEM body lines (at least) and the secret
    assert len(text.replace("\n", "")) > 64 * 1024


def test_password_pairs_are_masked_whatever_precedes_the_keyword() -> None:
    assert redact("PGPASSWORD=abc123 next") == f"PGPASSWORD={MASK} next"
    assert redact("db_password = 'p w' ok") == f"db_password = {MASK} ok"
    assert redact("passwd=x1;rest") == f"passwd={MASK};rest"
