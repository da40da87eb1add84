"""Property tests (hypothesis) of the scheduler handoff builder: arbitrary text arguments.

Pure checks only (no subprocess): ``shlex``, models of cron's ``%`` and ``\\`` handling, Jinja
(as Airflow renders ``bash_command``), PyYAML with Kubernetes' ``$(VAR)`` expansion,
``ast``. The examples that run the rendered text in real shells are in
tests/test_handoff.py, which also holds the helpers reused here.
"""

from __future__ import annotations

import ast
import datetime as dt
import keyword
import re
import shlex
from typing import Any

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from dpone_core.handoff import (
    HandoffInputs,
    SchedulerHandoff,
    SchedulerHandoffBuilder,
    airflow_id,
    kubernetes_name,
    python_identifier,
)
from tests.test_handoff import (
    AIRFLOW_CONTEXT,
    CRON_TAIL,
    DAILY_TRAILER,
    JINJA_OPENERS,
    JOB_NAME_ENTRY,
    JOB_NAME_ENV,
    MINUTE_TRAILER,
    SNIPPET_NAMES,
    airflow_context,
    airflow_tail,
    assert_every_cron_reads_it_alike,
    assert_only_the_deliberate_templates,
    bash_command,
    container,
    cron_cronie,
    cron_debian,
    cronjob,
    crontab_command,
    dag_id_of,
    k8s_expand,
    k8s_script,
    module_assignments,
    render_like_airflow,
)

#: Any text a command line can carry: no NUL, no lone surrogate.
TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=24)
#: Text biased towards what shells, cron, Jinja and YAML treat specially.
SPECIAL = st.text(
    st.sampled_from(list("'\"\\$`{}%#!~*?[]()<>|&;=- \t\n\r\x01\x7f\x85\u2028\ufeffé😀aZ09./")),
    max_size=16,
)
#: Text made of the pieces whose *combinations* matter ("{" then "{", "\\" then "%", ...).
TOKENS = st.lists(
    st.sampled_from(
        ["{", "{{", "{%", "{#", "}}", "%", "%F", "\\", "$", "$(", "$$", "'", '"', "`", " ", "\t",
         "\n", "\r", "\x01", "\x85", "\u2028", ".sh", ".BASH", "a", "é", "😀", "~", "#", "-",
         "\\\\", "\\%", '"""', "{{ ds }}", "$(HOME)", "\\'"]
    ),
    max_size=8,
).map("".join)  # fmt: skip
ARG = st.one_of(TEXT, SPECIAL, TOKENS)
ARGV = st.lists(ARG, max_size=6)
NAME = ARG.filter(bool)
SCHEDULE = st.sampled_from(["0 2 * * *", "*/15 * * * *", "@daily", "@hourly", "15 3 * * 1-5"])
#: A working directory must be absolute (HandoffInputs refuses any other).
WORKING_DIR = st.one_of(st.none(), ARG.map(lambda text: "/" + text))
#: Names made of pieces that the derived names join or map alike ("-", ".", "_", "/").
JOINED = st.lists(
    st.sampled_from(["orders", "eu", "Orders", "-", ".", "_", "/", " ", "'", "(", ","]),
    min_size=1,
    max_size=5,
).map("".join)
PAIR_PART = st.one_of(NAME, JOINED)

#: Ids Airflow accepts: run ids match [A-Za-z0-9_.~:+-]+ by default, DAG ids [\w.-]+.
AIRFLOW_RUN_ID = st.from_regex(r"[A-Za-z0-9_.~:+-]+", fullmatch=True)
AIRFLOW_DAG_ID = st.from_regex(r"[\w.-]+", fullmatch=True)

PROPERTY_SETTINGS = settings(max_examples=150, deadline=None)
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
AIRFLOW_ID = re.compile(r"[A-Za-z0-9_.-]+")


def build(**fields: Any) -> SchedulerHandoff:
    fields.setdefault("name", "orders")
    fields.setdefault("start_date", dt.date(2026, 1, 2))
    return SchedulerHandoffBuilder().build(HandoffInputs(**fields))


def _has_control(texts: list[str]) -> bool:
    return any(re.search(r"[\x00-\x1f\x7f]", text) for text in texts)


@PROPERTY_SETTINGS
@example(
    argv=["a b", "\n", "'", "\\"], program="/opt/my dpone", working_dir="/-", schedule="@hourly"
)
@given(argv=ARGV, program=NAME, working_dir=WORKING_DIR, schedule=SCHEDULE)
def test_cron_command_shlex_splits_back(
    argv: list[str], program: str, working_dir: str | None, schedule: str
) -> None:
    handoff = build(argv=argv, program=program, working_dir=working_dir, schedule=schedule)
    words = shlex.split(handoff.cron_command)
    if working_dir is not None:
        assert words[:3] == ["cd", working_dir, "&&"]
        words = words[3:]
    assert words[:-4] == [program, *argv]
    assert words[-4] == "--execution-date"
    assert words[-3] in {"$(date -u +%F)", "$(date -u +%FT%H:%MZ)"}
    assert words[-2:] == CRON_TAIL


@PROPERTY_SETTINGS
@example(argv=["C:\\%TEMP%", "a\\\\b", "a\\\\%b"], working_dir="/w\\%d", schedule="0 2 * * *")
@example(argv=["\x01\\n", "100%"], working_dir=None, schedule="@hourly")
@example(argv=["\x01\\\\%", "\\\\"], working_dir="/\\\\", schedule="@daily")
@given(argv=ARGV, working_dir=WORKING_DIR, schedule=SCHEDULE)
def test_crontab_line_is_one_line_and_percent_escaped(
    argv: list[str], working_dir: str | None, schedule: str
) -> None:
    texts = [*argv, *([] if working_dir is None else [working_dir])]
    line = build(argv=argv, working_dir=working_dir, schedule=schedule).crontab_line
    assert "\n" not in line and "\r" not in line
    assert line.startswith(schedule + " ")
    assert re.search(r"(?<!\\)%", line) is None
    # No backslash before a backslash or a literal %: cronie and Debian's cron agree.
    assert_every_cron_reads_it_alike(line)
    command = crontab_command(line)
    for parse in (cron_cronie, cron_debian):
        shell_text, stdin = parse(command)
        assert stdin is None, "an unescaped % would end the command"
        if not _has_control(texts):
            # Without control characters the line is POSIX sh: it splits back exactly.
            words = shlex.split(shell_text)
            if working_dir is not None:
                assert words[:3] == ["cd", working_dir, "&&"]
                words = words[3:]
            assert words[:-4] == ["dpone", *argv]
            assert words[-4] == "--execution-date"
            assert words[-2:] == CRON_TAIL


@PROPERTY_SETTINGS
@example(argv=["{{ ds }}", "{", "{%", "{#", "{{", "x.sh"], working_dir=None, schedule="@daily")
@given(argv=ARGV, working_dir=WORKING_DIR, schedule=SCHEDULE)
def test_airflow_bash_command_has_only_the_deliberate_templates(
    argv: list[str], working_dir: str | None, schedule: str
) -> None:
    handoff = build(argv=argv, working_dir=working_dir, schedule=schedule)
    command = bash_command(handoff.airflow_task)
    trailer = DAILY_TRAILER if "{{ ds }}" in command else MINUTE_TRAILER
    assert command.endswith(trailer)
    assert_only_the_deliberate_templates(command)
    head = command[: -len(trailer)]
    for opener in JINJA_OPENERS:
        assert opener not in head
    assert "\n" not in command and "\r" not in command
    assert render_like_airflow(command) == head + render_like_airflow(trailer)
    if working_dir is not None:
        # BashOperator's cwd is a template field: the command changes directory itself.
        assert command.startswith("cd ")
        assert "cwd=" not in handoff.airflow_task
    if not _has_control([*argv, *([] if working_dir is None else [working_dir])]):
        words = shlex.split(render_like_airflow(command))
        if working_dir is not None:
            assert words[:3] == ["cd", working_dir, "&&"]
            words = words[3:]
        logical = AIRFLOW_CONTEXT["ds"] if trailer == DAILY_TRAILER else AIRFLOW_CONTEXT["ts"]
        assert words == ["dpone", *argv, *airflow_tail(logical)]


@PROPERTY_SETTINGS
@example(argv=["{{ run_id }}", "'"], dag_id="日本.x-_", run_id="a~b:c+d")
@given(argv=ARGV, dag_id=AIRFLOW_DAG_ID, run_id=AIRFLOW_RUN_ID)
def test_airflow_ids_render_into_one_argument_each(
    argv: list[str], dag_id: str, run_id: str
) -> None:
    """Whatever ids Airflow gives (single-quoted in bash_command), each is one word."""
    assume(not _has_control(argv))
    context = airflow_context(dag_id, run_id)
    rendered = render_like_airflow(bash_command(build(argv=argv).airflow_task), context)
    assert shlex.split(rendered) == ["dpone", *argv, *airflow_tail(context["ds"], context)]


@PROPERTY_SETTINGS
@example(argv=["$(HOME)", "$$", "$"], program="/bin/$(PATH)", working_dir="/$x", image="$y")
@given(argv=ARGV, program=NAME, working_dir=WORKING_DIR, image=ARG)
def test_kubernetes_document_reloads_to_the_same_command(
    argv: list[str], program: str, working_dir: str | None, image: str
) -> None:
    box = container(
        cronjob(build(argv=argv, program=program, working_dir=working_dir, image=image))
    )
    command = box["command"]
    for word in command:
        assert "$" not in word.replace("$$", "")
    env = {"HOME": "/k8s-home", "PATH": "/bin", JOB_NAME_ENV: "shop-orders-1"}
    assert [k8s_expand(word, env) for word in command[3:]] == [program, *argv]
    assert k8s_expand(command[2], env) == k8s_script("+%F")
    assert box["env"] == [JOB_NAME_ENTRY]
    assert box["image"] == image
    assert box.get("workingDir") == working_dir


@PROPERTY_SETTINGS
@given(argv=ARGV, name=NAME, namespace=NAME, working_dir=WORKING_DIR)
def test_dagster_file_carries_the_command(
    argv: list[str], name: str, namespace: str, working_dir: str | None
) -> None:
    source = build(argv=argv, name=name, namespace=namespace, working_dir=working_dir)
    tree = ast.parse(source.dagster_asset)
    assert ast.get_docstring(tree) is None
    assert ast.get_docstring(ast.parse(source.airflow_dag)) is None
    values = module_assignments(tree)
    assert ast.literal_eval(values["COMMAND"]) == ["dpone", *argv]
    assert ast.literal_eval(values["WORKING_DIR"]) == working_dir


@PROPERTY_SETTINGS
@example(name="class")
@example(name="None")
@example(name="2026-06-05")
@given(name=ARG)
def test_derived_names_are_always_valid(name: str) -> None:
    k8s = kubernetes_name(name)
    assert DNS_LABEL.fullmatch(k8s) and len(k8s) <= 52
    task_id = airflow_id(name)
    assert AIRFLOW_ID.fullmatch(task_id) and len(task_id) <= 250
    ident = python_identifier(name)
    assert ident.isidentifier() and ident.isascii()
    assert not keyword.iskeyword(ident)
    assert ident not in SNIPPET_NAMES
    from dagster._core.definitions.utils import DISALLOWED_NAMES

    assert ident not in DISALLOWED_NAMES


@PROPERTY_SETTINGS
@example(first="a/b", second="a_b")
@example(first="Orders/EU", second="orders/eu")
@example(first="x" * 60, second="x" * 61)
@given(first=ARG, second=ARG)
def test_derived_names_keep_distinct_names_distinct(first: str, second: str) -> None:
    assume(first != second)
    for derive in (kubernetes_name, airflow_id, python_identifier):
        assert derive(first) != derive(second), derive.__name__


@PROPERTY_SETTINGS
@example(first=("orders-eu", "daily"), second=("orders", "eu-daily"))
@example(first=("orders.eu", "daily"), second=("orders", "eu.daily"))
@example(first=("Shop", "orders"), second=("shop", "orders"))
@given(first=st.tuples(PAIR_PART, PAIR_PART), second=st.tuples(PAIR_PART, PAIR_PART))
def test_distinct_processes_get_distinct_cronjob_names_and_dag_ids(
    first: tuple[str, str], second: tuple[str, str]
) -> None:
    assume(first != second)
    one = build(argv=[], namespace=first[0], name=first[1])
    two = build(argv=[], namespace=second[0], name=second[1])
    assert cronjob(one)["metadata"]["name"] != cronjob(two)["metadata"]["name"]
    assert dag_id_of(one) != dag_id_of(two)
    for handoff in (one, two):
        assert DNS_LABEL.fullmatch(cronjob(handoff)["metadata"]["name"])
        assert AIRFLOW_ID.fullmatch(dag_id_of(handoff))


@PROPERTY_SETTINGS
@given(name=ARG)
def test_valid_names_are_kept(name: str) -> None:
    if DNS_LABEL.fullmatch(name) and len(name) <= 52:
        assert kubernetes_name(name) == name
    if AIRFLOW_ID.fullmatch(name) and len(name) <= 250:
        assert airflow_id(name) == name
    if (
        name.isascii()
        and name.isidentifier()
        and not keyword.iskeyword(name)
        and name not in SNIPPET_NAMES | {"os", "subprocess"}
        and len(name) <= 100
    ):
        from dagster._core.definitions.utils import DISALLOWED_NAMES

        if name not in DISALLOWED_NAMES:
            assert python_identifier(name) == name
