"""Manifest loading: models, interpolation, secrets, selectors and one-line errors."""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from dpone_core.errors import ManifestError
from dpone_core.manifest import (
    CommandProcess,
    LoadedManifest,
    SourceSpec,
    StrategySpec,
    TransferProcess,
    load_manifest,
    resolved_connections,
)
from dpone_core.redact import redact

EXAMPLE = Path(__file__).parent / "manifests" / "example.yml"
ROOT = Path(__file__).resolve().parent.parent

VALID = """\
version: 1
connections:
  src: sqlite:///src.db
  dst: sqlite:///dst.db
processes:
  orders:
    source: {connection: src, table: orders}
    target: {connection: dst, table: landing_orders}
    strategy: {mode: merge, key: [order_id], cursor: updated_at}
  report:
    kind: command
    command: [echo, hi]
    timeout_seconds: 5
"""


def write(tmp_path: Path, text: str, name: str = "m.yml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(path: Path) -> ManifestError:
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    error = info.value
    assert "\n" not in str(error), str(error)
    assert str(error).startswith(str(path)), str(error)
    return error


def unique(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(8)}"


# --------------------------------------------------------------------------- valid input


def test_example_manifest_loads_with_every_field_and_default() -> None:
    loaded = load_manifest(EXAMPLE)
    manifest = loaded.manifest
    assert manifest.version == 1
    assert manifest.secrets == ["DPONE_TEST_EXAMPLE_TOKEN"]
    assert loaded.path.is_absolute()
    assert loaded.sha256 == hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()

    orders = manifest.processes["orders"]
    assert isinstance(orders, TransferProcess)
    assert orders.kind == "transfer"
    assert orders.source == SourceSpec(connection="source_db", table="orders", query=None)
    assert orders.strategy == StrategySpec(mode="merge", key=["order_id"], cursor="updated_at")
    assert orders.tags == {"tier": "gold"}
    assert orders.owners == ["data-eng@example.com"]
    assert orders.partitions is not None
    assert orders.partitions.granularity == "daily"
    assert orders.partitions.start == "2026-01-01"  # YAML's date is kept as ISO text
    assert orders.concurrency_key == "orders_daily"

    customers = manifest.processes["customers"]
    assert isinstance(customers, TransferProcess)
    assert customers.source.query == "select * from customers"
    assert customers.target.table == "landing.customers"
    assert customers.strategy.mode == "append"
    assert customers.batch_size == 10000

    report = manifest.processes["refresh_report"]
    assert isinstance(report, CommandProcess)
    assert report.command == ["python", "scripts/refresh.py"]
    assert report.timeout_seconds == 600
    assert report.cwd == "scripts"
    assert report.env == {"REPORT_MODE": "full"}


def test_a_single_string_key_becomes_a_list(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("key: [order_id]", "key: order_id"))
    process = load_manifest(path).manifest.processes["orders"]
    assert isinstance(process, TransferProcess)
    assert process.strategy.key == ["order_id"]


def test_models_validate_when_built_directly() -> None:
    with pytest.raises(ValidationError):
        StrategySpec(mode="merge")
    with pytest.raises(ValidationError):
        StrategySpec(mode="incremental", key=["id"])
    with pytest.raises(ValidationError):
        SourceSpec(connection="c", table="t", query="select 1")
    with pytest.raises(ValidationError):
        SourceSpec(connection="c")
    assert StrategySpec(mode="incremental", cursor="ts").key == []


# --------------------------------------------------------------------------- validation errors

INVALID = [
    pytest.param(
        VALID.replace("mode: merge", "mode: upsert"),
        "processes.orders.strategy.mode",
        "expected one of 'replace', 'append', 'merge', 'incremental' (got 'upsert')",
        id="bad-mode",
    ),
    pytest.param(
        VALID.replace("kind: command", "kind: shell"),
        "processes.report.kind",
        "expected one of 'transfer', 'command' (got 'shell')",
        id="bad-kind",
    ),
    pytest.param(
        VALID.replace("version: 1", "version: 2"),
        "version",
        "expected 1 (got 2)",
        id="bad-version",
    ),
    pytest.param(
        VALID.replace("version: 1\n", ""),
        "version",
        "required field is missing",
        id="missing-version",
    ),
    pytest.param(
        VALID + "extra: 1\n",
        "extra",
        "unknown field; expected one of: version, secrets, connections, processes",
        id="unknown-top-level-field",
    ),
    pytest.param(
        VALID.replace("timeout_seconds: 5", "timout_seconds: 5"),
        "processes.report.timout_seconds",
        "unknown field; expected one of: description, tags, owners, partitions, "
        "concurrency_key, schedule, deps, kind, command, timeout_seconds, cwd, env",
        id="typo-in-command-field",
    ),
    pytest.param(
        VALID.replace("    kind: command\n", ""),
        "processes.report.command",
        "set 'kind: command' for a command process",
        id="command-without-kind",
    ),
    pytest.param(
        VALID.replace("table: orders}", "table: orders, colour: red}"),
        "processes.orders.source.colour",
        "unknown field; expected one of: connection, table, query",
        id="unknown-nested-field",
    ),
    pytest.param(
        VALID.replace("connection: dst", "connection: dwh"),
        "processes.orders.target.connection",
        "expected the name of a connection under 'connections': 'src', 'dst' (got 'dwh')",
        id="unknown-connection",
    ),
    pytest.param(
        VALID.replace("table: orders}", "table: orders, query: select 1}"),
        "processes.orders.source",
        "expected exactly one of 'table' or 'query' (got both)",
        id="table-and-query",
    ),
    pytest.param(
        VALID.replace("{connection: src, table: orders}", "{connection: src}"),
        "processes.orders.source",
        "expected exactly one of 'table' or 'query' (got neither)",
        id="neither-table-nor-query",
    ),
    pytest.param(
        VALID.replace("key: [order_id], ", ""),
        "processes.orders.strategy.key",
        "mode 'merge' requires a non-empty key",
        id="merge-without-key",
    ),
    pytest.param(
        VALID.replace("mode: merge, key: [order_id], cursor: updated_at", "mode: incremental"),
        "processes.orders.strategy.cursor",
        "mode 'incremental' requires a cursor column",
        id="incremental-without-cursor",
    ),
    pytest.param(
        VALID.replace("    strategy:", "    batch_size: 0\n    strategy:"),
        "processes.orders.batch_size",
        "expected a number greater than 0 (got 0)",
        id="batch-size-zero",
    ),
    pytest.param(
        VALID.replace("    strategy:", "    batch_size: lots\n    strategy:"),
        "processes.orders.batch_size",
        "expected an integer (got 'lots')",
        id="batch-size-not-int",
    ),
    pytest.param(
        VALID.replace("timeout_seconds: 5", "timeout_seconds: -1"),
        "processes.report.timeout_seconds",
        "expected a number greater than 0 (got -1)",
        id="negative-timeout",
    ),
    pytest.param(
        VALID.replace("command: [echo, hi]", "command: []"),
        "processes.report.command",
        "expected a non-empty list (got an empty list)",
        id="empty-command",
    ),
    pytest.param(
        VALID.replace("command: [echo, hi]", "command: echo hi"),
        "processes.report.command",
        "expected a list (got 'echo hi')",
        id="command-as-string",
    ),
    pytest.param(
        VALID.replace("command: [echo, hi]", "command: [echo, 1]"),
        "processes.report.command[1]",
        "expected a string (got 1)",
        id="command-item-not-string",
    ),
    pytest.param(
        VALID + "    env: {COUNT: 3}\n",
        "processes.report.env.COUNT",
        "expected a string (got 3)",
        id="env-value-not-string",
    ),
    pytest.param(
        VALID.replace("    strategy:", "    tags: {1: x}\n    strategy:"),
        "processes.orders.tags",
        "expected string keys (got key 1)",
        id="non-string-key",
    ),
    pytest.param(
        VALID.replace(
            "    strategy:",
            "    partitions: {granularity: weekly, start: 2026-01-01}\n    strategy:",
        ),
        "processes.orders.partitions.granularity",
        "expected one of 'daily', 'hourly' (got 'weekly')",
        id="bad-granularity",
    ),
    pytest.param(
        VALID.replace(
            "    strategy:", "    partitions: {granularity: daily, start: soon}\n    strategy:"
        ),
        "processes.orders.partitions.start",
        "expected an ISO-8601 date or datetime (got 'soon')",
        id="bad-partition-start",
    ),
    pytest.param(
        VALID.replace(
            "    strategy:",
            "    partitions: {granularity: daily, start: 2026-02-01, end: 2026-01-01}\n"
            "    strategy:",
        ),
        "processes.orders.partitions.end",
        "expected a time after start '2026-02-01'",
        id="partition-end-before-start",
    ),
    pytest.param(
        "version: 1\nprocesses: {}\n",
        "processes",
        "expected at least one process",
        id="no-processes",
    ),
    pytest.param(
        "version: 1\nprocesses:\n  a: just a string\n",
        "processes.a",
        "expected a mapping (got 'just a string')",
        id="process-not-a-mapping",
    ),
    pytest.param(
        "version: 1\nconnections: [a, b]\nprocesses:\n  a: {kind: command, command: [x]}\n",
        "connections",
        "expected a mapping (got a list)",
        id="connections-not-a-mapping",
    ),
    pytest.param(
        "version: 1\nprocesses:\n  a: {source: {connection: x, table: t}, "
        "target: {connection: x, table: u}}\n",
        "processes.a.source.connection",
        "(none defined) (got 'x')",
        id="no-connections-defined",
    ),
]


@pytest.mark.parametrize(("text", "field", "expected"), INVALID)
def test_validation_errors_name_file_field_and_expectation(
    tmp_path: Path, text: str, field: str, expected: str
) -> None:
    path = write(tmp_path, text)
    error = load_error(path)
    assert error.field == field, str(error)
    assert expected in error.expected, str(error)
    assert str(error) == f"{path}: {field}: {error.expected}"


def test_several_problems_report_the_first_and_count_the_rest(tmp_path: Path) -> None:
    text = VALID.replace("table: orders}", "table: 5}").replace("table: landing_orders", "table: 6")
    error = load_error(write(tmp_path, text))
    assert error.field == "processes.orders.source.table"
    assert error.expected == "expected a string (got 5) (and 1 more problem)"


def test_error_messages_never_show_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = unique("pw-")
    monkeypatch.setenv("DPONE_TEST_DB_PASSWORD", value)
    text = VALID.replace("timeout_seconds: 5", "timeout_seconds: ${DPONE_TEST_DB_PASSWORD}")
    error = load_error(write(tmp_path, text))
    assert error.field == "processes.report.timeout_seconds"
    assert value not in str(error)
    assert "***" in str(error)


# --------------------------------------------------------------------------- file-level errors


def test_missing_file(tmp_path: Path) -> None:
    error = load_error(tmp_path / "absent.yml")
    assert "file not found" in error.expected


def test_directory_instead_of_file(tmp_path: Path) -> None:
    error = load_error(tmp_path)
    assert "is a directory" in error.expected


def test_unreadable_file(tmp_path: Path) -> None:
    """A symlink loop cannot be read, even by root (chmod 0 would not stop root)."""
    path = tmp_path / "loop.yml"
    path.symlink_to(path)
    error = load_error(path)
    assert "cannot read the file" in error.expected


def test_malformed_yaml_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\nprocesses:\n  a: {kind: command, command: [x]\n")
    error = load_error(path)
    assert error.field.startswith("line "), str(error)
    assert ", column " in error.field
    assert error.expected.startswith("invalid YAML: ")


def test_duplicate_keys_are_rejected_not_silently_merged(tmp_path: Path) -> None:
    path = write(tmp_path, VALID + "  orders:\n    kind: command\n    command: [true]\n")
    error = load_error(path)
    assert error.field == "line 14, column 3"
    assert error.expected == "invalid YAML: duplicate key 'orders'"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "the file is empty"),
        (b"- 1\n- 2\n", "expected a mapping at the top level (got a list)"),
        (b"just text\n", "expected a mapping at the top level (got 'just text')"),
        (b"version: 1\nname: \xff\xfe\n", "expected UTF-8 text"),
    ],
)
def test_top_level_problems(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "m.yml"
    path.write_bytes(content)
    error = load_error(path)
    assert expected in error.expected


# --------------------------------------------------------------------------- interpolation


def interpolation_manifest(tmp_path: Path, value: str, extra: str = "") -> Path:
    return write(
        tmp_path,
        f"version: 1\n{extra}processes:\n  r:\n    kind: command\n    command: [echo, '{value}']\n",
    )


def argument(path: Path) -> str:
    process = load_manifest(path).manifest.processes["r"]
    assert isinstance(process, CommandProcess)
    return process.command[1]


def test_interpolation_reads_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DPONE_TEST_HOST", "db.internal")
    assert argument(interpolation_manifest(tmp_path, "pg://${DPONE_TEST_HOST}/x")) == (
        "pg://db.internal/x"
    )


def test_interpolation_default_when_unset_or_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DPONE_TEST_UNSET", raising=False)
    path = interpolation_manifest(tmp_path, "${DPONE_TEST_UNSET:-sqlite:///fallback.db}")
    assert argument(path) == "sqlite:///fallback.db"
    monkeypatch.setenv("DPONE_TEST_UNSET", "")
    assert argument(path) == "sqlite:///fallback.db"
    monkeypatch.setenv("DPONE_TEST_UNSET", "set")
    assert argument(path) == "set"
    assert argument(interpolation_manifest(tmp_path, "[${DPONE_TEST_NOPE_X:-}]")) == "[]"


def test_double_dollar_is_a_literal_dollar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DPONE_TEST_HOST", "db.internal")
    path = interpolation_manifest(tmp_path, "cost $$5 and $${DPONE_TEST_HOST} and $HOME")
    assert argument(path) == "cost $5 and ${DPONE_TEST_HOST} and $HOME"


def test_missing_variable_names_the_field_and_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DPONE_TEST_MISSING", raising=False)
    error = load_error(interpolation_manifest(tmp_path, "${DPONE_TEST_MISSING}"))
    assert error.field == "processes.r.command[1]"
    assert "DPONE_TEST_MISSING is not set" in error.expected


def test_missing_variable_in_a_connection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DPONE_TEST_WAREHOUSE", raising=False)
    error = load_error(
        write(tmp_path, VALID.replace("sqlite:///dst.db", "${DPONE_TEST_WAREHOUSE}"))
    )
    assert error.field == "connections.dst"
    assert "DPONE_TEST_WAREHOUSE" in error.expected


@pytest.mark.parametrize("value", ["${NOT VALID}", "${1ABC}", "${UNCLOSED", "${X-default}"])
def test_malformed_references_are_errors(tmp_path: Path, value: str) -> None:
    error = load_error(interpolation_manifest(tmp_path, value))
    assert error.field == "processes.r.command[1]"
    assert "expected ${VAR} or ${VAR:-default}" in error.expected


def test_interpolated_values_are_validated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DPONE_TEST_TIMEOUT", "2.5")
    text = VALID.replace("timeout_seconds: 5", "timeout_seconds: ${DPONE_TEST_TIMEOUT}")
    process = load_manifest(write(tmp_path, text)).manifest.processes["report"]
    assert isinstance(process, CommandProcess)
    assert process.timeout_seconds == 2.5


# --------------------------------------------------------------------------- secrets


def test_declared_secret_values_are_registered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = unique("declared-")
    monkeypatch.setenv("DPONE_TEST_DECLARED", value)
    load_manifest(
        interpolation_manifest(
            tmp_path, "${DPONE_TEST_DECLARED}", "secrets: [DPONE_TEST_DECLARED]\n"
        )
    )
    assert redact(f"x {value} y") == "x *** y"


def test_declared_secret_is_registered_even_when_not_referenced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = unique("inherited-")
    monkeypatch.setenv("DPONE_TEST_INHERITED", value)
    load_manifest(interpolation_manifest(tmp_path, "x", "secrets: [DPONE_TEST_INHERITED]\n"))
    assert value not in redact(value)


@pytest.mark.parametrize(
    "name",
    ["DPONE_TEST_DB_PASSWORD", "dpone_test_client_secret", "DPONE_TEST_Token", "MY_CREDENTIALS"],
)
def test_secret_looking_names_are_registered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    value = unique("named-")
    monkeypatch.setenv(name, value)
    load_manifest(interpolation_manifest(tmp_path, f"${{{name}}}"))
    assert redact(value) == "***"


def test_ordinary_variables_are_not_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    value = unique("plain-")
    monkeypatch.setenv("DPONE_TEST_PLAIN", value)
    load_manifest(interpolation_manifest(tmp_path, "${DPONE_TEST_PLAIN}"))
    assert redact(value) == value


def test_command_env_with_secret_names_is_registered(tmp_path: Path) -> None:
    value = unique("cmdenv-")
    load_manifest(write(tmp_path, VALID + f"    env: {{API_TOKEN: {value}}}\n"))
    assert redact(value) == "***"


# --------------------------------------------------------------------------- selectors


def test_selector_may_be_omitted_with_one_process(tmp_path: Path) -> None:
    loaded = load_manifest(interpolation_manifest(tmp_path, "x"))
    name, process = loaded.select(None)
    assert name == "r"
    assert isinstance(process, CommandProcess)


def test_selector_selects(tmp_path: Path) -> None:
    loaded = load_manifest(write(tmp_path, VALID))
    name, process = loaded.select("report")
    assert name == "report"
    assert isinstance(process, CommandProcess)


def test_selector_required_with_several_processes(tmp_path: Path) -> None:
    loaded = load_manifest(write(tmp_path, VALID))
    with pytest.raises(ManifestError) as info:
        loaded.select(None)
    assert "'orders', 'report'" in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_selector_lists_the_available_ones(tmp_path: Path) -> None:
    loaded = load_manifest(write(tmp_path, VALID))
    with pytest.raises(ManifestError) as info:
        loaded.select("order")
    message = str(info.value)
    assert message.startswith(str(loaded.path))
    assert "'order'" in message
    assert "available selectors: 'orders', 'report'" in message


# --------------------------------------------------------------------------- connections


def test_relative_sqlite_urls_resolve_against_the_manifest_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest_dir = tmp_path / "project" / "manifests"
    manifest_dir.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    text = """\
version: 1
connections:
  relative: sqlite:///data/shop.db
  parent: sqlite:///../shared.db?timeout=5
  driver: sqlite+pysqlite:///local.db
  memory: "sqlite:///:memory:"
  bare: sqlite://
  absolute: sqlite:////var/lib/dpone/x.db
  postgres: postgresql://user:pw@db:5432/warehouse
processes:
  r: {kind: command, command: [x]}
"""
    path = write(manifest_dir, text)
    monkeypatch.chdir(elsewhere)
    connections = resolved_connections(load_manifest(os.path.relpath(path)))
    assert connections == {
        "relative": f"sqlite:///{manifest_dir}/data/shop.db",
        "parent": f"sqlite:///{tmp_path}/project/shared.db?timeout=5",
        "driver": f"sqlite+pysqlite:///{manifest_dir}/local.db",
        "memory": "sqlite:///:memory:",
        "bare": "sqlite://",
        "absolute": "sqlite:////var/lib/dpone/x.db",
        "postgres": "postgresql://user:pw@db:5432/warehouse",
    }


def test_loaded_manifest_path_is_absolute_even_from_a_relative_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, VALID)
    monkeypatch.chdir(tmp_path)
    loaded = load_manifest("m.yml")
    assert isinstance(loaded, LoadedManifest)
    assert loaded.path == tmp_path / "m.yml"


def test_importing_the_manifest_module_does_not_import_sqlalchemy() -> None:
    code = (
        "import sys, dpone_core.manifest, dpone_core.executor;"
        "assert 'sqlalchemy' not in sys.modules, 'sqlalchemy imported';"
        "assert 'dagster' not in sys.modules, 'dagster imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.parametrize(
    ("deps", "field", "needle"),
    [
        (["landing_orders"], "processes.job.deps[0]", "'<connection>.<table>'"),
        (["nowhere.t"], "processes.job.deps[0]", "'nowhere'"),
        (["db.", "db.t"], "processes.job.deps[0]", "'<connection>.<table>'"),
    ],
)
def test_deps_must_name_a_connection_and_a_table(
    tmp_path: Path, deps: list[str], field: str, needle: str
) -> None:
    doc = {
        "version": 1,
        "connections": {"db": "sqlite:///x.db"},
        "processes": {"job": {"kind": "command", "command": ["true"], "deps": deps}},
    }
    path = tmp_path / "m.yml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert info.value.field == field, str(info.value)
    assert needle in info.value.expected


def test_deps_parse_into_connection_and_table(tmp_path: Path) -> None:
    doc = {
        "version": 1,
        "connections": {"db": "sqlite:///x.db"},
        "processes": {
            "job": {"kind": "command", "command": ["true"], "deps": ["db.t", "db.schema.t"]}
        },
    }
    path = tmp_path / "m.yml"
    path.write_text(yaml.safe_dump(doc))
    _, process = load_manifest(path).select("job")
    assert process.dep_tables() == [("db", "t"), ("db", "schema.t")]
