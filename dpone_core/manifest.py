"""Manifest models (pydantic) and loading (PyYAML): the format of docs/manifests.md.

A manifest is user input that schedulers feed us unattended, so every problem
with it must surface as one :class:`~dpone_core.errors.ManifestError` line that
names the file, the field and what was expected -- never a traceback, and never
a secret. Loading therefore goes: read bytes (hash them for evidence), parse
YAML with a safe loader, interpolate ``${VAR}`` references (registering secret
values with :mod:`dpone_core.redact` before anything can print them), then
validate with pydantic and translate the first validation error.

This module must stay cheap to import: ``dpone --help`` imports it indirectly,
so SQLAlchemy and the process kinds are never imported here.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from dpone_core.errors import ManifestError
from dpone_core.file_cache import FileCache
from dpone_core.redact import (
    is_secret_env_name,
    redact,
    register_secret,
    register_url_secrets,
)
from dpone_core.schedule import check_schedule
from dpone_core.text import escape_control

__all__ = [
    "CommandProcess",
    "LoadedManifest",
    "Manifest",
    "PartitionsSpec",
    "ProcessSpec",
    "SourceSpec",
    "StrategySpec",
    "TargetSpec",
    "TransferProcess",
    "is_secret_name",
    "load_manifest",
    "resolved_connection",
    "resolved_connections",
]

#: Variable names containing one of these words hold secrets even when not listed in ``secrets:``.

_CUSTOM_ERROR = "dpone_manifest"


def is_secret_name(name: str, declared: frozenset[str] | set[str] = frozenset()) -> bool:
    """Whether the value of environment variable ``name`` must be treated as secret:
    listed under ``secrets:``, or secret-like by the one name rule of
    :func:`dpone_core.redact.is_secret_env_name`."""
    return name in declared or is_secret_env_name(name)


def _custom_error(path: tuple[str | int, ...], message: str) -> PydanticCustomError:
    """A validation error whose field path is ``path`` relative to the validated model.

    Model-level validators can only fail at the model's own location; carrying the
    intended sub-path in the context lets :func:`_translate` name the precise field.
    """
    return PydanticCustomError(_CUSTOM_ERROR, "{message}", {"message": message, "path": path})


class _Strict(BaseModel):
    """Base of every manifest model: unknown fields are errors that list the known ones.

    ``extra="forbid"`` alone says "extra inputs are not permitted"; rejecting unknown
    keys up front lets the error say which fields *are* accepted (typos are the usual
    cause), while ``extra="forbid"`` stays as the backstop for non-dict inputs.
    """

    # Frozen: a loaded manifest is shared by every run of this process (load_manifest's cache).
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            known = set(cls.model_fields)
            unknown = [key for key in data if key not in known]
            if unknown:
                allowed = ", ".join(cls.model_fields)
                first = unknown[0]
                more = f" (and {len(unknown) - 1} more unknown)" if len(unknown) > 1 else ""
                raise _custom_error(
                    (str(first),),
                    f"unknown field; expected one of: {allowed}{more}{cls._unknown_hint(first)}",
                )
        return data

    @classmethod
    def _unknown_hint(cls, field: Any) -> str:
        return ""


class SourceSpec(_Strict):
    """Where a transfer reads: a table or a query on a named connection (exactly one)."""

    connection: str
    table: str | None = None
    query: str | None = None

    @model_validator(mode="after")
    def _table_xor_query(self) -> SourceSpec:
        if (self.table is None) == (self.query is None):
            raise _custom_error(
                (),
                "expected exactly one of 'table' or 'query'"
                + (" (got both)" if self.table is not None else " (got neither)"),
            )
        return self


class TargetSpec(_Strict):
    """Where a transfer writes; ``table`` may be ``schema.table``."""

    connection: str
    table: str


class StrategySpec(_Strict):
    """How rows reach the target (docs/manifests.md describes the modes)."""

    mode: Literal["replace", "append", "merge", "incremental"] = "append"
    key: list[str] = Field(default_factory=list)
    cursor: str | None = None
    #: What an incremental load does with source rows whose cursor is NULL (no watermark
    #: can track them): ``error`` fails the load, ``include`` merges them on every load
    #: (needs a key), ``skip`` leaves them out on purpose.
    null_cursor: Literal["error", "include", "skip"] = "error"

    @field_validator("key", mode="before")
    @classmethod
    def _key_as_list(cls, value: Any) -> Any:
        # ``key: order_id`` is the natural spelling for a single-column key.
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _mode_requirements(self) -> StrategySpec:
        if self.mode == "merge" and not self.key:
            raise _custom_error(
                ("key",), "mode 'merge' requires a non-empty key (the upsert columns)"
            )
        if self.mode == "incremental" and not self.cursor:
            raise _custom_error(
                ("cursor",), "mode 'incremental' requires a cursor column (the watermark)"
            )
        if self.mode == "incremental" and self.null_cursor == "include" and not self.key:
            raise _custom_error(
                ("null_cursor",),
                "'include' requires a key: rows with a NULL cursor are read on every load, "
                "so without a key to merge on they would be appended again each time",
            )
        return self


def _iso(value: str, field: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise _custom_error(
            (field,), f"expected an ISO-8601 date or datetime (got {value!r})"
        ) from None


class PartitionsSpec(_Strict):
    """A time-partitioned process: one run per day or hour from ``start`` (to ``end``)."""

    granularity: Literal["daily", "hourly"]
    start: str
    end: str | None = None

    @field_validator("start", "end", mode="before")
    @classmethod
    def _dates_as_text(cls, value: Any) -> Any:
        # YAML turns an unquoted 2026-01-01 into a date; keep the ISO text the user wrote.
        if isinstance(value, datetime | date):
            return value.isoformat()
        return value

    @model_validator(mode="after")
    def _valid_window(self) -> PartitionsSpec:
        start = _iso(self.start, "start")
        if self.end is not None:
            end = _iso(self.end, "end")
            if (end.tzinfo is None) == (start.tzinfo is None) and end <= start:
                raise _custom_error(("end",), f"expected a time after start {self.start!r}")
        return self


class _ProcessBase(_Strict):
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    owners: list[str] = Field(default_factory=list)
    partitions: PartitionsSpec | None = None
    concurrency_key: str | None = None
    #: When schedulers run it (cron syntax, UTC): carried into every scheduler handoff.
    schedule: str | None = None
    #: Tables this process reads besides a transfer's ``source.table``, as
    #: ``<connection>.<table>`` (``<connection>.<schema>.<table>``): lineage for
    #: ``query:`` sources and commands.
    deps: list[str] = Field(default_factory=list)

    @field_validator("concurrency_key")
    @classmethod
    def _key_on_a_command_line(cls, value: str | None) -> str | None:
        # The key is rendered into scheduler handoffs' command lines, which cannot carry NUL.
        if value is not None and "\0" in value:
            raise _custom_error((), "expected a key without NUL characters")
        return value

    @field_validator("schedule")
    @classmethod
    def _cron_schedule(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return check_schedule(value)
        except ValueError as exc:
            raise _custom_error((), str(exc)) from None

    @field_validator("deps")
    @classmethod
    def _deps_name_tables(cls, value: list[str]) -> list[str]:
        for index, dep in enumerate(value):
            parts = dep.split(".")
            if len(parts) < 2 or not all(part.strip() for part in parts):
                raise _custom_error(
                    (index,), f"expected '<connection>.<table>' (got {dep!r})"
                )
        return value

    def dep_tables(self) -> list[tuple[str, str]]:
        """``(connection, table)`` of every declared dependency."""
        pairs = []
        for dep in self.deps:
            connection, table = dep.split(".", 1)
            pairs.append((connection, table))
        return pairs


class TransferProcess(_ProcessBase):
    """Copy rows from a source table/query into a target table."""

    kind: Literal["transfer"] = "transfer"
    source: SourceSpec
    target: TargetSpec
    strategy: StrategySpec = Field(default_factory=StrategySpec)
    batch_size: int = Field(default=10000, gt=0)
    #: Longest wait for a lock (PostgreSQL ``lock_timeout``, SQLite busy timeout).
    lock_timeout_seconds: float | None = Field(default=None, gt=0)
    #: Longest run of one statement (PostgreSQL ``statement_timeout``).
    statement_timeout_seconds: float | None = Field(default=None, gt=0)

    @classmethod
    def _unknown_hint(cls, field: Any) -> str:
        # ``kind`` defaults to transfer, so a command process without ``kind`` lands here.
        return "; set 'kind: command' for a command process" if field == "command" else ""


class CommandProcess(_ProcessBase):
    """Run an argv (no shell); passes iff it exits 0."""

    kind: Literal["command"]
    command: list[str] = Field(min_length=1)
    timeout_seconds: float | None = Field(default=None, gt=0)
    cwd: str | None = None
    env: dict[str, str] = Field(default_factory=dict)

    # What the OS would refuse at spawn time is refused here, before admission:
    # a manifest the kernel cannot execute must never be recorded as a failed attempt.

    @field_validator("command")
    @classmethod
    def _argv_without_nul(cls, value: list[str]) -> list[str]:
        for index, arg in enumerate(value):
            if "\0" in arg:
                raise _custom_error((index,), "expected an argument without NUL characters")
        return value

    @field_validator("cwd")
    @classmethod
    def _cwd_without_nul(cls, value: str | None) -> str | None:
        if value is not None and "\0" in value:
            raise _custom_error((), "expected a directory path without NUL characters")
        return value

    @field_validator("env")
    @classmethod
    def _env_the_os_accepts(cls, value: dict[str, str]) -> dict[str, str]:
        for name, item in value.items():
            if not name or "=" in name or "\0" in name:
                raise _custom_error(
                    (name,),
                    "expected a non-empty variable name without '=' or NUL characters "
                    f"(got {name!r})",
                )
            if "\0" in item:
                raise _custom_error((name,), "expected a value without NUL characters")
        return value


def _process_kind(value: Any) -> Any:
    """Discriminator that treats a missing ``kind`` as ``transfer`` (the documented default)."""
    if isinstance(value, dict):
        return value.get("kind", "transfer")
    return getattr(value, "kind", None)


ProcessSpec = Annotated[
    Annotated[TransferProcess, Tag("transfer")] | Annotated[CommandProcess, Tag("command")],
    Discriminator(_process_kind),
]
_PROCESS_TAGS = ("transfer", "command")


class Manifest(_Strict):
    """A whole manifest file."""

    version: Literal[1]
    secrets: list[str] = Field(default_factory=list)
    connections: dict[str, str] = Field(default_factory=dict)
    processes: dict[str, ProcessSpec] = Field(min_length=1)

    @field_validator("processes", mode="before")
    @classmethod
    def _selectors_on_a_command_line(cls, value: Any) -> Any:
        # A process name is the --selector of scheduler handoffs: no NUL, not empty.
        if isinstance(value, dict):
            for name in value:
                if isinstance(name, str) and (not name.strip() or "\0" in name):
                    raise _custom_error(
                        (name,), "expected a process name that is not blank and has no NUL"
                    )
        return value

    @model_validator(mode="after")
    def _connections_exist(self) -> Manifest:
        available = ", ".join(repr(name) for name in self.connections) or "(none defined)"
        for name, process in self.processes.items():
            for index, (connection, _table) in enumerate(process.dep_tables()):
                if connection not in self.connections:
                    raise _custom_error(
                        ("processes", name, "deps", index),
                        f"expected the name of a connection under 'connections': {available} "
                        f"(got {connection!r})",
                    )
            if not isinstance(process, TransferProcess):
                continue
            for side, spec in (("source", process.source), ("target", process.target)):
                if spec.connection not in self.connections:
                    raise _custom_error(
                        ("processes", name, side, "connection"),
                        f"expected the name of a connection under 'connections': {available} "
                        f"(got {spec.connection!r})",
                    )
        return self


#: How :meth:`LoadedManifest.environment_needed` marks a variable that may be unset.
OPTIONAL_ENV = "optional: "


@dataclass(frozen=True)
class LoadedManifest:
    """A validated manifest plus where it came from (``path`` is absolute) and its hash."""

    path: Path
    manifest: Manifest
    sha256: str
    #: Every ``${VAR}`` the manifest references, as ``NAME`` or, when every reference
    #: has a default (``${NAME:-x}``), ``NAME:-`` (names only, never values).
    env_references: frozenset[str] = frozenset()
    #: Process name -> 1-based line of its key in the file (code references in Dagster),
    #: read from the same parse that built ``manifest``.
    process_lines: Mapping[str, int] = field(default_factory=dict)

    def environment_needed(self) -> dict[str, str]:
        """Variables a scheduler must provide, name -> why (declared secrets included)."""
        required = {ref for ref in self.env_references if not ref.endswith(":-")}
        optional = {ref[:-2] for ref in self.env_references if ref.endswith(":-")} - required
        needed = {name: "referenced by the manifest" for name in sorted(required)}
        for name in sorted(optional):
            needed[name] = OPTIONAL_ENV + "referenced by the manifest, which has a default"
        for name in self.manifest.secrets:
            needed[name] = "a secret the manifest declares"
        return needed

    def select(self, selector: str | None) -> tuple[str, ProcessSpec]:
        """Resolve ``--selector``; it may be omitted only when there is one process."""
        processes = self.manifest.processes
        names = ", ".join(repr(name) for name in processes)
        if selector is None:
            if len(processes) == 1:
                name, process = next(iter(processes.items()))
                return name, process
            raise ManifestError(
                str(self.path),
                "processes",
                f"the manifest has {len(processes)} processes; pass a selector, one of: {names}",
            )
        if selector not in processes:
            raise ManifestError(
                str(self.path),
                "processes",
                f"no process named {selector!r}; available selectors: {names}",
            )
        return selector, processes[selector]


# --------------------------------------------------------------------------- loading


try:  # libyaml parses ~10x faster; the manifest is read on every run
    from yaml import CSafeLoader as _SafeLoaderBase
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoaderBase  # type: ignore[assignment]


class _SafeUniqueKeyLoader(_SafeLoaderBase):
    """``SafeLoader`` that rejects duplicate mapping keys.

    Plain ``yaml.safe_load`` keeps the last duplicate silently, so a copy-pasted
    process would quietly replace another one. Construction stays the safe subset.
    """


def _construct_unique_mapping(loader: _SafeLoaderBase, node: yaml.MappingNode) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:  # unhashable key; the base constructor reports it
            continue
        if duplicate:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", mark)
    return loader.construct_mapping(node, deep=True)


_SafeUniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


#: Limits of what a manifest may be (docs/manifests.md, "Limits"). A manifest is
#: read on every scheduler tick, unattended: hostile or broken input must fail in
#: bounded time and memory, as one line, before anything is admitted.
MAX_MANIFEST_BYTES = 1024 * 1024
#: YAML nodes after expanding every alias (``*name``): a "billion laughs" file of
#: 700 bytes expands to ~10^9 nodes; real manifests have a few hundred.
MAX_EXPANDED_NODES = 100_000
#: Characters of scalar text after expanding every alias.
MAX_EXPANDED_CHARS = 8 * 1024 * 1024
#: Alias uses (``*name``, including ``<<: *name`` merges).
MAX_ALIASES = 1_000
#: Nesting depth of mappings and lists (libyaml itself stops at 1000).
MAX_DEPTH = 64


def _read(path: Path, display: str) -> tuple[bytes, os.stat_result]:
    """The file's bytes and ``fstat``, refusing anything but a regular file of at most
    MAX_MANIFEST_BYTES.

    Opened non-blocking and checked with ``fstat`` on the opened descriptor, so a
    FIFO never blocks the read (nor a swap between check and read fool it), and a
    device such as ``/dev/zero`` is refused instead of read for ever.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ManifestError(display, "", "file not found; expected a manifest YAML file") from None
    except IsADirectoryError:
        raise ManifestError(display, "", "is a directory; expected a manifest YAML file") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ManifestError(display, "", f"cannot read the file ({reason})") from None
    try:
        return _read_regular(fd, display)
    finally:
        os.close(fd)


def _too_big(display: str, size: str) -> ManifestError:
    return ManifestError(
        display, "", f"is {size}; expected a manifest of at most {MAX_MANIFEST_BYTES} bytes (1 MiB)"
    )


def _read_regular(fd: int, display: str) -> tuple[bytes, os.stat_result]:
    st = os.fstat(fd)
    if stat.S_ISDIR(st.st_mode):
        raise ManifestError(display, "", "is a directory; expected a manifest YAML file")
    if not stat.S_ISREG(st.st_mode):
        raise ManifestError(
            display,
            "",
            "is not a regular file (a FIFO, device or socket); expected a manifest YAML file",
        )
    if st.st_size > MAX_MANIFEST_BYTES:
        raise _too_big(display, f"{st.st_size} bytes")
    chunks: list[bytes] = []
    total = 0
    try:
        while total <= MAX_MANIFEST_BYTES:  # the size may grow while we read
            chunk = os.read(fd, MAX_MANIFEST_BYTES + 1 - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as exc:
        raise ManifestError(
            display, "", f"cannot read the file ({exc.strerror or type(exc).__name__})"
        ) from None
    if total > MAX_MANIFEST_BYTES:
        raise _too_big(display, "larger")
    return b"".join(chunks), st


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _graph_error(display: str, node: yaml.Node, expected: str) -> ManifestError:
    mark = node.start_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return ManifestError(display, where, expected)


def _plain_tree_within_limits(root: yaml.Node) -> bool:
    """True when a graph without aliases is well inside every limit.

    A manifest without an anchor (``&``) composes to a plain tree, so measuring it
    needs no memo of shared nodes: one cheap pass over its nodes. Anything near a
    limit returns False and goes through the exact measurement, which names the
    offending node.
    """
    nodes = chars = 0
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if depth >= MAX_DEPTH or nodes >= MAX_EXPANDED_NODES:
            return False
        if isinstance(node, yaml.ScalarNode):
            chars += len(node.value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.append((key, depth + 1))
                stack.append((value, depth + 1))
    return chars < MAX_EXPANDED_CHARS


class _GraphSize:
    """Sizes of a composed YAML graph as if every alias were expanded, without expanding it.

    Aliases make the graph a DAG (or, for an alias inside its own anchor, a
    cycle); each node's expanded size is computed once and reused, so checking
    a billion-laughs file costs as much as its few dozen nodes.
    """

    def __init__(self, display: str) -> None:
        self.display = display
        self.sizes: dict[int, tuple[int, int, int]] = {}  # id -> (nodes, chars, depth)
        self.aliases = 0

    def check(self, root: yaml.Node, text: str) -> None:
        if "&" not in text and _plain_tree_within_limits(root):
            return  # no anchor, so no alias: the tree is what gets built, and it is small
        on_path = {id(root)}
        stack = [(root, iter(_children(root)))]
        while stack:
            node, pending = stack[-1]
            child = next(pending, None)
            if child is None:
                stack.pop()
                on_path.discard(id(node))
                self._measure(node)
            elif id(child) in on_path:
                raise _graph_error(
                    self.display, child, "an alias refers to its own anchor; expected no recursion"
                )
            elif id(child) in self.sizes:
                self.aliases += 1
                if self.aliases > MAX_ALIASES:
                    raise _graph_error(
                        self.display, child, f"expected at most {MAX_ALIASES} aliases (*name)"
                    )
            else:
                if len(stack) >= MAX_DEPTH:
                    raise _graph_error(
                        self.display, child, f"expected at most {MAX_DEPTH} levels of nesting"
                    )
                on_path.add(id(child))
                stack.append((child, iter(_children(child))))

    def _measure(self, node: yaml.Node) -> None:
        nodes, depth = 1, 1
        chars = len(node.value) if isinstance(node, yaml.ScalarNode) else 0
        for child in _children(node):
            c_nodes, c_chars, c_depth = self.sizes[id(child)]
            nodes, chars, depth = nodes + c_nodes, chars + c_chars, max(depth, c_depth + 1)
        if nodes > MAX_EXPANDED_NODES:
            raise _graph_error(
                self.display,
                node,
                f"expected at most {MAX_EXPANDED_NODES} YAML values after expanding aliases "
                "(an alias bomb?)",
            )
        if chars > MAX_EXPANDED_CHARS:
            raise _graph_error(
                self.display,
                node,
                f"expected at most {MAX_EXPANDED_CHARS} characters of text after expanding aliases",
            )
        if depth > MAX_DEPTH:
            raise _graph_error(
                self.display, node, f"expected at most {MAX_DEPTH} levels of nesting"
            )
        self.sizes[id(node)] = (nodes, chars, depth)


def _lines_of_processes(root: yaml.Node) -> dict[str, int]:
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if key.value == "processes" and isinstance(value, yaml.MappingNode):
                return {str(k.value): k.start_mark.line + 1 for k, _ in value.value}
    return {}


def _compose_and_construct(text: str, display: str) -> tuple[Any, dict[str, int]]:
    """Compose the node graph, bound it, and only then build Python objects from it.

    Also returns each process's line, read off the composed graph's marks.
    """
    loader = _SafeUniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        _GraphSize(display).check(node, text)
        try:
            return loader.construct_document(node), _lines_of_processes(node)
        except (ValueError, OverflowError, TypeError, RecursionError) as exc:
            # e.g. 2026-13-45 resolves as a timestamp; 5000 digits exceed int()'s limit
            problem = " ".join(str(exc).split())[:200]
            raise ManifestError(display, "", f"invalid YAML value: {problem}") from None
    finally:
        loader.dispose()


def _parse_yaml(data: bytes, display: str) -> tuple[Any, dict[str, int]]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(
            display, "", f"expected UTF-8 text (invalid byte at offset {exc.start})"
        ) from None
    try:
        return _compose_and_construct(text, display)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(str(exc.problem or exc.context or "malformed YAML").split())
        raise ManifestError(display, where, f"invalid YAML: {escape_control(problem)}") from None
    except yaml.YAMLError as exc:
        problem = " ".join(str(exc).split())
        raise ManifestError(display, "", f"invalid YAML: {escape_control(problem)}") from None


_PathPart = str | int


def _format_path(parts: tuple[Any, ...] | list[Any]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            shown = escape_control(str(part))  # a key with a newline must not forge a line
            out += f".{shown}" if out else shown
    return out


# ``$$`` | ``${...}`` | a ``${`` that never closes
_REFERENCE = re.compile(r"\$(?:(?P<dollar>\$)|\{(?P<body>[^}]*)\}|(?P<open>\{))")
_BODY = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.DOTALL)


def _interpolate_text(
    text: str, path: list[_PathPart], display: str, declared: frozenset[str], seen: set[str]
) -> str:
    def replace(match: re.Match[str]) -> str:
        if match["dollar"]:
            return "$"
        body = match["body"]
        parsed = _BODY.fullmatch(body) if body is not None else None
        if parsed is None:
            shown = match.group(0) if body is not None else text[match.start() :]
            raise ManifestError(
                display,
                _format_path(path),
                f"expected ${{VAR}} or ${{VAR:-default}} (got {shown[:40]!r}); "
                "write $$ for a literal $",
            )
        name, default = parsed["name"], parsed["default"]
        seen.add(name if default is None else f"{name}:-")
        value = os.environ.get(name)
        if not value and default is not None:
            value = default  # shell semantics: ``:-`` also replaces an empty value
        if value is None:
            raise ManifestError(
                display,
                _format_path(path),
                f"environment variable {name} is not set (set it or write ${{{name}:-default}})",
            )
        if is_secret_name(name, declared):
            register_secret(value)
        return value

    return _REFERENCE.sub(replace, text)


def _interpolate(
    value: Any, path: list[_PathPart], display: str, declared: frozenset[str], seen: set[str]
) -> Any:
    """Apply ``${VAR}`` interpolation to every string value (keys are left alone).

    ``seen`` collects every variable name referenced: what a scheduler must provide.
    """
    if isinstance(value, str):
        return _interpolate_text(value, path, display, declared, seen) if "$" in value else value
    if isinstance(value, dict):
        return {
            key: _interpolate(item, [*path, key], display, declared, seen)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [
            _interpolate(item, [*path, i], display, declared, seen) for i, item in enumerate(value)
        ]
    return value


def _declared_secrets(raw: dict[Any, Any]) -> frozenset[str]:
    names = raw.get("secrets")
    if not isinstance(names, list):
        return frozenset()  # validation reports the wrong type later
    return frozenset(name for name in names if isinstance(name, str))


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    if value is None:
        return "nothing"
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


_SIMPLE_EXPECTATIONS = {
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "union_tag_not_found": "expected a mapping",
    "list_type": "expected a list",
    "string_type": "expected a string",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
}


def _one_of(expected: str) -> str:
    """Pydantic renders literals as ``'a', 'b' or 'c'``; we say ``one of 'a', 'b', 'c'``."""
    head, sep, last = expected.rpartition(" or ")
    return f"one of {head}, {last}" if sep else expected


def _translate_error(error: Any) -> tuple[str, str]:
    """Map one pydantic error to ``(field path, expectation)``."""
    loc = list(error["loc"])
    # Tagged unions put the tag into the location: processes.<name>.<tag>.field.
    if len(loc) >= 3 and loc[0] == "processes" and loc[2] in _PROCESS_TAGS:
        del loc[2]
    kind = error["type"]
    ctx = error.get("ctx") or {}
    got = f" (got {_describe(error.get('input'))})"
    if loc and loc[-1] == "[key]":  # a mapping key of the wrong type
        return _format_path(loc[:-2]), f"expected string keys (got key {_describe(loc[-2])})"
    if kind == _CUSTOM_ERROR:
        return _format_path([*loc, *ctx["path"]]), str(ctx["message"])
    if kind == "missing":
        return _format_path(loc), "required field is missing"
    if kind == "extra_forbidden":
        return _format_path(loc), "unknown field"
    if kind == "literal_error":
        return _format_path(loc), f"expected {_one_of(str(ctx['expected']))}{got}"
    if kind == "union_tag_invalid":
        tag = _describe(error["input"].get("kind")) if isinstance(error["input"], dict) else ""
        tags = ", ".join(repr(tag) for tag in _PROCESS_TAGS)
        return _format_path([*loc, "kind"]), f"expected one of {tags} (got {tag})"
    if kind == "too_short":
        count = ctx.get("min_length", 1)
        if loc == ["processes"]:
            return "processes", "expected at least one process"
        if count == 1:
            return _format_path(loc), f"expected a non-empty list{got}"
        return _format_path(loc), f"expected at least {count} items{got}"
    if kind in ("greater_than", "greater_than_equal"):
        word = "greater than" if kind == "greater_than" else "at least"
        bound = ctx.get("gt", ctx.get("ge"))
        shown = f"{bound:g}" if isinstance(bound, int | float) else str(bound)
        return _format_path(loc), f"expected a number {word} {shown}{got}"
    if kind in _SIMPLE_EXPECTATIONS:
        return _format_path(loc), _SIMPLE_EXPECTATIONS[kind] + got
    message = str(error.get("msg", kind))
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if message.startswith("Input should be "):
        message = "expected " + message.removeprefix("Input should be ") + got
    return _format_path(loc), message


def _manifest_error(display: str, exc: ValidationError) -> ManifestError:
    errors = exc.errors()
    field, expected = _translate_error(errors[0])
    if len(errors) > 1:
        more = len(errors) - 1
        expected += f" (and {more} more problem{'s' if more > 1 else ''})"
    return ManifestError(display, field, redact(" ".join(expected.split())))


def _register_env_secrets(manifest: Manifest) -> None:
    """Mask secrets the manifest declares or hands to commands, wherever they come from.

    A command inherits the environment, so a declared secret can be echoed even if the
    manifest never references it; command ``env:`` entries with secret-looking names are
    secrets too.
    """
    declared = frozenset(manifest.secrets)
    for name in declared:
        value = os.environ.get(name)
        if value:
            register_secret(value)
    for process in manifest.processes.values():
        if isinstance(process, CommandProcess):
            for name, value in process.env.items():
                if is_secret_name(name, declared):
                    register_secret(value)


#: Loaded manifests of this process, reused while the file and the environment
#: variables it references are unchanged (docs/performance.md, "Per-run work").
_LOADED: FileCache[LoadedManifest] = FileCache()


def load_manifest(path: str | os.PathLike[str]) -> LoadedManifest:
    """Read, interpolate and validate a manifest; every problem is a one-line ManifestError.

    A file loaded before and unchanged since (same inode, size, mtime and ctime,
    settled for two seconds, same values of the variables it references) is not
    parsed again: the first load's result is returned, its secrets registered again.
    """
    cached = _LOADED.get(os.fspath(path))
    if cached is not None:
        _register_env_secrets(cached.manifest)
        return cached
    loaded, st = _load_uncached(path)
    _LOADED.put(os.fspath(path), st, loaded, _environment_inputs(loaded))
    return loaded


def _environment_inputs(loaded: LoadedManifest) -> set[str]:
    """The variables a load read: every ``${VAR}`` and every declared secret."""
    names = {ref.removesuffix(":-") for ref in loaded.env_references}
    return names | set(loaded.manifest.secrets)


def _load_uncached(path: str | os.PathLike[str]) -> tuple[LoadedManifest, os.stat_result]:
    file = Path(os.fspath(path))
    display = escape_control(os.fspath(path))
    data, st = _read(file, display)
    raw, lines = _parse_yaml(data, display)
    if raw is None:
        raise ManifestError(display, "", "the file is empty; expected a mapping with 'version: 1'")
    if not isinstance(raw, dict):
        raise ManifestError(
            display, "", f"expected a mapping at the top level (got {_describe(raw)})"
        )
    declared = _declared_secrets(raw)
    referenced: set[str] = set()
    interpolated = _interpolate(raw, [], display, declared, referenced)
    try:
        manifest = Manifest.model_validate(interpolated)
    except ValidationError as exc:
        raise _manifest_error(display, exc) from None
    _register_env_secrets(manifest)
    loaded = LoadedManifest(
        path=Path(os.path.abspath(file)),
        manifest=manifest,
        sha256=hashlib.sha256(data).hexdigest(),
        env_references=frozenset(referenced),
        process_lines=lines,
    )
    return loaded, st


_SQLITE_URL = re.compile(r"^(?P<scheme>sqlite(?:\+[A-Za-z0-9_]+)?):///(?P<rest>.*)$", re.DOTALL)


def _absolute_sqlite(url: str, base: Path) -> str:
    match = _SQLITE_URL.match(url)
    if match is None:
        return url
    rest = match["rest"]
    db_path, sep, query = rest.partition("?")
    if (
        not db_path
        or db_path.startswith("/")
        or db_path == ":memory:"
        or db_path.startswith("file:")
    ):
        return url
    absolute = os.path.normpath(base / db_path)
    return f"{match['scheme']}:///{absolute}{sep}{query}"


def resolved_connections(loaded: LoadedManifest) -> dict[str, str]:
    """Connection URLs with relative SQLite paths anchored at the manifest's directory.

    A scheduler may start ``dpone`` from any working directory; anchoring makes
    ``sqlite:///data/shop.db`` mean the same file every time.
    """
    return {name: resolved_connection(loaded, name) for name in loaded.manifest.connections}


def resolved_connection(loaded: LoadedManifest, name: str) -> str:
    """One connection's URL, as :func:`resolved_connections` gives it (KeyError if unknown).

    For a caller that needs one connection of a process (a Dagster code server
    names the target table of thousands of processes).
    """
    url = loaded.manifest.connections[name]
    # Parsed here, before any driver sees the URL: a password holding "/", "@" or a
    # space is masked even where a driver misreads the URL and quotes part of it.
    register_url_secrets(url)
    return _absolute_sqlite(url, loaded.path.parent)
