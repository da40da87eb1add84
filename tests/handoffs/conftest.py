"""Run scheduler handoff snippets the way the real schedulers run them.

cron: the crontab line is split as cron splits it (five schedule fields, then
the command, in which an unescaped ``%`` ends the command and starts its stdin
and ``\\%`` is a ``%``), and the command runs under ``/bin/sh -c`` with an
empty environment but for ``HOME``, ``LOGNAME``, ``SHELL`` and ``PATH=/usr/bin:/bin``,
from the home directory, under a faked clock (``faketime``), as cron does when
it fires at that moment.

Kubernetes: the container's command is expanded as the kubelet expands it
(``$$`` is ``$``, ``$(NAME)`` is the value of ``NAME`` when the container's env
sets it, anything else unchanged), its env is resolved from ``secretKeyRef``\\ s
(an ``optional`` key that is missing leaves the variable unset) and from the
downward API's ``fieldRef``\\ s against the pod the CronJob's Job would create
(named ``<cronjob>-<minutes since the epoch of the scheduled time>``, labelled
``batch.kubernetes.io/job-name``; a label the pod lacks gives an empty variable),
and it runs directly (no shell of ours) in ``workingDir``, with an empty
environment but for those variables, a minimal ``PATH`` and ``HOME``.

The first run of each test is an ordinary ``dpone orchestrate run --format json``
from the project directory: that is how a user gets the snippets.
"""

from __future__ import annotations

import os
import pwd
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dpone_core.naming import file_safe_name
from tests.support.workspace import Workspace

ENV = "/usr/bin/env"
FAKETIME = "/usr/bin/faketime"
#: cron's PATH (cronie and Debian's cron both default to it), and a container's here.
MINIMAL_PATH = "/usr/bin:/bin"


# -- cron ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CronEntry:
    """One crontab line as cron reads it."""

    #: The five time fields (or a single ``@daily``-style macro).
    schedule: tuple[str, ...]
    #: What cron hands to ``/bin/sh -c``.
    command: str
    #: What cron writes to the command's stdin (None: nothing after a ``%``).
    stdin: str | None


_BLANKS = " \t"


def _next_field(text: str) -> tuple[str, str]:
    text = text.lstrip(_BLANKS)
    end = 0
    while end < len(text) and text[end] not in _BLANKS:
        end += 1
    if end == 0:
        raise ValueError("crontab line ends before its command")
    return text[:end], text[end:]


def _cron_stdin(data: str) -> str:
    """cron's rewrite of the text after the first ``%`` (do_command.c): ``%`` -> newline."""
    out: list[str] = []
    escaped = False
    for ch in data:
        if escaped:
            if ch != "%":
                out.append("\\")
        elif ch == "%":
            ch = "\n"
        escaped = ch == "\\"
        if not escaped:
            out.append(ch)
    if escaped:
        out.append("\\")
    return "".join(out)


def cron_command_of(line: str) -> CronEntry:
    """Split a crontab line the way cron (Vixie cron, cronie, Debian's cron) does.

    The schedule is five blank-separated fields, or one ``@macro``; after the blanks
    that follow it, the rest of the line is the command. In the command, ``\\%`` is a
    ``%`` (the backslash goes), a backslash before anything else stays (and does not
    escape what follows it), and the first unescaped ``%`` ends the command: the text
    after it, with each unescaped ``%`` turned into a newline, is the command's stdin.
    """
    if "\n" in line.rstrip("\n"):
        raise ValueError("a crontab entry is one physical line")
    rest = line.rstrip("\n")
    fields: list[str] = []
    for _ in range(1 if rest.lstrip(_BLANKS).startswith("@") else 5):
        field, rest = _next_field(rest)
        fields.append(field)
    raw = rest.lstrip(_BLANKS)
    if not raw:
        raise ValueError("crontab line has no command")
    command: list[str] = []
    escaped = False
    for index, ch in enumerate(raw):
        if escaped:
            escaped = False
            if ch == "%":
                command[-1] = "%"  # the backslash before it becomes the percent sign
            else:
                command.append(ch)
            continue
        if ch == "\\":
            escaped = True
            command.append(ch)
        elif ch == "%":
            return CronEntry(tuple(fields), "".join(command), _cron_stdin(raw[index + 1 :]))
        else:
            command.append(ch)
    return CronEntry(tuple(fields), "".join(command), None)


def faked_clock(at_utc: datetime) -> list[str]:
    """``env`` assignments and the ``faketime`` prefix that start a command at ``at_utc``.

    The instant goes in as seconds since the epoch (``FAKETIME_FMT=%s``), not as
    faketime's wall-clock ``@YYYY-MM-DD hh:mm:ss``, which every process under it
    re-reads in its own time zone. The clock runs on from there.
    """
    epoch = int(at_utc.astimezone(UTC).timestamp())
    return ["FAKETIME_FMT=%s", FAKETIME, "-f", f"@{epoch}"]


def _login_name() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


def run_like_cron(
    line: str, *, home: Path, at_utc: datetime, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the crontab line's command as cron does when it fires at ``at_utc``."""
    entry = cron_command_of(line)
    env = [f"HOME={home}", f"LOGNAME={_login_name()}", "SHELL=/bin/sh", f"PATH={MINIMAL_PATH}"]
    return subprocess.run(
        [ENV, "-i", *env, *faked_clock(at_utc), "/bin/sh", "-c", entry.command],
        cwd=home,
        input=entry.stdin or "",
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# -- Kubernetes -----------------------------------------------------------------------------


def k8s_expand(text: str, env: Mapping[str, str]) -> str:
    """The kubelet's expansion of a command element (third_party/forked/golang/expansion).

    ``$$`` is ``$``; ``$(NAME)`` is ``env[NAME]`` when set, else left as written; a
    ``$(`` without a closing ``)``, a ``$`` before anything else and a final ``$``
    stay as they are.
    """
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    while cursor < len(text):
        if text[cursor] == "$" and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            following = text[cursor + 1]
            advance = 1
            if following == "$":
                out.append("$")
            elif following == "(":
                close = text.find(")", cursor + 2)
                if close == -1:
                    out.append("$(")
                else:
                    name = text[cursor + 2 : close]
                    out.append(env.get(name, f"$({name})"))
                    advance = close - cursor
            else:
                out.append("$" + following)
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    return "".join(out) + text[checkpoint:]


class MissingSecretKey(Exception):
    """A required secretKeyRef names a key the Secret lacks (CreateContainerConfigError)."""


@dataclass(frozen=True)
class Pod:
    """The metadata of the pod a container runs in: what a ``fieldRef`` can read."""

    name: str
    namespace: str = "default"
    uid: str = "00000000-0000-0000-0000-000000000000"
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


#: The label the Job controller (Kubernetes 1.27 and later) puts on its pods: the Job's name.
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"


def cronjob_pod(cronjob_name: str, scheduled_utc: datetime) -> Pod:
    """The pod of the Job a CronJob creates for the run scheduled at ``scheduled_utc``.

    The CronJob controller names the Job ``<cronjob>-<scheduled time in minutes since the
    epoch>`` (getJobName in pkg/controller/cronjob/utils.go); the Job controller labels
    its pods with the Job's name under the new and the legacy keys, and names each pod
    ``<job>-<5 random characters>``.
    """
    job = f"{cronjob_name}-{int(scheduled_utc.astimezone(UTC).timestamp()) // 60}"
    uid = "5f8d0c2e-0000-4000-8000-000000000001"
    labels = {
        JOB_NAME_LABEL: job,
        "job-name": job,
        "batch.kubernetes.io/controller-uid": uid,
        "controller-uid": uid,
    }
    return Pod(name=f"{job}-x7k2q", labels=labels)


_SUBSCRIPTED = re.compile(r"metadata\.(labels|annotations)\['([^']*)'\]")


def pod_field(pod: Pod, field_path: str) -> str:
    """A ``fieldRef``'s value as the kubelet reads it (fieldpath.ExtractFieldPathAsString).

    A subscripted label or annotation the pod lacks is the empty string (the variable is
    set, and empty). Field paths this simulation does not know are refused.
    """
    plain = {"metadata.name": pod.name, "metadata.namespace": pod.namespace}
    if field_path in plain:
        return plain[field_path]
    if field_path == "metadata.uid":
        return pod.uid
    match = _SUBSCRIPTED.fullmatch(field_path)
    if match is None:
        raise ValueError(f"fieldRef {field_path!r} is not simulated here")
    values = pod.labels if match.group(1) == "labels" else pod.annotations
    return values.get(match.group(2), "")


def container_env(
    entries: Sequence[Mapping[str, Any]],
    secrets: Mapping[str, Mapping[str, str]],
    pod: Pod | None = None,
) -> dict[str, str]:
    """The container's variables: ``value`` (expanded by the earlier ones), ``secretKeyRef``
    or ``fieldRef`` (read from ``pod``).

    ``secrets`` maps a Secret's name to its data. Any other ``valueFrom`` is refused
    here, so a snippet that starts using one gets a test of its own.
    """
    resolved: dict[str, str] = {}
    for entry in entries:
        name = entry["name"]
        if "valueFrom" not in entry:
            resolved[name] = k8s_expand(entry.get("value", ""), resolved)
            continue
        source = entry["valueFrom"]
        if set(source) == {"fieldRef"}:
            if pod is None:
                raise AssertionError(f"{name} reads the pod ({source}): give the pod")
            resolved[name] = pod_field(pod, source["fieldRef"]["fieldPath"])
            continue
        if set(source) != {"secretKeyRef"}:
            raise ValueError(f"{name}: valueFrom {sorted(source)} is not simulated here")
        ref = source["secretKeyRef"]
        data = secrets.get(ref["name"], {})
        if ref["key"] in data:
            resolved[name] = data[ref["key"]]
        elif not ref.get("optional", False):
            raise MissingSecretKey(f"{name}: secret {ref['name']!r} has no key {ref['key']!r}")
    return resolved


def run_like_kubelet(
    command: Sequence[str],
    working_dir: str | None,
    env_entries: Sequence[Mapping[str, Any]],
    secrets: Mapping[str, Mapping[str, str]],
    *,
    pod: Pod,
    home: Path,
    at_utc: datetime,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Start the container's command in ``pod`` as the kubelet would, at ``at_utc`` (faked)."""
    if working_dir is None:
        raise AssertionError("the container has no workingDir: it would run in the image's")
    env = container_env(env_entries, secrets, pod)
    argv = [k8s_expand(element, env) for element in command]
    variables = [f"PATH={MINIMAL_PATH}", f"HOME={home}", *(f"{k}={v}" for k, v in env.items())]
    return subprocess.run(
        [ENV, "-i", *variables, *faked_clock(at_utc), *argv],
        cwd=working_dir,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# -- the project ----------------------------------------------------------------------------


@dataclass
class Project(Workspace):
    """A project directory (manifest, ``.dpone``) and somewhere else to start schedulers from."""

    home: Path = Path("/nonexistent")

    @property
    def evidence_root(self) -> Path:
        return self.root / ".dpone" / "orchestration"

    def evidence(self, run_id: str) -> Path:
        return self.evidence_root / file_safe_name(run_id) / "orchestrated_run.json"

    def scheduler(self, run_id: str) -> dict[str, Any] | None:
        """Who ran the run's last attempt, as its job state file records it."""
        recorded: dict[str, Any] | None = self.state(run_id)["scheduler"]
        return recorded

    def first_run(self, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
        """``dpone orchestrate run --format json`` from the project directory; must pass."""
        code, report, err = self.orchestrate(*args, env=env)
        assert code == 0, err
        assert report["status"] == "committed", report
        return report


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """``<tmp>/project`` and, apart from it, ``<tmp>/home`` (cron's HOME and directory)."""
    # The first run picks its backend from the environment: files unless a test sets a DSN.
    monkeypatch.delenv("DPONE_ORCHESTRATION_DSN", raising=False)
    monkeypatch.delenv("DPONE_ORCHESTRATION_SCHEMA", raising=False)
    root, home = tmp_path / "project", tmp_path / "home"
    root.mkdir()
    home.mkdir()
    return Project(root, home=home)


def who(kind: str, name: str | None = None, run_id: str | None = None) -> dict[str, str | None]:
    """A job state's ``scheduler`` field."""
    return {"kind": kind, "name": name, "run_id": run_id}


def day(text: str) -> datetime:
    """``2026-11-30 02:00`` as an aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
