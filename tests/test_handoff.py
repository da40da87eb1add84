"""Scheduler handoff snippets: each one must really re-run the same command."""

from __future__ import annotations

import ast
import json
import keyword
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import jinja2
import jinja2.sandbox
import pytest
import yaml
from pydantic import ValidationError

from dpone_core.handoff import (
    HandoffInputs,
    SchedulerHandoff,
    SchedulerHandoffBuilder,
    airflow_task_id,
    kubernetes_name,
    python_identifier,
)
from dpone_core.redact import register_secret

BASE_ARGV = [
    "orchestrate",
    "run",
    "--manifest",
    "manifests/orders.yml",
    "--selector",
    "orders",
    "--run-id",
    "orders_2026_06_05",
    "--retry-attempts",
    "2",
]

NASTY = [
    'it\'s "quoted"',
    "two  spaces and a\ttab",
    "$HOME ${PATH} $(echo pwned) `id`",
    "line one\nline two\r\n",
    "{{ ds }} {% if x %}{# c #}{",
    "{",
    "{{",
    "}}",
    "100% of *.csv; rm -rf / && echo | cat > x",
    "日本語 é ✓ 😀 \u2028 \x85",
    "back\\slash\\",
    "",
    "-",
    "--flag=va'l\"ue",
    "!history !!",
    "~user",
    "\x01\x1b[31mred\x7f",
    "deploy.sh",
    "run.bash",
]

ODD_NAMES = [
    "orders",
    "Orders",
    "orders_2026_06_05",
    "a/b",
    "a_b",
    "",
    "   ",
    "2026-06-05",
    "class",
    "dg",
    "context",
    "subprocess",
    "日本",
    "x" * 300,
    "-lead-trail-",
    "a.b",
    "{{ ds }}",
    "ends.sh",
    "with space",
]


def build(**overrides: Any) -> SchedulerHandoff:
    fields: dict[str, Any] = {"argv": BASE_ARGV, "name": "orders_2026_06_05"}
    fields.update(overrides)
    return SchedulerHandoffBuilder().build(HandoffInputs(**fields))


@pytest.fixture
def argv_dumper(tmp_path: Path) -> tuple[Path, Path]:
    """A script that writes its argv and cwd as JSON to the file named by argv[1]."""
    script = tmp_path / "dump argv's.py"
    script.write_text(
        "import json, os, sys\n"
        "with open(sys.argv[1], 'w', encoding='utf-8') as fh:\n"
        "    json.dump({'argv': sys.argv[2:], 'cwd': os.getcwd()}, fh)\n",
        encoding="utf-8",
    )
    return script, tmp_path / "out.json"


def read_dump(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return data


# --------------------------------------------------------------------------- contract shape


def test_to_dict_has_the_four_contract_keys_all_strings() -> None:
    data = build().to_dict()
    assert set(data) == {"cron_command", "airflow_task", "dagster_asset", "kubernetes_cronjob"}
    assert all(isinstance(value, str) and value for value in data.values())


def test_build_is_deterministic() -> None:
    assert build(argv=[*BASE_ARGV, *NASTY]) == build(argv=[*BASE_ARGV, *NASTY])


# --------------------------------------------------------------------------- cron


def test_cron_command_is_plain_for_plain_arguments() -> None:
    assert build().cron_command == "dpone " + " ".join(BASE_ARGV)


@pytest.mark.parametrize("arg", NASTY)
def test_cron_command_shlex_split_round_trips(arg: str) -> None:
    argv = [*BASE_ARGV, "--extra", arg]
    handoff = build(argv=argv, program="/opt/my tools/dpone")
    assert shlex.split(handoff.cron_command) == ["/opt/my tools/dpone", *argv]


def test_cron_command_runs_verbatim_in_bash(argv_dumper: tuple[Path, Path]) -> None:
    script, out = argv_dumper
    argv = [str(script), str(out), *NASTY]
    handoff = build(argv=argv, program=sys.executable)
    subprocess.run(["bash", "-c", handoff.cron_command], check=True)
    assert read_dump(out)["argv"] == NASTY


def test_cron_command_changes_into_working_dir(
    argv_dumper: tuple[Path, Path], tmp_path: Path
) -> None:
    script, out = argv_dumper
    workdir = tmp_path / "work $dir 'x'"
    workdir.mkdir()
    handoff = build(
        argv=[str(script), str(out), "a"], program=sys.executable, working_dir=str(workdir)
    )
    subprocess.run(["bash", "-c", handoff.cron_command], check=True, cwd="/")
    assert read_dump(out) == {"argv": ["a"], "cwd": str(workdir)}


def _cron_shell_part(line: str) -> str:
    """What cron hands to /bin/sh for a crontab line (schedule dropped, \\% unescaped)."""
    assert "\n" not in line and "\r" not in line
    command = line.split(None, 5)[5]
    assert re.search(r"(?<!\\)%", command) is None, "an unescaped % would become a newline"
    return command.replace("\\%", "%")


@pytest.mark.parametrize("args", [["plain", "100%"], NASTY], ids=["simple", "nasty"])
def test_crontab_line_is_one_line_and_runs_under_sh(
    argv_dumper: tuple[Path, Path], args: list[str]
) -> None:
    script, out = argv_dumper
    handoff = build(
        argv=[str(script), str(out), *args], program=sys.executable, schedule="*/5  * * * *"
    )
    assert handoff.crontab_line.startswith("*/5 * * * * ")
    subprocess.run(["sh", "-c", _cron_shell_part(handoff.crontab_line)], check=True)
    assert read_dump(out)["argv"] == args


# --------------------------------------------------------------------------- Airflow


def _airflow_call(source: str) -> ast.Call:
    tree = ast.parse(source)
    imports = [
        (node.module, [alias.name for alias in node.names])
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
    ]
    assert ("airflow.operators.bash", ["BashOperator"]) in imports
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "BashOperator"
    ]
    assert len(calls) == 1
    return calls[0]


def _kwarg(call: ast.Call, name: str) -> Any:
    (value,) = [kw.value for kw in call.keywords if kw.arg == name]
    return ast.literal_eval(value)


def _render_like_airflow(text: str) -> str:
    env = jinja2.sandbox.SandboxedEnvironment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True
    )
    return env.from_string(text).render()


PRINTABLE_NASTY = [arg for arg in NASTY if not re.search(r"[\x00-\x1f\x7f]", arg)]


def test_airflow_task_compiles_and_carries_the_command() -> None:
    handoff = build(argv=[*BASE_ARGV, *NASTY])
    compile(handoff.airflow_task, "<airflow>", "exec")
    call = _airflow_call(handoff.airflow_task)
    assert _kwarg(call, "task_id") == "orders_2026_06_05"
    bash_command = _kwarg(call, "bash_command")
    assert "\n" not in bash_command and "\r" not in bash_command
    # shlex cannot read bash $'...' words; arguments without control characters
    # must come back exactly (the bash test below covers the rest).
    call = _airflow_call(build(argv=[*BASE_ARGV, *PRINTABLE_NASTY]).airflow_task)
    assert shlex.split(_kwarg(call, "bash_command")) == ["dpone", *BASE_ARGV, *PRINTABLE_NASTY]


@pytest.mark.parametrize("last", ["{{ ds }}", "deploy.sh", "run.bash", "X.SH", "{", "{%"])
def test_airflow_bash_command_is_jinja_inert(last: str) -> None:
    """Airflow renders bash_command with Jinja and loads it as a template *file*
    when it ends in .sh/.bash; our command has no Jinja tag openers at all and
    always ends in a quote (or an escaped brace), so both are impossible."""
    argv = [*BASE_ARGV, "--note", "{{ ds }} {% raw %} {# x #} {{", last]
    bash_command = _kwarg(_airflow_call(build(argv=argv).airflow_task), "bash_command")
    for opener in ("{{", "{%", "{#"):
        assert opener not in bash_command
    assert not bash_command.lower().endswith((".sh", ".bash"))
    assert not bash_command.endswith(" ")
    assert _render_like_airflow(bash_command) == bash_command
    assert shlex.split(bash_command) == ["dpone", *argv]


def test_airflow_bash_command_runs_in_bash_after_jinja(argv_dumper: tuple[Path, Path]) -> None:
    script, out = argv_dumper
    handoff = build(argv=[str(script), str(out), *NASTY], program=sys.executable, working_dir="/")
    bash_command = _kwarg(_airflow_call(handoff.airflow_task), "bash_command")
    rendered = _render_like_airflow(bash_command)
    assert rendered == bash_command
    subprocess.run(["bash", "-c", rendered], check=True)
    assert read_dump(out) == {"argv": NASTY, "cwd": "/"}


def test_unguarded_command_would_be_mangled_by_jinja() -> None:
    """Control for the test above: a plain shlex command does not survive Jinja."""
    plain = shlex.join(["dpone", "{{ '{' }}"])
    assert _render_like_airflow(plain) != plain


# --------------------------------------------------------------------------- Dagster


def _dagster_tree(source: str) -> ast.Module:
    tree = ast.parse(source)
    imports = {
        (alias.name, alias.asname)
        for node in tree.body
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert ("dagster", "dg") in imports
    assert ("subprocess", None) in imports
    return tree


def _subprocess_run(tree: ast.Module) -> ast.Call:
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "run"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "subprocess"
    ]
    assert len(calls) == 1
    return calls[0]


def test_dagster_asset_compiles_and_carries_the_argv() -> None:
    handoff = build(argv=[*BASE_ARGV, *NASTY])
    compile(handoff.dagster_asset, "<dagster>", "exec")
    tree = _dagster_tree(handoff.dagster_asset)
    (function,) = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    assert function.name == "orders_2026_06_05"
    assert any(isinstance(d, ast.Attribute) and d.attr == "asset" for d in function.decorator_list)
    assignments = {
        node.targets[0].id: node.value
        for node in ast.walk(function)
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
    }
    assert ast.literal_eval(assignments["command"]) == ["dpone", *BASE_ARGV, *NASTY]
    call = _subprocess_run(tree)
    assert _kwarg(call, "check") is False
    raises = [node for node in ast.walk(function) if isinstance(node, ast.Raise)]
    assert raises and "Failure" in ast.unparse(raises[0])


def _materialize(source: str, asset_name: str) -> Any:
    import dagster as dg

    namespace: dict[str, Any] = {}
    exec(compile(source, "<dagster handoff>", "exec"), namespace)
    asset = namespace[asset_name]
    assert isinstance(asset, dg.AssetsDefinition)
    assert asset.key == dg.AssetKey(asset_name)
    return dg.materialize([asset], raise_on_error=False)


def test_dagster_asset_really_runs_the_command(
    argv_dumper: tuple[Path, Path], tmp_path: Path
) -> None:
    script, out = argv_dumper
    handoff = build(
        argv=[str(script), str(out), *NASTY],
        program=sys.executable,
        working_dir=str(tmp_path),
        name="dg",
    )
    result = _materialize(handoff.dagster_asset, python_identifier("dg"))
    assert result.success
    assert read_dump(out) == {"argv": NASTY, "cwd": str(tmp_path)}


def test_dagster_asset_fails_with_the_exit_code(tmp_path: Path) -> None:
    import dagster as dg

    script = tmp_path / "fail.py"
    script.write_text("import sys\nsys.exit(3)\n", encoding="utf-8")
    handoff = build(argv=[str(script)], program=sys.executable, name="orders")
    result = _materialize(handoff.dagster_asset, "orders")
    assert result.success is False
    failures = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert failures
    assert "exited with code 3" in str(failures[0].event_specific_data.error)


# --------------------------------------------------------------------------- Kubernetes


def test_kubernetes_cronjob_fields() -> None:
    argv = [*BASE_ARGV, *NASTY]
    handoff = build(
        argv=argv,
        schedule="15 3 * * 1-5",
        image="registry.example/dpone:1.2",
        env_refs={"DPONE_WAREHOUSE_URL": "warehouse DSN\nwith: yaml"},
        working_dir="/srv/pipelines",
    )
    doc = yaml.safe_load(handoff.kubernetes_cronjob)
    assert doc["apiVersion"] == "batch/v1"
    assert doc["kind"] == "CronJob"
    assert doc["metadata"]["name"] == "orders-2026-06-05-" + doc["metadata"]["name"][-8:]
    spec = doc["spec"]
    assert spec["schedule"] == "15 3 * * 1-5"
    assert spec["concurrencyPolicy"] == "Forbid"
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["image"] == "registry.example/dpone:1.2"
    assert container["command"] == ["dpone", *argv]
    assert container["workingDir"] == "/srv/pipelines"
    assert container["env"] == [
        {
            "name": "DPONE_WAREHOUSE_URL",
            "valueFrom": {"secretKeyRef": {"name": "dpone-secrets", "key": "DPONE_WAREHOUSE_URL"}},
        }
    ]


def test_kubernetes_cronjob_defaults_and_no_env() -> None:
    doc = yaml.safe_load(build(name="orders").kubernetes_cronjob)
    assert doc["metadata"]["name"] == "orders"
    assert doc["spec"]["schedule"] == "0 2 * * *"
    (container,) = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "REPLACE_ME/dpone:latest"
    assert "env" not in container


@pytest.mark.parametrize("arg", ["x\x85y", "a\u2028b", "😀", "- item", "null", "'", '"', "\\"])
def test_kubernetes_yaml_survives_odd_characters(arg: str) -> None:
    doc = yaml.safe_load(build(argv=["run", arg]).kubernetes_cronjob)
    (container,) = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["dpone", "run", arg]


DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


@pytest.mark.parametrize("name", ODD_NAMES)
def test_derived_names_are_valid(name: str) -> None:
    k8s = kubernetes_name(name)
    assert DNS_LABEL.fullmatch(k8s) and len(k8s) <= 52
    task_id = airflow_task_id(name)
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", task_id) and len(task_id) <= 250
    ident = python_identifier(name)
    assert ident.isidentifier() and ident.isascii() and not keyword.iskeyword(ident)
    doc = yaml.safe_load(build(name=name).kubernetes_cronjob)
    assert doc["metadata"]["name"] == k8s
    assert doc["metadata"]["annotations"]["dpone/handoff-name"] == name


@pytest.mark.parametrize("name", ["dg", "class", "context", "2026", "", "a/b"])
def test_odd_names_give_loadable_dagster_assets(name: str) -> None:
    import dagster as dg

    ident = python_identifier(name)
    namespace: dict[str, Any] = {}
    exec(compile(build(name=name).dagster_asset, "<dagster handoff>", "exec"), namespace)
    dg.Definitions(assets=[namespace[ident]]).resolve_all_asset_keys()
    call = _airflow_call(build(name=name).airflow_task)
    assert _kwarg(call, "task_id") == airflow_task_id(name)


def test_derived_names_keep_distinct_names_distinct() -> None:
    for derive in (kubernetes_name, airflow_task_id, python_identifier):
        derived = [derive(name) for name in ODD_NAMES]
        assert len(set(derived)) == len(ODD_NAMES), derive.__name__
    assert kubernetes_name("orders") == "orders"
    assert airflow_task_id("orders.daily-1") == "orders.daily-1"
    assert python_identifier("orders_daily") == "orders_daily"


# --------------------------------------------------------------------------- secrets and validation


def test_env_refs_are_names_only_and_secret_values_are_redacted() -> None:
    secret = "hunter2-handoff-secret-value"
    register_secret(secret)
    handoff = build(
        argv=[*BASE_ARGV, "--token", secret, "--dsn", "postgresql://app:pw123@db/x"],
        env_refs={"DPONE_WAREHOUSE_URL": "warehouse DSN"},
    )
    for text in handoff.model_dump().values():
        assert secret not in text
        assert "pw123" not in text
    assert "DPONE_WAREHOUSE_URL" in handoff.airflow_task
    assert "DPONE_WAREHOUSE_URL" in handoff.dagster_asset


@pytest.mark.parametrize(
    "overrides",
    [
        {"schedule": "0 2 * * *\nrm -rf /"},
        {"schedule": "every day"},
        {"argv": ["a\x00b"]},
        {"argv": ["\udc80"]},
        {"program": ""},
        {"env_refs": {"NOT A NAME": "x"}},
        {"secret_name": "Not_DNS"},
        {"working_dir": ""},
    ],
)
def test_invalid_inputs_are_rejected(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        build(**overrides)


def test_macro_schedule_is_accepted() -> None:
    handoff = build(schedule="@daily")
    assert handoff.crontab_line.startswith("@daily ")
    assert yaml.safe_load(handoff.kubernetes_cronjob)["spec"]["schedule"] == "@daily"
