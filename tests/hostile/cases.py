"""The hostile-input corpus as data: one :class:`Case` per input, run by test_corpus.py.

Each case writes its input into the workspace and returns the extra CLI args.
The expected outcome is the exit code and, for exit 1, the blocker or the
words the one stderr line must contain.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dpone_core.naming import file_safe_name

OK_PROCESS = 'version: 1\nprocesses:\n  p:\n    kind: command\n    command: ["true"]\n'


def command(extra: str = "", argv: str = '["true"]') -> str:
    """A one-process manifest with ``extra`` lines added to the process (4 spaces deep)."""
    return f"version: 1\nprocesses:\n  p:\n    kind: command\n    command: {argv}\n{extra}"


BOMB = "version: 1\n" + "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10)
) + "processes: {}\n"


@dataclass(frozen=True)
class Case:
    name: str
    #: Builds the input under the workspace root; returns extra CLI args.
    setup: Callable[[Path], list[str]]
    exit_code: int
    #: Words the stderr line (exit 2) or the report's blockers (exit 1) must contain.
    expect: str = ""
    env: dict[str, str] = field(default_factory=dict)


def manifest(text: str | bytes, name: str = "m.yml") -> Callable[[Path], list[str]]:
    def setup(root: Path) -> list[str]:
        data = text.encode("utf-8") if isinstance(text, str) else text
        (root / name).write_bytes(data)
        return ["--manifest", name]

    return setup


def path_as_manifest(make: Callable[[Path], str]) -> Callable[[Path], list[str]]:
    def setup(root: Path) -> list[str]:
        return ["--manifest", make(root)]

    return setup


def _fifo(root: Path) -> str:
    os.mkfifo(root / "fifo.yml")
    return "fifo.yml"


def _dir(root: Path) -> str:
    (root / "dir.yml").mkdir()
    return "dir.yml"


def with_args(*args: str) -> Callable[[Path], list[str]]:
    def setup(root: Path) -> list[str]:
        (root / "m.yml").write_text(OK_PROCESS)
        return ["--manifest", "m.yml", *args]

    return setup


def state_file(make: Callable[[Path], None]) -> Callable[[Path], list[str]]:
    """A valid manifest, run id ``r``, and a state file made by ``make``."""

    def setup(root: Path) -> list[str]:
        (root / "m.yml").write_text(OK_PROCESS)
        (root / "S").mkdir()
        make(root / "S" / f"{file_safe_name('r')}.job_state.json")
        return ["--manifest", "m.yml"]

    return setup


def _unreadable(path: Path) -> None:
    path.write_text("{")
    path.chmod(0)


def lock_dir_file(root: Path) -> list[str]:
    (root / "m.yml").write_text(OK_PROCESS)
    (root / "L").write_text("not a directory")
    return ["--manifest", "m.yml"]


def lock_symlink(suffix: str) -> Callable[[Path], list[str]]:
    def setup(root: Path) -> list[str]:
        (root / "m.yml").write_text(OK_PROCESS)
        (root / "L").mkdir()
        (root / "L" / f"{file_safe_name('r')}{suffix}").symlink_to(root / "outside-target")
        return ["--manifest", "m.yml"]

    return setup


CASES = [
    # --- the file itself
    Case("missing_file", path_as_manifest(lambda r: "nope.yml"), 2, "file not found"),
    Case("directory", path_as_manifest(_dir), 2, "is a directory"),
    Case("fifo", path_as_manifest(_fifo), 2, "not a regular file"),
    Case("dev_zero", path_as_manifest(lambda r: "/dev/zero"), 2, "not a regular file"),
    Case("empty_file", manifest(""), 2, "empty"),
    Case("comments_only", manifest("# nothing\n"), 2, "empty"),
    Case("huge_file", manifest("#" * (2 * 1024 * 1024) + "\n"), 2, "at most 1048576 bytes"),
    Case("non_utf8", manifest(b"version: 1\n\xff\xfe: x\n"), 2, "UTF-8"),
    Case("nul_in_text", manifest(b"version: 1\x00\n"), 2, "invalid YAML"),
    # --- YAML structure
    Case("malformed_yaml", manifest("version: 1\nprocesses: [\n"), 2, "invalid YAML"),
    Case("bad_indent", manifest("version: 1\n processes:\n  - a: b: c\n"), 2, "invalid YAML"),
    Case("duplicate_top_key", manifest("version: 1\nversion: 1\n"), 2, "duplicate key"),
    Case("duplicate_process", manifest(OK_PROCESS + "  p:\n    kind: command\n"), 2, "duplicate"),
    Case("alias_bomb", manifest(BOMB), 2, "after expanding aliases"),
    Case("alias_recursive", manifest("version: 1\na: &a [*a]\n"), 2, "own anchor"),
    Case(
        "many_aliases",
        manifest("version: 1\nx: &x 1\nl: [" + ", ".join(["*x"] * 2000) + "]\n"),
        2,
        "at most 1000 aliases",
    ),
    Case("deep_flow_10k", manifest("a: " + "[" * 10000 + "]" * 10000 + "\n"), 2, "nesting"),
    Case(
        "deep_block_10k",
        manifest("- " * 10000 + "x\n"),
        2,
        "nesting",
    ),
    Case("deep_100", manifest("version: 1\na: " + "[" * 100 + "]" * 100 + "\n"), 2, "levels"),
    Case("unhashable_key", manifest("version: 1\n? [1]\n: x\n"), 2, "unhashable"),
    Case("python_tag", manifest("version: 1\nx: !!python/object:os.system {}\n"), 2, "constructor"),
    Case("invalid_timestamp", manifest(command("    description: 2026-13-45\n")), 2, "month"),
    Case("int_5000_digits", manifest("version: " + "1" * 5000 + "\n"), 2, "digits"),
    # --- wrong types and unknown keys at every level
    Case("top_level_list", manifest("- 1\n- 2\n"), 2, "expected a mapping"),
    Case("top_level_scalar", manifest("hello\n"), 2, "expected a mapping"),
    Case("version_string", manifest('version: "1"\nprocesses: {p: {}}\n'), 2, "version"),
    Case("version_2", manifest(OK_PROCESS.replace("version: 1", "version: 2")), 2, "version"),
    Case("processes_list", manifest("version: 1\nprocesses: [a]\n"), 2, "expected a mapping"),
    Case("processes_empty", manifest("version: 1\nprocesses: {}\n"), 2, "at least one"),
    Case("process_scalar", manifest("version: 1\nprocesses: {p: 3}\n"), 2, "processes.p"),
    Case("kind_unknown", manifest(OK_PROCESS.replace("command\n", "shell\n", 1)), 2, "kind"),
    Case("command_string", manifest(command(argv='"echo hi"')), 2, "expected a list"),
    Case("command_ints", manifest(command(argv="[1, 2]")), 2, "expected a string"),
    Case("command_empty", manifest(command(argv="[]")), 2, "non-empty"),
    Case("timeout_negative", manifest(command("    timeout_seconds: -1\n")), 2, "greater than"),
    Case("timeout_text", manifest(command("    timeout_seconds: soon\n")), 2, "number"),
    Case("env_list", manifest(command("    env: [A]\n")), 2, "expected a mapping"),
    Case("env_int_value", manifest(command("    env: {A: 1}\n")), 2, "expected a string"),
    Case("env_name_equals", manifest(command('    env: {"A=B": x}\n')), 2, "'='"),
    Case("env_name_empty", manifest(command('    env: {"": x}\n')), 2, "non-empty"),
    Case("env_name_nul", manifest(command('    env: {"A\\0B": x}\n')), 2, "NUL"),
    Case("env_value_nul", manifest(command('    env: {A: "x\\0y"}\n')), 2, "NUL"),
    Case("argv_nul", manifest(command(argv='["echo", "a\\0b"]')), 2, "command[1]"),
    Case("cwd_nul", manifest(command('    cwd: "a\\0b"\n')), 2, "NUL"),
    Case("unknown_top_key", manifest(OK_PROCESS + "extra: 1\n"), 2, "unknown field"),
    Case("unknown_process_key", manifest(command("    retries: 3\n")), 2, "unknown field"),
    Case("key_10k_chars", manifest(command(f"    ? {'k' * 10000}\n    : 1\n")), 2, "unknown"),
    Case("key_with_newline_esc", manifest(command('    "a\\nb\\e[31m": 1\n')), 2, "a\\nb\\x1b"),
    # --- interpolation
    Case("var_without_default", manifest(command("    cwd: ${DPONE_HOSTILE_NO}\n")), 2, "not set"),
    Case("var_unclosed", manifest(command("    cwd: ${DPONE_HOSTILE\n")), 2, "$$"),
    Case("var_bad_name", manifest(command("    cwd: ${1BAD}\n")), 2, "${VAR}"),
    Case(
        "var_recursive_looking",
        manifest(command("    timeout_seconds: ${DPONE_HOSTILE_SELF}\n")),
        2,
        "expected a number",  # the value is used once, never expanded again
        env={"DPONE_HOSTILE_SELF": "${DPONE_HOSTILE_SELF}"},
    ),
    Case(
        "var_nested_default",
        manifest(command("    timeout_seconds: ${DPONE_HOSTILE_UNSET:-${DPONE_HOSTILE_UNSET}}\n")),
        2,
        "expected a number",
    ),
    # --- CLI values
    Case("selector_unknown", with_args("--selector", "nope"), 2, "available selectors"),
    Case("selector_empty", with_args("--selector", ""), 2, "must not be empty"),
    Case("run_id_blank", with_args("--run-id", "  "), 2, "must not be empty"),
    Case("run_id_slash", with_args("--run-id", "a/b"), 0),
    Case("run_id_dotdot", with_args("--run-id", ".."), 0),
    Case("run_id_10k", with_args("--run-id", "x" * 10000), 0),
    Case("key_slash_dotdot", with_args("--concurrency-key", "../../etc/passwd"), 0),
    Case("key_newline", with_args("--concurrency-key", "a\nb"), 0),
    Case("key_10k", with_args("--concurrency-key", "/" * 10000), 0),
    Case("key_nul_in_manifest", manifest(command('    concurrency_key: "a\\0b"\n')), 2, "NUL"),
    Case("key_dotdot_in_manifest", manifest(command("    concurrency_key: ../..\n")), 0),
    Case(
        "selector_nul_in_manifest",
        manifest('version: 1\nprocesses:\n  "p\\0": {kind: command, command: ["true"]}\n'),
        2,
        "process name",
    ),
    # --- state and lock directories
    Case("state_corrupt", state_file(lambda p: p.write_text("{")), 1, "job_state.corrupt"),
    Case("state_empty", state_file(lambda p: p.write_text("")), 1, "job_state.corrupt"),
    Case("state_directory", state_file(lambda p: p.mkdir()), 1, "job_state.corrupt"),
    Case("state_unreadable", state_file(_unreadable), 1, "job_state.corrupt"),
    Case("lock_dir_is_file", lock_dir_file, 2, "Not a directory"),
    Case("lock_file_symlink", lock_symlink(".lock"), 1, "lock.corrupt"),
    Case("lock_record_symlink", lock_symlink(".lock.json"), 1, "lock.corrupt"),
]
