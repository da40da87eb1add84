"""cron: the command a crontab runs, and the crontab line itself.

cron runs a line with ``/bin/sh`` in the user's home directory, a minimal
``PATH`` and almost no environment, and turns every unescaped ``%`` into a
newline. So the command changes into the working directory itself, names the
dpone executable by its absolute path, takes the logical date from the shell at
the moment cron fires (``date -u``: the run-id rule is in UTC) and, on the
crontab line, escapes every ``%``.
"""

from __future__ import annotations

import re
import shlex

from dpone_core.cli_flags import flag
from dpone_core.handoff.shell import needs_ansi_c, one_line_word
from dpone_core.schedule import Period

__all__ = ["cron_command", "crontab_line", "shell_logical_date"]


def shell_logical_date(period: Period) -> str:
    """A double-quoted ``$(date -u ...)`` that prints the logical date at fire time."""
    fmt = "+%F" if period is Period.DAY else "+%FT%H:%MZ"
    return f'"$(date -u {fmt})"'


def _with_date(words: list[str], period: Period) -> str:
    date = [flag("execution_date"), shell_logical_date(period)]
    return " ".join([*words, *date, flag("scheduler"), "cron"])


def cron_command(command: list[str], working_dir: str | None, period: Period) -> str:
    """The plain shell command (``sh -c`` runs it; ``%`` not escaped)."""
    cd = "" if working_dir is None else f"cd {shlex.quote(working_dir)} && "
    return cd + _with_date([shlex.quote(word) for word in command], period)


_BACKSLASH_BEFORE_SPECIAL = re.compile(r"\\(?=[\\%])")


def _crontab_word(text: str) -> str:
    """A one-line shell word in which no backslash stands before another or a ``%``.

    cron strips the backslash of ``\\%``; Debian's cron (the Vixie 3.0 line) also turns
    ``\\\\`` into ``\\``, while cronie keeps it. A word that never puts a backslash
    before a backslash or a ``%`` means the same to both: inside single quotes the two
    are split by closing and reopening the quotes (``'a\\''%b'`` is ``a\\%b`` to the
    shell); inside ``$'...'`` a backslash is written ``\\x5c``.
    """
    word = one_line_word(text)
    if word.startswith("$'"):
        return word.replace("\\\\", "\\x5c")
    return _BACKSLASH_BEFORE_SPECIAL.sub("\\\\''", word)


def crontab_line(
    schedule: str, command: list[str], working_dir: str | None, period: Period
) -> str:
    """``<schedule> <command>``: one physical line, ``%`` escaped for cron."""
    cd = "" if working_dir is None else f"cd {_crontab_word(working_dir)} && "
    line = cd + _with_date([_crontab_word(word) for word in command], period)
    texts = [*command, *([] if working_dir is None else [working_dir])]
    if any(needs_ansi_c(text) for text in texts):
        # $'...' is bash; cron runs /bin/sh, so hand the line to bash.
        line = "bash -c " + shlex.quote(line)
    # cron turns an unescaped % into a newline (stdin); \% is a literal %.
    return f"{schedule} " + line.replace("%", "\\%")
