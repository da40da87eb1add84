"""Scheduler handoff builder: every snippet must re-run the same schedule, exactly.

Unit tests of the pure builder (``dpone_core.handoff``): nothing here installs or
starts Airflow, Dagster, cron or Kubernetes (other files run the real tools end to
end). What the snippets are checked with instead: ``shlex``, ``compile``/``ast``,
bash and ``/bin/sh`` running the rendered shell text with an argv-dumping script as
the program, faithful models of cron's ``%`` handling and of Kubernetes' ``$(VAR)``
expansion, Jinja (as Airflow renders ``bash_command``), PyYAML, and loading the
Dagster definitions file (materialized in process only with a Pipes client that
records the command instead of running it).

A handoff is a *schedule*: ``argv`` carries no run id and every snippet appends
``--execution-date`` in its scheduler's idiom, then says who runs it, so the argv
that arrives must be the input argv plus ``['--execution-date', <logical date>,
'--scheduler', <kind>]``, plus the scheduler's own names where it has them:
``--dag-id <DAG id> --scheduler-run-id <run id>`` on Airflow, ``--scheduler-run-id
<run id>`` on Dagster and ``--scheduler-run-id <Job name>`` on Kubernetes (when the
downward API gives the pod its Job's name).

The bugs these tests found in the builder are fixed, and the tests that found them
stay as regression tests: a backslash before a backslash or a ``%`` on the crontab
line (Debian's cron halves ``\\\\``), Airflow's templated ``cwd``, names in module
docstrings (``\"\"\"``), colliding CronJob names and DAG ids of distinct processes, two
volume mounts at one path; relative working directories and Quartz-only cron syntax
(``?``, ``L``, ``W``, ``#``), which not every scheduler reads, are refused. A bug found
here is pinned as ``xfail(strict=True)``, which fails (XPASS) the day the bug is fixed,
so the marker is then removed; none is pinned today (the last one, the Dagster file
reading the deprecated ``context.run_id``, is fixed).
"""

from __future__ import annotations

import ast
import datetime as dt
import itertools
import json
import keyword
import re
import shlex
import subprocess
import sys
import uuid
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from dpone_core.handoff import (
    IMAGE_PLACEHOLDER,
    HandoffInputs,
    SchedulerHandoff,
    SchedulerHandoffBuilder,
    airflow_id,
    kubernetes_name,
    python_identifier,
)
from dpone_core.logical_run import parse_execution_date
from dpone_core.manifest import OPTIONAL_ENV
from dpone_core.redact import register_secret

try:
    import jinja2
    import jinja2.sandbox
except ImportError:  # pragma: no cover - jinja2 is installed in the dev venv
    jinja2 = None  # type: ignore[assignment]

UTC = dt.UTC
START = dt.date(2026, 1, 2)

BASE_ARGV = [
    "orchestrate",
    "run",
    "--manifest",
    "/srv/pipelines/manifests/shop.yml",
    "--selector",
    "orders",
    "--retry-attempts",
    "2",
    "--output-root",
    "/srv/pipelines/evidence",
]

#: Arguments every snippet must deliver byte for byte.
NASTY = [
    'it\'s "quoted"',
    "two  spaces and a\ttab",
    "$HOME ${PATH} $(echo pwned) `id`",
    "$(HOME) $(PATH) $(DPONE_UNDEFINED_VAR) $$ trailing$",
    "line one\nline two\r\n",
    "{{ ds }} {% if x %}{# c #}{",
    "{",
    "{{",
    "}}",
    "{%",
    "{#",
    "100% of *.csv; rm -rf / && echo | cat > x",
    "%F %H:%M %%",
    "日本語 é ✓ 😀 \u2028 \x85 \ufeffbom",
    "back\\slash\\",
    "",
    "-",
    "--",
    "--flag=va'l\"ue",
    "!history !!",
    "~user",
    "#not a comment",
    "\x01\x1b[31mred\x7f\x0b\x0c",
    "control\tand 'single' \"double\" $x `y` {z}\n",
    " leading and trailing ",
    "ends.sh",
    "run.bash",
    "X.SH",
]
#: Backslashes next to control characters or ``%`` (bash ``$'...'`` quoting of ``\\``):
#: delivered exactly by every snippet, the crontab line under both cron models included.
BACKSLASHED = ["ctrl\x01 and back\\slash \\n \\x41 \\' \\\\", "50\\% \\%F"]
ALL_ARGS = NASTY + BACKSLASHED
PRINTABLE_NASTY = [arg for arg in NASTY if not re.search(r"[\x00-\x1f\x7f]", arg)]

ODD_NAMES = [
    "orders",
    "Orders",
    "orders_2026_06_05",
    "a/b",
    "a_b",
    "a-b",
    "a.b",
    "",
    "   ",
    "2026-06-05",
    "class",
    "None",
    "dg",
    "context",
    "defs",
    "COMMAND",
    "datetime",
    "DAG",
    "BashOperator",
    "日本",
    "x" * 300,
    "-lead-trail-",
    "{{ ds }}",
    "ends.sh",
    "with space",
    "tab\there",
]

DAILY = ["0 2 * * *", "15 3 * * 1-5", "0 0 1 * *", "@daily", "@midnight", "@weekly", "@yearly"]
SUB_DAILY = ["*/15 * * * *", "@hourly", "0 */2 * * *", "0,30 2 * * *", "0 2,14 * * *"]
DAY_FMT = "%Y-%m-%d"
MINUTE_FMT = "%Y-%m-%dT%H:%MZ"

AIRFLOW_CONTEXT: dict[str, Any] = {
    "ds": "2026-11-30",
    "ts": "2026-11-30T02:00:00+00:00",
    "dag": SimpleNamespace(dag_id="the_dag.id-1"),
    "run_id": "scheduled__2026-11-30T02:00:00+00:00",
}
_AIRFLOW_WHO = " --scheduler airflow --dag-id '{{ dag.dag_id }}' --scheduler-run-id '{{ run_id }}'"
DAILY_TRAILER = " --execution-date {{ ds }}" + _AIRFLOW_WHO
MINUTE_TRAILER = " --execution-date {{ ts }}" + _AIRFLOW_WHO
JINJA_OPENERS = ("{{", "{%", "{#")
#: The only templates bash_command may hold: the logical date, the DAG id and the run id.
DELIBERATE_TEMPLATES = ("{{ ds }}", "{{ ts }}", "{{ dag.dag_id }}", "{{ run_id }}")
#: What cron's and Kubernetes' commands append after the logical date.
CRON_TAIL = ["--scheduler", "cron"]
K8S_TAIL = ["--scheduler", "kubernetes"]
#: The variable the CronJob fills with its Job's name (downward API), and such a name.
JOB_NAME_ENV = "DPONE_KUBERNETES_JOB"
JOB_NAME = "shop-orders-29410560"
JOB_NAME_ENTRY: dict[str, Any] = {
    "name": JOB_NAME_ENV,
    "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['batch.kubernetes.io/job-name']"}},
}


def k8s_script(fmt: str) -> str:
    """The container's script once Kubernetes has expanded it (``$$`` is ``$``)."""
    return (
        f'exec "$0" "$@" --execution-date "$(date -u {fmt})" --scheduler kubernetes'
        f' ${{{JOB_NAME_ENV}:+--scheduler-run-id "${JOB_NAME_ENV}"}}'
    )


def inputs(**overrides: Any) -> HandoffInputs:
    fields: dict[str, Any] = {
        "argv": BASE_ARGV,
        "name": "orders",
        "namespace": "shop",
        "start_date": START,
    }
    fields.update(overrides)
    return HandoffInputs(**fields)


def build(**overrides: Any) -> SchedulerHandoff:
    return SchedulerHandoffBuilder().build(inputs(**overrides))


# --------------------------------------------------------------------------- helpers


@dataclass
class Dumper:
    """A program that writes the argv it receives (after its own two) and its cwd as JSON."""

    script: Path
    out: Path

    def argv(self, args: list[str]) -> list[str]:
        return [str(self.script), str(self.out), *args]

    def read(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.out.read_text(encoding="utf-8"))
        self.out.unlink()
        return data


@pytest.fixture
def dumper(tmp_path: Path) -> Dumper:
    script = tmp_path / "dump argv's $x.py"
    script.write_text(
        "import json, os, sys\n"
        "with open(sys.argv[1], 'w', encoding='utf-8') as fh:\n"
        "    json.dump({'argv': sys.argv[2:], 'cwd': os.getcwd()}, fh)\n",
        encoding="utf-8",
    )
    return Dumper(script, tmp_path / "out.json")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work $dir 'x' 100%"
    path.mkdir()
    return path


def run_dated(run: Callable[[], object], fmt: str) -> set[str]:
    """Run ``run``; the UTC dates (formatted) it may have seen: before and after it ran."""
    before = dt.datetime.now(UTC)
    run()
    after = dt.datetime.now(UTC)
    return {before.strftime(fmt), after.strftime(fmt)}


def cron_cronie(command: str) -> tuple[str, str | None]:
    """What cronie / ISC cron 4.1 hand to the shell: ``(command, stdin or None)``.

    A backslash escapes the next character; only ``\\%`` loses its backslash; the
    first unescaped ``%`` ends the command (the rest is stdin).
    """
    out: list[str] = []
    escaped = False
    for index, ch in enumerate(command):
        if escaped:
            if ch == "%":
                out[-1] = "%"
            else:
                out.append(ch)
            escaped = False
            continue
        if ch == "%":
            return "".join(out), command[index + 1 :]
        escaped = ch == "\\"
        out.append(ch)
    return "".join(out), None


def cron_debian(command: str) -> tuple[str, str | None]:
    """Debian/Ubuntu cron (Vixie 3.0 lineage, also FreeBSD): ``\\\\`` becomes ``\\`` too."""
    out: list[str] = []
    escaped = False
    for index, ch in enumerate(command):
        if escaped:
            if ch in "%\\":
                out[-1] = ch
            else:
                out.append(ch)
            escaped = False
            continue
        if ch == "%":
            return "".join(out), command[index + 1 :]
        escaped = ch == "\\"
        out.append(ch)
    return "".join(out), None


CRONS = {"cronie": cron_cronie, "debian": cron_debian}


def crontab_command(line: str) -> str:
    """The command field of a crontab line (the five schedule fields dropped)."""
    assert "\n" not in line and "\r" not in line, "a crontab entry is one physical line"
    return line.split(" ", 1 if line.startswith("@") else 5)[-1]


def assert_every_cron_reads_it_alike(line: str) -> None:
    """No backslash on ``line`` stands before another backslash or a literal ``%``.

    Every ``%`` is escaped as ``\\%`` and no ``\\\\`` appears, so the only backslash
    before a ``%`` is cron's own escape: cronie and Debian's cron, which differ only
    on ``\\\\``, hand the shell the same command, with no ``%`` ending it.
    """
    assert "\\\\" not in line, "Debian's cron turns \\\\ into \\ (cronie keeps it)"
    assert re.search(r"(?<!\\)%", line) is None, "an unescaped % ends the command"
    command = crontab_command(line)
    assert cron_cronie(command) == cron_debian(command)
    assert cron_cronie(command)[1] is None


def k8s_expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' expansion of a container command word (k8s third_party expansion.Expand).

    ``$$`` is ``$``; ``$(NAME)`` is the variable's value when it is defined, else left as
    written; ``$`` with anything else is kept together with that character.
    """
    out: list[str] = []
    index = 0
    while index < len(text):
        ch = text[index]
        if ch != "$" or index + 1 == len(text):
            out.append(ch)
            index += 1
            continue
        nxt = text[index + 1]
        if nxt == "$":
            out.append("$")
            index += 2
        elif nxt == "(" and ")" in text[index + 2 :]:
            end = text.index(")", index + 2)
            name = text[index + 2 : end]
            out.append(env.get(name, f"$({name})"))
            index = end + 1
        else:
            out.append(ch + nxt)
            index += 2
    return "".join(out)


def test_k8s_expand_models_kubernetes() -> None:
    """Control for the helper the Kubernetes tests rely on."""
    env = {"HOME": "/h"}
    assert k8s_expand("$(HOME)/x $(NOPE) $$(HOME) $$ $x $", env) == "/h/x $(NOPE) $(HOME) $ $x $"
    assert k8s_expand("$$$$", env) == "$$"
    assert k8s_expand("$(HOME", env) == "$(HOME"


def render_like_airflow(text: str, context: Mapping[str, Any] = AIRFLOW_CONTEXT) -> str:
    """Render ``text`` as Airflow renders a templated field (a sandboxed Jinja environment)."""
    if jinja2 is not None:
        env = jinja2.sandbox.SandboxedEnvironment(
            undefined=jinja2.StrictUndefined, keep_trailing_newline=True
        )
        return env.from_string(text).render(**context)
    # Without Jinja: only the deliberate templates may open a tag; substitute them.
    deliberate = {
        "{{ ds }}": context["ds"],
        "{{ ts }}": context["ts"],
        "{{ dag.dag_id }}": context["dag"].dag_id,
        "{{ run_id }}": context["run_id"],
    }
    rest = text
    for template, value in deliberate.items():
        rest = rest.replace(template, value)
    assert not any(opener in rest for opener in JINJA_OPENERS), text
    return rest


def test_render_like_airflow_really_renders() -> None:
    """Control: a command that is not Jinja-inert is changed by the renderer."""
    plain = shlex.join(["dpone", "{{ '{' }}", "{{ ds }}"])
    assert render_like_airflow(plain) != plain
    assert render_like_airflow("{{ dag.dag_id }} {{ run_id }}") == (
        "the_dag.id-1 scheduled__2026-11-30T02:00:00+00:00"
    )


def airflow_context(dag_id: str, run_id: str, logical: str = "2026-11-30") -> dict[str, Any]:
    """The template context of one task instance (``ts`` at 02:00 UTC of ``logical``)."""
    return {
        "ds": logical,
        "ts": f"{logical}T02:00:00+00:00",
        "dag": SimpleNamespace(dag_id=dag_id),
        "run_id": run_id,
    }


def airflow_tail(logical: str, context: Mapping[str, Any] = AIRFLOW_CONTEXT) -> list[str]:
    """What a rendered bash_command appends after the input argv."""
    return [
        "--execution-date",
        logical,
        "--scheduler",
        "airflow",
        "--dag-id",
        context["dag"].dag_id,
        "--scheduler-run-id",
        context["run_id"],
    ]


_JINJA_OPENER = re.compile(r"\{[{%#]")


def jinja_tags(text: str) -> list[str]:
    """Every Jinja tag that opens in ``text``, from its opener to its closer (or the end)."""
    closers = {"{{": "}}", "{%": "%}", "{#": "#}"}
    tags: list[str] = []
    index = 0
    while (match := _JINJA_OPENER.search(text, index)) is not None:
        close = text.find(closers[match.group()], match.end())
        end = len(text) if close == -1 else close + 2
        tags.append(text[match.start() : end])
        index = end
    return tags


def assert_only_the_deliberate_templates(command: str) -> None:
    """``command`` holds exactly the logical date's, the DAG id's and the run id's templates.

    Each once, in that order, and the id templates single-quoted (Airflow ids are made of
    ``[A-Za-z0-9_.~:+-]``): no other text of the command can open a Jinja tag.
    """
    tags = jinja_tags(command)
    assert tags in (
        ["{{ ds }}", "{{ dag.dag_id }}", "{{ run_id }}"],
        ["{{ ts }}", "{{ dag.dag_id }}", "{{ run_id }}"],
    ), tags
    assert set(tags) <= set(DELIBERATE_TEMPLATES)
    assert "'{{ dag.dag_id }}'" in command and "'{{ run_id }}'" in command


def test_jinja_tags_finds_every_opener() -> None:
    """Control for the helper the Jinja-inertness checks rely on."""
    assert jinja_tags("a {{ ds }} b {% if x %} {# c #} {{ open") == [
        "{{ ds }}",
        "{% if x %}",
        "{# c #}",
        "{{ open",
    ]
    assert jinja_tags("\\{'{' \\{'#x'") == []


def call_named(tree: ast.AST, name: str) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == name)
            or (isinstance(node.func, ast.Attribute) and node.func.attr == name)
        )
    ]


def kwarg(call: ast.Call, name: str) -> ast.expr:
    (value,) = [kw.value for kw in call.keywords if kw.arg == name]
    return value


def literal_kwarg(call: ast.Call, name: str) -> Any:
    return ast.literal_eval(kwarg(call, name))


def has_kwarg(call: ast.Call, name: str) -> bool:
    return any(kw.arg == name for kw in call.keywords)


def bash_operator(source: str) -> ast.Call:
    tree = ast.parse(source)
    imports = {
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert ("airflow.providers.standard.operators.bash", "BashOperator") in imports  # Airflow 3
    assert ("airflow.operators.bash", "BashOperator") in imports  # Airflow 2
    (call,) = call_named(tree, "BashOperator")
    return call


def bash_command(source: str) -> str:
    value: str = literal_kwarg(bash_operator(source), "bash_command")
    return value


def cronjob(handoff: SchedulerHandoff) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(handoff.kubernetes_cronjob)
    return doc


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return spec


def container(doc: dict[str, Any]) -> dict[str, Any]:
    (only,) = pod_spec(doc)["containers"]
    result: dict[str, Any] = only
    return result


def module_assignments(tree: ast.Module) -> dict[str, ast.expr]:
    return {
        node.targets[0].id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
    }


def load_dagster(source: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(compile(source, "<dagster handoff>", "exec"), namespace)
    return namespace


# --------------------------------------------------------------------------- contract shape


def test_to_dict_has_the_contract_keys_and_the_rest() -> None:
    data = build().to_dict()
    contract = {"cron_command", "airflow_task", "dagster_asset", "kubernetes_cronjob"}
    assert contract <= set(data)
    assert {"crontab_line", "airflow_dag", "schedule"} <= set(data)
    assert all(isinstance(value, str) and value for value in data.values())
    assert data["schedule"] == "0 2 * * *"


def test_build_is_deterministic() -> None:
    fields: dict[str, Any] = {
        "argv": [*BASE_ARGV, *ALL_ARGS],
        "env_refs": {"B_VAR": "b", "A_VAR": OPTIONAL_ENV + "a"},
        "data_dirs": {"states": "/var/dpone/states", "locks": "/var/dpone/locks"},
        "working_dir": "/srv/pipelines",
    }
    first = SchedulerHandoffBuilder().build(inputs(**fields))
    second = SchedulerHandoffBuilder().build(inputs(**fields))
    assert first == second
    assert first.to_dict() == second.to_dict()


def test_build_is_pure_no_cwd_env_or_timezone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = build(argv=[*BASE_ARGV, "rel/path"], env_refs={"DPONE_DSN": "the DSN"})
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TZ", "XXX-14")
    monkeypatch.setenv("HOME", str(tmp_path))
    value = "env-value-" + uuid.uuid4().hex
    monkeypatch.setenv("DPONE_DSN", value)
    again = build(argv=[*BASE_ARGV, "rel/path"], env_refs={"DPONE_DSN": "the DSN"})
    assert again == reference
    for text in again.to_dict().values():
        assert value not in text, "the builder must never read environment values"
        assert str(tmp_path) not in text


def test_handoff_and_inputs_are_frozen() -> None:
    handoff = build()
    with pytest.raises(ValidationError):
        handoff.cron_command = "rm -rf /"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        inputs().argv = []  # type: ignore[misc]


def test_no_snippet_carries_a_run_id_and_each_passes_the_logical_date_once() -> None:
    handoff = build()
    for key, text in handoff.to_dict().items():
        assert "--run-id" not in text, key
        if key != "schedule":
            assert text.count("--execution-date") == 1, key
            # ...and says once who runs it (its own run id comes from the scheduler).
            assert text.count("--scheduler") == text.count("--scheduler-run-id") + 1, key
            assert re.search(r"--scheduler[^-]", text) is not None, key
    with pytest.raises(ValidationError):
        inputs(run_id="orders_2026_06_05")


def test_start_date_is_required_and_a_date() -> None:
    with pytest.raises(ValidationError):
        HandoffInputs(argv=BASE_ARGV, name="orders")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        inputs(start_date="yesterday")


# --------------------------------------------------------------------------- periods


@pytest.mark.parametrize("schedule", DAILY)
def test_daily_or_coarser_schedules_pass_a_date(schedule: str) -> None:
    handoff = build(schedule=schedule)
    assert handoff.cron_command.endswith(' --execution-date "$(date -u +%F)" --scheduler cron')
    assert handoff.crontab_line.endswith(' --execution-date "$(date -u +\\%F)" --scheduler cron')
    assert bash_command(handoff.airflow_task).endswith(DAILY_TRAILER)
    script = container(cronjob(handoff))["command"][2]
    assert k8s_expand(script, {}) == k8s_script("+%F")
    partitions = call_named(ast.parse(handoff.dagster_asset), "TimeWindowPartitionsDefinition")
    assert literal_kwarg(partitions[0], "fmt") == "%Y-%m-%d"


@pytest.mark.parametrize("schedule", SUB_DAILY)
def test_sub_daily_schedules_pass_a_utc_minute(schedule: str) -> None:
    handoff = build(schedule=schedule)
    trailer = ' --execution-date "$(date -u +%FT%H:%MZ)" --scheduler cron'
    assert handoff.cron_command.endswith(trailer)
    assert handoff.crontab_line.endswith(trailer.replace("%", "\\%"))
    assert bash_command(handoff.airflow_task).endswith(MINUTE_TRAILER)
    script = container(cronjob(handoff))["command"][2]
    assert k8s_expand(script, {}) == k8s_script("+%FT%H:%MZ")
    partitions = call_named(ast.parse(handoff.dagster_asset), "TimeWindowPartitionsDefinition")
    assert literal_kwarg(partitions[0], "fmt") == "%Y-%m-%dT%H:%M"


@pytest.mark.parametrize(
    ("schedule", "fired", "token"),
    [
        ("0 2 * * *", dt.datetime(2026, 11, 30, 2, 0, tzinfo=UTC), "2026_11_30"),
        ("@daily", dt.datetime(2026, 11, 30, 0, 0, tzinfo=UTC), "2026_11_30"),
        ("*/15 * * * *", dt.datetime(2026, 11, 30, 2, 15, tzinfo=UTC), "2026_11_30T02_15"),
        ("@hourly", dt.datetime(2026, 11, 30, 0, 0, tzinfo=UTC), "2026_11_30"),
    ],
)
def test_every_scheduler_names_the_same_logical_run(
    schedule: str, fired: dt.datetime, token: str
) -> None:
    """A tick's logical date, in each scheduler's idiom, parses to one run-id token."""
    handoff = build(schedule=schedule)
    (cron_fmt,) = re.findall(r'"\$\(date -u (\+[^)]*)\)"', handoff.cron_command)
    script = k8s_expand(container(cronjob(handoff))["command"][2], {})
    assert re.findall(r'"\$\(date -u (\+[^)]*)\)"', script) == [cron_fmt]
    shell_date = subprocess.run(
        ["date", "-u", "-d", f"@{int(fired.timestamp())}", cron_fmt],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    trailer = bash_command(handoff.airflow_task)
    airflow_date = fired.strftime("%Y-%m-%d") if "{{ ds }}" in trailer else fired.isoformat()
    (partitions,) = call_named(ast.parse(handoff.dagster_asset), "TimeWindowPartitionsDefinition")
    dagster_key = fired.strftime(literal_kwarg(partitions, "fmt"))
    for text in (shell_date, airflow_date, dagster_key):
        assert parse_execution_date(text).token() == token, text


# --------------------------------------------------------------------------- cron


def test_cron_command_is_plain_for_plain_arguments() -> None:
    handoff = build()
    expected = (
        "dpone " + " ".join(BASE_ARGV) + ' --execution-date "$(date -u +%F)" --scheduler cron'
    )
    assert handoff.cron_command == expected
    assert build(working_dir="/srv/p").cron_command == "cd /srv/p && " + expected


@pytest.mark.parametrize("arg", ALL_ARGS)
def test_cron_command_shlex_split_round_trips(arg: str) -> None:
    argv = [*BASE_ARGV, "--extra", arg]
    handoff = build(argv=argv, program="/opt/my tools/dpone", working_dir=f"/srv/{arg}")
    assert shlex.split(handoff.cron_command) == [
        "cd",
        f"/srv/{arg}",
        "&&",
        "/opt/my tools/dpone",
        *argv,
        "--execution-date",
        "$(date -u +%F)",
        *CRON_TAIL,
    ]


@pytest.mark.parametrize("shell", ["bash", "sh"])
@pytest.mark.parametrize(("schedule", "fmt"), [("0 2 * * *", DAY_FMT), ("*/5 * * * *", MINUTE_FMT)])
def test_cron_command_runs_in_the_shell_and_delivers_the_argv(
    dumper: Dumper, workdir: Path, shell: str, schedule: str, fmt: str
) -> None:
    handoff = build(
        argv=dumper.argv(ALL_ARGS),
        program=sys.executable,
        working_dir=str(workdir),
        schedule=schedule,
    )
    dates = run_dated(
        lambda: subprocess.run([shell, "-c", handoff.cron_command], check=True, cwd="/"), fmt
    )
    got = dumper.read()
    assert got["cwd"] == str(workdir)
    assert got["argv"][:-4] == ALL_ARGS
    assert got["argv"][-4] == "--execution-date"
    assert got["argv"][-3] in dates
    assert got["argv"][-2:] == CRON_TAIL


@pytest.mark.parametrize("tz", ["XXX-14", "YYY+12"])
def test_cron_command_takes_the_date_in_utc(dumper: Dumper, tz: str) -> None:
    """UTC+14 and UTC-12: at any moment one of them has another date than UTC."""
    handoff = build(argv=dumper.argv([]), program=sys.executable)
    env = {"PATH": "/usr/bin:/bin", "TZ": tz}
    dates = run_dated(
        lambda: subprocess.run(["sh", "-c", handoff.cron_command], check=True, env=env), DAY_FMT
    )
    argv = dumper.read()["argv"]
    assert argv[0] == "--execution-date"
    assert argv[1] in dates
    assert argv[2:] == CRON_TAIL


@pytest.mark.parametrize("schedule", ["*/5  * * * *", " 0 2 * * * ", "@daily", "@hourly"])
def test_crontab_line_starts_with_the_normalised_schedule(schedule: str) -> None:
    handoff = build(schedule=schedule)
    normalised = " ".join(schedule.split())
    assert handoff.schedule == normalised
    assert handoff.crontab_line.startswith(normalised + " ")
    assert crontab_command(handoff.crontab_line).startswith("dpone ")


@pytest.mark.parametrize("arg", NASTY)
def test_crontab_line_is_one_line_with_every_percent_escaped(arg: str) -> None:
    line = build(argv=[*BASE_ARGV, arg], working_dir=f"/srv/{arg}").crontab_line
    assert "\n" not in line and "\r" not in line
    assert re.search(r"(?<!\\)%", line) is None
    for parse in CRONS.values():
        _, stdin = parse(crontab_command(line))
        assert stdin is None, "an unescaped % ends the command; the rest becomes stdin"


@pytest.mark.parametrize("cron", sorted(CRONS))
@pytest.mark.parametrize(
    "args",
    [["plain", "100%", "%F"], ["back\\slash\\", "50\\", "\\n"], NASTY],
    ids=["percent", "backslash", "nasty"],
)
def test_crontab_line_runs_under_sh_as_cron_runs_it(
    dumper: Dumper, workdir: Path, cron: str, args: list[str]
) -> None:
    handoff = build(
        argv=dumper.argv(args),
        program=sys.executable,
        working_dir=str(workdir),
        schedule="*/5 * * * *",
    )
    command, stdin = CRONS[cron](crontab_command(handoff.crontab_line))
    assert stdin is None
    dates = run_dated(
        lambda: subprocess.run(["/bin/sh", "-c", command], check=True, cwd="/"), MINUTE_FMT
    )
    got = dumper.read()
    assert got["cwd"] == str(workdir)
    assert got["argv"][:-4] == args
    assert got["argv"][-4] == "--execution-date"
    assert got["argv"][-3] in dates
    assert got["argv"][-2:] == CRON_TAIL


def _cron_delivers(
    dumper: Dumper, cron: str, args: list[str], working_dir: Path | None = None
) -> dict[str, Any]:
    handoff = build(
        argv=dumper.argv(args),
        program=sys.executable,
        working_dir=None if working_dir is None else str(working_dir),
    )
    command, stdin = CRONS[cron](crontab_command(handoff.crontab_line))
    assert stdin is None, f"cron would end the command at a % and feed {stdin!r} to stdin"
    subprocess.run(["/bin/sh", "-c", command], check=True, cwd="/")
    got = dumper.read()
    assert got["argv"][-4] == "--execution-date"
    parse_execution_date(got["argv"][-3])
    assert got["argv"][-2:] == CRON_TAIL
    return {"argv": got["argv"][:-4], "cwd": got["cwd"]}


@pytest.mark.parametrize("cron", sorted(CRONS))
@pytest.mark.parametrize(
    "args",
    [
        ["C:\\%TEMP%", "like '50\\%'", "\\%F"],
        ["a\\%b", "ctrl\x01 forces bash -c"],
        ["ctrl\x01\\%F"],
    ],
    ids=["single-quoted", "inside-bash-c", "ansi-c"],
)
def test_crontab_line_backslash_before_percent(
    dumper: Dumper, tmp_path: Path, cron: str, args: list[str]
) -> None:
    """cron reads '\\\\%' as an escaped backslash and a bare % (the end of the command)."""
    workdir = tmp_path / "w\\%d"
    workdir.mkdir()
    assert _cron_delivers(dumper, cron, args, workdir) == {"argv": args, "cwd": str(workdir)}


@pytest.mark.parametrize(
    "args",
    [
        ["a\\\\b"],
        ["\x01\\n"],
        ["a\\\\%b"],
        ["\\\\\\\\", "\\\\%\\\\%", "trailing\\\\"],
        ["\x01\\\\%", "\\\\"],
    ],
    ids=[
        "double-backslash",
        "ansi-c-backslash",
        "double-backslash-percent",
        "backslash-runs",
        "ansi-c-backslash-runs",
    ],
)
@pytest.mark.parametrize("cron", sorted(CRONS))
def test_crontab_line_double_backslash(dumper: Dumper, cron: str, args: list[str]) -> None:
    """Debian's cron (Vixie 3.0 line, like FreeBSD's) turns every \\\\ into \\; cronie
    keeps it: the argv must arrive exactly under both."""
    assert _cron_delivers(dumper, cron, args)["argv"] == args


def test_crontab_line_double_backslash_in_the_working_dir(dumper: Dumper, tmp_path: Path) -> None:
    workdir = tmp_path / "w\\\\d\\\\%"
    workdir.mkdir()
    for cron in sorted(CRONS):
        assert _cron_delivers(dumper, cron, ["x"], workdir) == {"argv": ["x"], "cwd": str(workdir)}


@pytest.mark.parametrize(
    "arg", [*ALL_ARGS, "a\\\\b", "a\\\\%b", "\\\\", "\\%", "\x01\\\\%", "\x01\\"]
)
def test_crontab_line_never_puts_a_backslash_before_a_backslash_or_percent(arg: str) -> None:
    line = build(argv=[*BASE_ARGV, arg], working_dir=f"/srv/{arg}").crontab_line
    assert_every_cron_reads_it_alike(line)


def test_crontab_line_splits_a_backslash_from_what_follows() -> None:
    """Single quotes are closed and reopened between them; in $'...' a backslash is \\x5c."""
    line = build(argv=["a\\%b", "a\\\\b"]).crontab_line
    assert "'a\\''\\%b'" in line
    assert "'a\\''\\b'" in line
    line = build(argv=["\x01\\n"]).crontab_line
    assert "\\x01\\x5cn" in line


# --------------------------------------------------------------------------- Airflow


def test_airflow_task_compiles_and_carries_the_command() -> None:
    handoff = build(argv=[*BASE_ARGV, *ALL_ARGS], working_dir="/srv/pipelines")
    compile(handoff.airflow_task, "<airflow task>", "exec")
    call = bash_operator(handoff.airflow_task)
    assert literal_kwarg(call, "task_id") == "orders"
    # BashOperator's cwd is a template field: the command changes directory itself.
    assert not has_kwarg(call, "cwd")
    command = literal_kwarg(call, "bash_command")
    assert command.startswith("cd /srv/pipelines && dpone ")
    assert "\n" not in command and "\r" not in command
    tree = ast.parse(handoff.airflow_task)
    (assign,) = [n for n in tree.body if isinstance(n, ast.Assign)]
    assert isinstance(assign.targets[0], ast.Name)
    assert assign.targets[0].id == python_identifier("orders")
    assert not has_kwarg(bash_operator(build().airflow_task), "cwd")
    assert bash_command(build().airflow_task).startswith("dpone ")


def test_airflow_bash_command_splits_back_after_rendering() -> None:
    # shlex cannot read bash $'...' words: arguments with control characters are
    # covered by the bash run below.
    argv = [*BASE_ARGV, *PRINTABLE_NASTY]
    rendered = render_like_airflow(bash_command(build(argv=argv).airflow_task))
    assert shlex.split(rendered) == ["dpone", *argv, *airflow_tail("2026-11-30")]
    assert airflow_tail("2026-11-30")[-4:] == [
        "--dag-id",
        "the_dag.id-1",
        "--scheduler-run-id",
        "scheduled__2026-11-30T02:00:00+00:00",
    ]


@pytest.mark.parametrize("last", ["{{ ds }}", "deploy.sh", "run.bash", "X.SH", "{", "{%", "{#"])
@pytest.mark.parametrize(
    ("schedule", "trailer"), [("0 2 * * *", DAILY_TRAILER), ("@hourly", MINUTE_TRAILER)]
)
def test_airflow_bash_command_is_jinja_inert(last: str, schedule: str, trailer: str) -> None:
    """Airflow renders bash_command with Jinja, and loads it as a template *file* when it
    ends in .sh/.bash: only the deliberate templates may open a tag."""
    argv = [*BASE_ARGV, "--note", "{{ ds }} {% raw %} {# x #} {{", *ALL_ARGS, last]
    command = bash_command(build(argv=argv, schedule=schedule).airflow_task)
    assert command.endswith(trailer)
    assert_only_the_deliberate_templates(command)
    head = command[: -len(trailer)]
    for opener in JINJA_OPENERS:
        assert opener not in head
    assert not command.lower().endswith((".sh", ".bash"))
    assert render_like_airflow(command) == head + render_like_airflow(trailer)


@pytest.mark.parametrize(
    ("schedule", "logical"),
    [("0 2 * * *", "2026-11-30"), ("*/10 * * * *", "2026-11-30T02:00:00+00:00")],
)
def test_airflow_bash_command_runs_in_bash_after_rendering(
    dumper: Dumper, workdir: Path, schedule: str, logical: str
) -> None:
    handoff = build(
        argv=dumper.argv(ALL_ARGS),
        program=sys.executable,
        working_dir=str(workdir),
        schedule=schedule,
    )
    call = bash_operator(handoff.airflow_task)
    assert not has_kwarg(call, "cwd")
    rendered = render_like_airflow(literal_kwarg(call, "bash_command"))
    # BashOperator runs `bash -c <command>` in a temporary directory: the command cds.
    subprocess.run(["bash", "-c", rendered], check=True, cwd="/")
    got = dumper.read()
    assert got == {"argv": [*ALL_ARGS, *airflow_tail(logical)], "cwd": str(workdir)}
    parse_execution_date(logical)


#: Ids Airflow accepts: DAG ids are ``[\w.-]+`` (\w is Unicode), run ids ``[A-Za-z0-9_.~:+-]+``
#: by default, and both regexes end in ``$``, which also matches before a final newline.
AIRFLOW_IDS = [
    ("the_dag.id-1", "scheduled__2026-11-30T02:00:00+00:00"),
    ("shop.orders", "manual__2026-11-30T02:00:00.123456+00:00"),
    ("Ab9_.-", "backfill__2026-11-30T02:00:00+00:00"),
    ("日本_é.x", "a~b:c+d.e_f-g"),
    ("-", "~"),
    ("dag\n", "run\n"),
]


@pytest.mark.parametrize(("dag_id", "run_id"), AIRFLOW_IDS)
def test_airflow_ids_arrive_exactly_after_rendering(
    dumper: Dumper, dag_id: str, run_id: str
) -> None:
    """The DAG id and run id are rendered into single quotes: any id Airflow accepts
    reaches dpone as one argument, unchanged."""
    handoff = build(argv=dumper.argv(["x"]), program=sys.executable)
    context = airflow_context(dag_id, run_id)
    rendered = render_like_airflow(bash_command(handoff.airflow_task), context)
    subprocess.run(["bash", "-c", rendered], check=True, cwd="/")
    assert dumper.read()["argv"] == ["x", *airflow_tail("2026-11-30", context)]


def test_airflow_cd_is_rendered_unchanged_for_a_plain_directory() -> None:
    command = bash_command(build(working_dir="/srv/pipe lines").airflow_task)
    assert command.startswith("cd '/srv/pipe lines' && dpone ")
    words = shlex.split(render_like_airflow(command))
    assert words[:4] == ["cd", "/srv/pipe lines", "&&", "dpone"]


@pytest.mark.parametrize(
    "directory", ["{{ ds }}", "{#x", "{% raw %}", "{{", "{", "ends.sh", "run.bash", "X.SH"]
)
def test_airflow_working_dir_is_jinja_inert(dumper: Dumper, tmp_path: Path, directory: str) -> None:
    """BashOperator's cwd is a template field (template_fields = ('bash_command', 'env',
    'cwd')), rendered, and loaded as a template file when it ends in .sh/.bash: the task
    changes into the working directory in its Jinja-inert bash_command instead."""
    workdir = tmp_path / directory
    workdir.mkdir()
    handoff = build(argv=dumper.argv(["x"]), program=sys.executable, working_dir=str(workdir))
    call = bash_operator(handoff.airflow_task)
    assert not has_kwarg(call, "cwd")
    command = literal_kwarg(call, "bash_command")
    assert command.startswith("cd ") and command.endswith(DAILY_TRAILER)
    assert_only_the_deliberate_templates(command)
    head = command[: -len(DAILY_TRAILER)]
    for opener in JINJA_OPENERS:
        assert opener not in head
    rendered = render_like_airflow(command)
    assert rendered == head + render_like_airflow(DAILY_TRAILER)
    assert shlex.split(rendered)[:3] == ["cd", str(workdir), "&&"]
    subprocess.run(["bash", "-c", rendered], check=True, cwd="/")
    assert dumper.read() == {"argv": ["x", *airflow_tail("2026-11-30")], "cwd": str(workdir)}


def _dag_call(source: str) -> ast.Call:
    tree = ast.parse(source)
    (with_node,) = [node for node in ast.walk(tree) if isinstance(node, ast.With)]
    call = with_node.items[0].context_expr
    assert isinstance(call, ast.Call)
    assert isinstance(call.func, ast.Name) and call.func.id == "DAG"
    return call


def test_airflow_dag_is_a_complete_file() -> None:
    handoff = build(
        argv=[*BASE_ARGV, *ALL_ARGS],
        schedule="15 3 * * 1-5",
        start_date=dt.date(2025, 12, 31),
        working_dir="/srv/pipelines",
        env_refs={"DPONE_DSN": "warehouse DSN"},
    )
    compile(handoff.airflow_dag, "<airflow dag>", "exec")
    call = _dag_call(handoff.airflow_dag)
    assert literal_kwarg(call, "dag_id") == "shop.orders"
    schedule = kwarg(call, "schedule")
    assert isinstance(schedule, ast.Call)
    assert isinstance(schedule.func, ast.Name) and schedule.func.id == "CronTriggerTimetable"
    assert [ast.literal_eval(arg) for arg in schedule.args] == ["15 3 * * 1-5"]
    assert literal_kwarg(schedule, "timezone") == "UTC"
    start = eval(
        compile(ast.Expression(kwarg(call, "start_date")), "<start>", "eval"), {"datetime": dt}
    )
    assert start == dt.datetime(2025, 12, 31, tzinfo=UTC)
    assert literal_kwarg(call, "catchup") is False
    assert literal_kwarg(call, "max_active_runs") == 1
    operator = bash_operator(handoff.airflow_dag)
    assert not has_kwarg(operator, "cwd")
    assert literal_kwarg(operator, "bash_command").startswith("cd /srv/pipelines && ")
    assert literal_kwarg(operator, "task_id") == "orders"
    assert literal_kwarg(operator, "bash_command") == bash_command(handoff.airflow_task)
    assert "DPONE_DSN" in handoff.airflow_dag and "DPONE_DSN" in handoff.airflow_task


def dag_id_of(handoff: SchedulerHandoff) -> str:
    value: str = literal_kwarg(_dag_call(handoff.airflow_dag), "dag_id")
    return value


def test_airflow_dag_id_is_given_or_derived() -> None:
    assert dag_id_of(build(dag_id="team.orders-v2")) == "team.orders-v2"
    # A given id Airflow would refuse is made valid (and hashed, so it stays distinct).
    given = dag_id_of(build(dag_id="my dag"))
    assert given == airflow_id("my dag") != "my dag"
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", given)
    assert dag_id_of(build()) == "shop.orders"
    derived = dag_id_of(build(namespace="shop/eu", name="a b"))
    assert derived == airflow_id("shop/eu.a b")
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", derived)


@pytest.mark.parametrize("name", [n for n in ODD_NAMES if n])
def test_odd_names_give_compilable_airflow_files(name: str) -> None:
    handoff = build(name=name, namespace=name)
    compile(handoff.airflow_task, "<airflow task>", "exec")
    compile(handoff.airflow_dag, "<airflow dag>", "exec")
    assert literal_kwarg(bash_operator(handoff.airflow_task), "task_id") == airflow_id(name)


@pytest.mark.parametrize("value", ['say """hi"""', "'''", "end\\", "a\nb\r\x0c\x85\u2028c"])
@pytest.mark.parametrize("field", ["name", "namespace"])
def test_triple_quotes_in_names_give_compilable_files(field: str, value: str) -> None:
    """Names are quoted (repr) in the files' header comments, never in a docstring,
    which a '\"\"\"' of the name would end."""
    handoff = build(**{field: value})
    for source in (handoff.airflow_task, handoff.airflow_dag, handoff.dagster_asset):
        compile(source, "<handoff>", "exec")
        assert ast.get_docstring(ast.parse(source)) is None
        header = list(itertools.takewhile(lambda line: line.startswith("# "), source.split("\n")))
        assert header and repr(value) in header[0], source


# --------------------------------------------------------------------------- Dagster


def test_dagster_file_compiles_and_carries_the_command() -> None:
    argv = [*BASE_ARGV, *ALL_ARGS]
    handoff = build(argv=argv, working_dir="/srv/pipelines", start_date=dt.date(2025, 12, 31))
    compile(handoff.dagster_asset, "<dagster>", "exec")
    tree = ast.parse(handoff.dagster_asset)
    values = module_assignments(tree)
    assert ast.literal_eval(values["COMMAND"]) == ["dpone", *argv]
    assert ast.literal_eval(values["WORKING_DIR"]) == "/srv/pipelines"
    partitions = values["PARTITIONS"]
    assert isinstance(partitions, ast.Call)
    assert literal_kwarg(partitions, "cron_schedule") == "0 2 * * *"
    assert literal_kwarg(partitions, "start") == "2025-12-31"
    assert literal_kwarg(partitions, "fmt") == "%Y-%m-%d"
    assert literal_kwarg(partitions, "timezone") == "UTC"
    assert literal_kwarg(partitions, "end_offset") == 1
    (function,) = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    assert function.name == "orders"
    (decorator,) = function.decorator_list
    assert isinstance(decorator, ast.Call) and ast.unparse(decorator.func) == "dg.asset"
    assert literal_kwarg(decorator, "key") == ["shop", "orders"]
    assert ast.unparse(kwarg(decorator, "partitions_def")) == "PARTITIONS"
    (command,) = [
        node.value
        for node in function.body
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "command"
    ]
    assert ast.unparse(command) == (
        "[*COMMAND, '--execution-date', context.partition_key, "
        "'--scheduler', 'dagster', '--scheduler-run-id', context.run.run_id]"
    )
    (run,) = call_named(function, "run")
    assert ast.unparse(run.func) == "pipes_subprocess_client.run"
    assert ast.unparse(kwarg(run, "cwd")) == "WORKING_DIR"
    assert ast.unparse(kwarg(run, "command")) == "command"
    assert (
        ast.literal_eval(module_assignments(ast.parse(build().dagster_asset))["WORKING_DIR"])
        is None
    )


@pytest.mark.parametrize(
    ("schedule", "fmt", "start"),
    [
        ("0 2 * * *", "%Y-%m-%d", "2026-01-02"),
        ("*/15 * * * *", "%Y-%m-%dT%H:%M", "2026-01-02T00:00"),
    ],
)
def test_dagster_partition_format_follows_the_schedule(schedule: str, fmt: str, start: str) -> None:
    values = module_assignments(ast.parse(build(schedule=schedule).dagster_asset))
    partitions = values["PARTITIONS"]
    assert isinstance(partitions, ast.Call)
    assert literal_kwarg(partitions, "fmt") == fmt
    assert literal_kwarg(partitions, "cron_schedule") == schedule
    # Dagster parses the start with the partitions' own format.
    assert dt.datetime.strptime(literal_kwarg(partitions, "start"), fmt).date() == START
    assert literal_kwarg(partitions, "start") == start


@pytest.mark.parametrize("name", ["orders", "a/b", "dg", "class", "2026", "日本", "x" * 300])
def test_dagster_file_loads_as_definitions(name: str) -> None:
    import dagster as dg

    handoff = build(name=name, namespace=f"{name}.yml")
    defs = load_dagster(handoff.dagster_asset)["defs"]
    assert isinstance(defs, dg.Definitions)
    assert len(list(defs.assets or [])) == 1
    assert len(list(defs.jobs or [])) == 1
    assert len(list(defs.schedules or [])) == 1
    dg.Definitions.validate_loadable(defs)
    repo = defs.get_repository_def()
    (asset,) = defs.assets  # type: ignore[misc]
    assert asset.key == dg.AssetKey([python_identifier(f"{name}.yml"), python_identifier(name)])
    (schedule,) = repo.schedule_defs
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.execution_timezone == "UTC"
    assert schedule.job_name == python_identifier(name) + "_job"


def materialize_recording(
    source: str, partition: str
) -> tuple[str, list[dict[str, Any]], list[warnings.WarningMessage]]:
    """Materialize the file's asset in process for ``partition``, with a Pipes client that
    records its calls instead of running anything: the run id, the calls, the warnings."""
    import dagster as dg

    calls: list[dict[str, Any]] = []

    class RecordingClient(dg.PipesSubprocessClient):
        def run(self, *, context: Any, extras: Any = None, **kwargs: Any) -> Any:
            calls.append({"command": kwargs["command"], "cwd": kwargs.get("cwd")})
            return SimpleNamespace(get_materialize_result=dg.MaterializeResult)

    namespace = load_dagster(source)
    (asset,) = namespace["defs"].assets
    with warnings.catch_warnings(record=True) as caught, dg.DagsterInstance.ephemeral() as inst:
        warnings.simplefilter("always")
        result = dg.materialize(
            [asset],
            partition_key=partition,
            resources={"pipes_subprocess_client": RecordingClient()},
            instance=inst,
        )
    assert result.success
    return result.run_id, calls, caught


@pytest.mark.parametrize(
    ("schedule", "partition"), [("0 2 * * *", "2026-11-30"), ("*/15 * * * *", "2026-11-30T02:15")]
)
def test_dagster_asset_passes_the_partition_and_its_own_run_id(
    schedule: str, partition: str
) -> None:
    """The command is the file's COMMAND, the partition key and who runs it: Dagster, and
    the id of this very Dagster run."""
    argv = ["orchestrate", "run", "--manifest", "/srv/m.yml", "it's {{ ds }} $x"]
    source = build(argv=argv, schedule=schedule, working_dir="/srv/p").dagster_asset
    run_id, calls, _ = materialize_recording(source, partition)
    tail = ["--execution-date", partition, "--scheduler", "dagster", "--scheduler-run-id", run_id]
    assert calls == [{"command": ["dpone", *argv, *tail], "cwd": "/srv/p"}]


def test_dagster_asset_uses_no_deprecated_context_api() -> None:
    _, calls, caught = materialize_recording(build().dagster_asset, "2026-11-30")
    assert len(calls) == 1
    deprecated = [str(w.message) for w in caught if "AssetExecutionContext" in str(w.message)]
    assert deprecated == []


def test_dagster_daily_partition_of_a_tick_is_the_tick_date() -> None:
    partitions = load_dagster(build().dagster_asset)["PARTITIONS"]
    tick = dt.datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
    keys = partitions.get_partition_keys(current_time=tick)
    assert keys[0] == "2026-01-02"
    assert keys[-1] == "2026-11-30"
    assert parse_execution_date(keys[-1]).token() == "2026_11_30"


def test_dagster_sub_daily_file_loads() -> None:
    import dagster as dg

    namespace = load_dagster(build(schedule="*/15 * * * *").dagster_asset)
    assert isinstance(namespace["defs"], dg.Definitions)
    tick = dt.datetime(2026, 11, 30, 2, 15, tzinfo=UTC)
    keys = namespace["PARTITIONS"].get_partition_keys(current_time=tick)
    assert keys[0] == "2026-01-02T00:00"
    assert keys[-1] == "2026-11-30T02:15"
    assert parse_execution_date(keys[-1]).token() == "2026_11_30T02_15"


# --------------------------------------------------------------------------- Kubernetes


def test_kubernetes_cronjob_fields() -> None:
    argv = [*BASE_ARGV, *ALL_ARGS]
    handoff = build(
        argv=argv,
        schedule="15 3 * * 1-5",
        image="registry.example/dpone:1.2",
        working_dir="/srv/pipelines",
        termination_grace_seconds=120,
    )
    doc = cronjob(handoff)
    assert doc["apiVersion"] == "batch/v1"
    assert doc["kind"] == "CronJob"
    assert doc["metadata"]["name"] == kubernetes_name("shop-orders") == "shop-orders"
    assert doc["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "dpone"}
    assert doc["metadata"]["annotations"]["dpone/process"] == "orders"
    assert doc["metadata"]["annotations"]["dpone/manifest"] == "shop"
    spec = doc["spec"]
    assert spec["schedule"] == "15 3 * * 1-5"
    assert spec["timeZone"] == "Etc/UTC"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["jobTemplate"]["spec"]["backoffLimit"] == 0
    pod = pod_spec(doc)
    assert pod["restartPolicy"] == "Never"
    assert pod["terminationGracePeriodSeconds"] == 120
    box = container(doc)
    assert box["image"] == "registry.example/dpone:1.2"
    assert box["workingDir"] == "/srv/pipelines"
    command = box["command"]
    assert command[:2] == ["/bin/sh", "-c"]
    assert k8s_expand(command[2], {}) == k8s_script("+%F")
    assert command[3:] == [word.replace("$", "$$") for word in ["dpone", *argv]]
    # Always the Job's name (downward API), even without secrets.
    assert box["env"] == [JOB_NAME_ENTRY]
    assert "volumeMounts" not in box and "volumes" not in pod


def test_kubernetes_defaults_cannot_be_applied_by_mistake() -> None:
    doc = cronjob(build())
    assert IMAGE_PLACEHOLDER == ""
    assert container(doc)["image"] == IMAGE_PLACEHOLDER
    assert pod_spec(doc)["terminationGracePeriodSeconds"] == 15
    assert "workingDir" not in container(doc)


def test_kubernetes_every_dollar_is_doubled() -> None:
    command = container(cronjob(build(argv=[*BASE_ARGV, *ALL_ARGS])))["command"]
    for word in command:
        assert "$" not in word.replace("$$", ""), word


def test_kubernetes_container_command_runs_and_delivers_the_argv(
    dumper: Dumper, workdir: Path
) -> None:
    # The container's env defines the Job-name variable: arguments naming it stay as written.
    args = [*ALL_ARGS, f"$({JOB_NAME_ENV})", f"${{{JOB_NAME_ENV}}}"]
    handoff = build(argv=dumper.argv(args), program=sys.executable, working_dir=str(workdir))
    box = container(cronjob(handoff))
    # The kubelet sets the downward-API variable to the Job's name (its pod's label).
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": "/k8s-home",
        "DPONE_DSN": "from-secret",
        JOB_NAME_ENV: JOB_NAME,
    }
    expanded = [k8s_expand(word, env) for word in box["command"]]
    dates = run_dated(
        lambda: subprocess.run(expanded, check=True, cwd=box["workingDir"], env=env), DAY_FMT
    )
    got = dumper.read()
    assert got["cwd"] == str(workdir)
    assert got["argv"][:-6] == args
    assert got["argv"][-6] == "--execution-date"
    assert got["argv"][-5] in dates
    assert got["argv"][-4:] == [*K8S_TAIL, "--scheduler-run-id", JOB_NAME]


@pytest.mark.parametrize(
    "job_env",
    [{}, {JOB_NAME_ENV: ""}],
    ids=["unset", "empty"],
)
def test_kubernetes_without_a_job_name_passes_no_scheduler_run_id(
    dumper: Dumper, job_env: dict[str, str]
) -> None:
    """A pod without the Job-name label (Kubernetes before 1.27, a bare pod) gets an empty
    variable from the downward API; dpone then gets no --scheduler-run-id, not an empty one."""
    handoff = build(argv=dumper.argv(["x"]), program=sys.executable)
    env = {"PATH": "/usr/bin:/bin", **job_env}
    expanded = [k8s_expand(word, env) for word in container(cronjob(handoff))["command"]]
    dates = run_dated(lambda: subprocess.run(expanded, check=True, env=env), DAY_FMT)
    argv = dumper.read()["argv"]
    assert argv[:2] == ["x", "--execution-date"] and argv[2] in dates
    assert argv[3:] == K8S_TAIL


@pytest.mark.parametrize(
    "job_name", [JOB_NAME, "a $(b) `c` 'd' \"e\" ${f} *", "-x", "--scheduler-run-id"]
)
def test_kubernetes_job_name_arrives_as_one_argument(dumper: Dumper, job_name: str) -> None:
    """The variable is quoted in the script: whatever the label holds is one word, never
    split, globbed or expanded again."""
    handoff = build(argv=dumper.argv(["x"]), program=sys.executable)
    env = {"PATH": "/usr/bin:/bin", JOB_NAME_ENV: job_name}
    expanded = [k8s_expand(word, env) for word in container(cronjob(handoff))["command"]]
    subprocess.run(expanded, check=True, env=env, cwd="/")
    argv = dumper.read()["argv"]
    assert argv[0] == "x" and argv[1] == "--execution-date"
    assert argv[3:] == [*K8S_TAIL, "--scheduler-run-id", job_name]


def test_kubernetes_sub_daily_container_passes_the_minute(dumper: Dumper) -> None:
    handoff = build(argv=dumper.argv(["x"]), program=sys.executable, schedule="*/15 * * * *")
    env = {"PATH": "/usr/bin:/bin", JOB_NAME_ENV: JOB_NAME}
    expanded = [k8s_expand(word, env) for word in container(cronjob(handoff))["command"]]
    dates = run_dated(lambda: subprocess.run(expanded, check=True, env=env), MINUTE_FMT)
    argv = dumper.read()["argv"]
    assert argv[:2] == ["x", "--execution-date"] and argv[2] in dates
    assert argv[3:] == [*K8S_TAIL, "--scheduler-run-id", JOB_NAME]


def test_kubernetes_secret_refs() -> None:
    env_refs = {
        "DPONE_DSN": "warehouse DSN\nwith: yaml",
        "API_TOKEN": OPTIONAL_ENV + "referenced by the manifest, which has a default",
        "NOT_OPTIONAL": "says optional: later, not first",
    }
    doc = cronjob(build(env_refs=env_refs, secret_name="team-secrets"))
    assert container(doc)["env"] == [
        JOB_NAME_ENTRY,  # first: the Job's name, from the downward API
        {
            "name": "API_TOKEN",
            "valueFrom": {
                "secretKeyRef": {"name": "team-secrets", "key": "API_TOKEN", "optional": True}
            },
        },
        {
            "name": "DPONE_DSN",
            "valueFrom": {"secretKeyRef": {"name": "team-secrets", "key": "DPONE_DSN"}},
        },
        {
            "name": "NOT_OPTIONAL",
            "valueFrom": {"secretKeyRef": {"name": "team-secrets", "key": "NOT_OPTIONAL"}},
        },
    ]


def test_kubernetes_data_dirs_are_one_claim_and_one_mount_each() -> None:
    data_dirs = {"locks": "/var/dpone/locks", "states": "/var/dpone/states", "evidence": "/out"}
    doc = cronjob(build(data_dirs=data_dirs))
    (volume,) = pod_spec(doc)["volumes"]
    assert volume["persistentVolumeClaim"] == {"claimName": "dpone-data"}
    mounts = container(doc)["volumeMounts"]
    assert sorted((m["subPath"], m["mountPath"]) for m in mounts) == sorted(data_dirs.items())
    assert {m["name"] for m in mounts} == {volume["name"]}


def test_kubernetes_mount_paths_are_unique() -> None:
    """data_dirs entries may share a directory (--lock-dir and --state-dir both
    /var/dpone); the API server refuses two volumeMounts at one mountPath ('must be
    unique'), so there is one mount per path, with the first sub-path."""
    data_dirs = {"locks": "/var/dpone", "evidence": "/out", "states": "/var/dpone"}
    doc = cronjob(build(data_dirs=data_dirs))
    mounts = container(doc)["volumeMounts"]
    paths = [m["mountPath"] for m in mounts]
    assert len(paths) == len(set(paths))
    assert [(m["subPath"], m["mountPath"]) for m in mounts] == [
        ("locks", "/var/dpone"),
        ("evidence", "/out"),
    ]
    (volume,) = pod_spec(doc)["volumes"]
    assert {m["name"] for m in mounts} == {volume["name"]}


@pytest.mark.parametrize(
    "arg",
    [
        "x\x85y",
        "a\u2028b\u2029c",
        "\ufeff",
        "\x7f\x9f",
        "😀",
        "- item",
        "null",
        "~",
        "'",
        '"',
        "\\",
        "# not a comment",
        "key: value",
        "&anchor *alias !tag %YAML",
        "\t\r\n",
    ],
)
def test_kubernetes_yaml_survives_odd_characters(arg: str) -> None:
    box = container(cronjob(build(argv=["run", arg], working_dir=f"/srv/{arg}")))
    assert [k8s_expand(word, {}) for word in box["command"][3:]] == ["dpone", "run", arg]
    assert box["workingDir"] == f"/srv/{arg}"


def test_kubernetes_header_is_yaml_comments_and_the_body_is_json() -> None:
    text = build(env_refs={"DPONE_DSN": "dsn"}, data_dirs={"states": "/s"}).kubernetes_cronjob
    lines = text.splitlines()
    body_start = lines.index("{")
    assert body_start > 0
    assert all(line.startswith("# ") for line in lines[:body_start])
    assert json.loads("\n".join(lines[body_start:])) == yaml.safe_load(text)


# --------------------------------------------------------------------------- names

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
AIRFLOW_ID = re.compile(r"[A-Za-z0-9_.-]+")
SNIPPET_NAMES = {
    "dg",
    "datetime",
    "BashOperator",
    "DAG",
    "CronTriggerTimetable",
    "COMMAND",
    "WORKING_DIR",
    "PARTITIONS",
    "defs",
    "pipes_subprocess_client",
    "context",
}


def _dagster_disallowed() -> frozenset[str]:
    from dagster._core.definitions.utils import DISALLOWED_NAMES

    return frozenset(DISALLOWED_NAMES)


@pytest.mark.parametrize("name", ODD_NAMES)
def test_derived_names_are_valid(name: str) -> None:
    k8s = kubernetes_name(name)
    assert DNS_LABEL.fullmatch(k8s) and len(k8s) <= 52
    task_id = airflow_id(name)
    assert AIRFLOW_ID.fullmatch(task_id) and len(task_id) <= 250
    ident = python_identifier(name)
    assert ident.isidentifier() and ident.isascii()
    assert not keyword.iskeyword(ident)
    assert ident not in _dagster_disallowed()
    assert ident not in SNIPPET_NAMES


@pytest.mark.parametrize("name", [n for n in ODD_NAMES if n])
def test_derived_names_are_what_the_snippets_use(name: str) -> None:
    handoff = build(name=name)
    doc = cronjob(handoff)
    assert doc["metadata"]["name"] == kubernetes_name(f"shop-{name}")
    assert doc["metadata"]["annotations"]["dpone/process"] == name
    assert literal_kwarg(bash_operator(handoff.airflow_task), "task_id") == airflow_id(name)
    (function,) = [
        n for n in ast.parse(handoff.dagster_asset).body if isinstance(n, ast.FunctionDef)
    ]
    assert function.name == python_identifier(name)


def test_valid_names_are_kept_as_they_are() -> None:
    assert kubernetes_name("orders") == "orders"
    assert kubernetes_name("a" * 52) == "a" * 52
    assert kubernetes_name("a" * 53) != "a" * 53
    assert airflow_id("orders.daily-1") == "orders.daily-1"
    assert python_identifier("orders_daily") == "orders_daily"


def test_derived_names_keep_distinct_names_distinct() -> None:
    for derive in (kubernetes_name, airflow_id, python_identifier):
        derived = [derive(name) for name in ODD_NAMES]
        assert len(set(derived)) == len(ODD_NAMES), derive.__name__
        assert derive("a/b") != derive("a_b"), derive.__name__
        assert derive("x" * 300) != derive("x" * 301), derive.__name__


def test_cronjob_name_and_default_dag_id_are_the_manifest_then_the_process() -> None:
    handoff = build()
    assert cronjob(handoff)["metadata"]["name"] == "shop-orders"
    assert dag_id_of(handoff) == "shop.orders"
    # The separator inside the namespace makes the plain join ambiguous: derived from
    # the pair itself, which no scheduler accepts as it is, so it is always hashed.
    split = build(namespace="orders-eu.v2", name="daily")
    assert cronjob(split)["metadata"]["name"] == kubernetes_name(repr(("orders-eu.v2", "daily")))
    assert dag_id_of(split) == airflow_id(repr(("orders-eu.v2", "daily")))
    for derived in (cronjob(split)["metadata"]["name"], dag_id_of(split)):
        assert re.fullmatch(r".*[-_][0-9a-f]{8}", derived), derived


#: Pairs of distinct (namespace, name) whose plain joins (or mapped forms) meet.
MEETING_PAIRS = [
    (("orders-eu", "daily"), ("orders", "eu-daily")),
    (("orders.eu", "daily"), ("orders", "eu.daily")),
    (("orders_eu", "daily"), ("orders", "eu_daily")),
    (("orders/eu", "daily"), ("orders", "eu/daily")),
    (("Shop", "orders"), ("shop", "orders")),
    (("shop", "a b"), ("shop", "a_b")),
    (("a-b", "c.d"), ("a", "b-c.d")),
]


@pytest.mark.parametrize(("first", "second"), MEETING_PAIRS)
def test_distinct_processes_get_distinct_cronjob_names(
    first: tuple[str, str], second: tuple[str, str]
) -> None:
    one = cronjob(build(namespace=first[0], name=first[1]))["metadata"]["name"]
    two = cronjob(build(namespace=second[0], name=second[1]))["metadata"]["name"]
    assert one != two


@pytest.mark.parametrize(("first", "second"), MEETING_PAIRS)
def test_distinct_processes_get_distinct_default_dag_ids(
    first: tuple[str, str], second: tuple[str, str]
) -> None:
    one = dag_id_of(build(namespace=first[0], name=first[1]))
    two = dag_id_of(build(namespace=second[0], name=second[1]))
    assert one != two


# --------------------------------------------------------------------------- secrets


def test_registered_secrets_are_masked_in_every_snippet() -> None:
    secret = "s3cr3t-" + uuid.uuid4().hex
    visible = "visible-" + uuid.uuid4().hex
    register_secret(secret)
    handoff = build(
        argv=[*BASE_ARGV, "--token", secret, f"x{secret}y", visible, "postgresql://app:pw123@db/x"],
        program=f"/opt/{secret}/dpone",
        working_dir=f"/srv/{secret}",
        name=f"orders-{secret}",
        namespace=f"shop-{secret}",
        image=f"registry.example/{secret}:1",
        dag_id=f"dag_{secret}",
        env_refs={"DPONE_DSN": f"the DSN {secret}"},
        data_dirs={"states": f"/var/{secret}"},
    )
    for key, text in handoff.to_dict().items():
        assert secret not in text, key
        assert "pw123" not in text, key
    assert visible in handoff.cron_command, "control: unregistered text is kept"
    assert "***" in handoff.cron_command


def test_env_refs_are_names_and_descriptions_only() -> None:
    handoff = build(env_refs={"DPONE_DSN": "warehouse DSN"})
    for key in ("airflow_task", "airflow_dag", "dagster_asset", "kubernetes_cronjob"):
        assert "DPONE_DSN" in getattr(handoff, key), key
    assert "DPONE_DSN" not in build().kubernetes_cronjob


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "overrides",
    [
        {"argv": ["a\x00b"]},
        {"argv": ["\udc80"]},
        {"program": "dp\x00one"},
        {"program": ""},
        {"name": ""},
        {"name": "a\x00"},
        {"namespace": ""},
        {"namespace": "\ud800"},
        {"working_dir": ""},
        {"working_dir": "-"},
        {"working_dir": "0"},
        {"working_dir": "srv/pipelines"},
        {"working_dir": "/srv/\x00"},
        {"image": "img\x00"},
        {"dag_id": "\udfff"},
        {"schedule": "0 2 * *"},
        {"schedule": "0 2 * * * *"},
        {"schedule": "@sometimes"},
        {"schedule": "every day"},
        {"schedule": ""},
        {"schedule": "0 2 * * *\nrm -rf /"},
        {"schedule": "0 2 * * %"},
        {"schedule": "0 2 * * $(id)"},
        {"schedule": "@reboot"},
        # Quartz extensions: neither cron nor Kubernetes reads them.
        {"schedule": "0 2 ? * MON-FRI"},
        {"schedule": "0 2 * * ?"},
        {"schedule": "0 2 L * *"},
        {"schedule": "0 2 LW * *"},
        {"schedule": "0 2 15W * *"},
        {"schedule": "0 2 * * 5L"},
        {"schedule": "0 2 * * 1#2"},
        {"schedule": "0 2 * * MON#2"},
        {"env_refs": {"NOT A NAME": "x"}},
        {"env_refs": {"1ABC": "x"}},
        {"env_refs": {"A-B": "x"}},
        {"env_refs": {"": "x"}},
        {"env_refs": {"OK": "desc\x00"}},
        {"data_dirs": {"states": "var/dpone/states"}},
        {"data_dirs": {"states": ""}},
        {"data_dirs": {"States": "/var/dpone"}},
        {"data_dirs": {"../x": "/var/dpone"}},
        {"data_dirs": {"states": "/var/\x00"}},
        {"secret_name": "Not_DNS"},
        {"secret_name": ""},
        {"secret_name": "-lead"},
        {"secret_name": "a" * 254},
        {"termination_grace_seconds": 0},
        {"run_id": "orders_2026_06_05"},
    ],
)
def test_invalid_inputs_are_rejected(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        inputs(**overrides)


@pytest.mark.parametrize(
    "overrides",
    [
        {"schedule": "@annually"},
        {"schedule": "@monthly"},
        {"schedule": "0 2 * * MON-FRI"},
        {"schedule": "0 2 1 jan,JUL *"},
        {"schedule": "*/5 1-3 1,15 * SUN"},
        {"schedule": "0-30/10 2 * 1-12/3 0-6"},
        {"secret_name": "team.secrets-1"},
        {"data_dirs": {"states-2": "/var/dpone"}},
        {"argv": []},
        {"argv": [""]},
        {"env_refs": {"_X1": ""}},
    ],
)
def test_edge_inputs_are_accepted(overrides: dict[str, Any]) -> None:
    assert build(**overrides).cron_command


@pytest.mark.parametrize("working_dir", ["-", "0", "srv/pipelines", "./srv", "~/srv", " /srv"])
def test_working_dir_must_be_absolute(working_dir: str) -> None:
    """A snippet runs from any directory (cron's home, Airflow's temporary directory):
    a relative one would depend on it (and `cd -` is not even a directory)."""
    with pytest.raises(ValidationError, match="absolute"):
        inputs(working_dir=working_dir)
    assert build(working_dir="/" + working_dir).cron_command.startswith("cd ")
