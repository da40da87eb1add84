"""Copy-paste scheduler handoff snippets for one orchestrated run.

:class:`SchedulerHandoffBuilder` turns the command line of an orchestrated run
(``dpone orchestrate run ...``) into four snippets that re-run exactly that
command under another scheduler: a cron command, an Airflow ``BashOperator``,
a Dagster asset and a Kubernetes ``CronJob``. Building is pure: no I/O, no
clock, no environment reads (the only outside state consulted is the
in-memory secret registry of :mod:`dpone_core.redact`); the same inputs always
give the same snippets.

Quoting rules (why every argument survives quotes, spaces, ``$``, backticks,
newlines, ``{{``, ``%`` and non-ASCII text):

* Shell text is produced per argument by :func:`shlex.quote` (or by the
  stricter helpers below), never by pasting strings together.
* Python snippets embed every string through :func:`repr`, so they are valid
  Python whatever the arguments hold.
* The Kubernetes manifest is JSON (valid YAML), with the characters YAML
  would fold escaped; tests check it loads back to the same document.

Secrets: the builder never receives secret values. Environment variables a
run needs (a DSN, a token) are passed as *names* in
:attr:`HandoffInputs.env_refs`; the snippets reference them (inherited
environment, ``secretKeyRef``) and never contain a value. As a second line of
defence every string is passed through :func:`dpone_core.redact.redact`, so a
password that slipped into an argument is masked rather than published.
"""

from __future__ import annotations

import hashlib
import keyword
import re
import shlex
from collections.abc import Callable
from typing import Any

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, field_validator

from dpone_core.redact import redact

__all__ = ["HandoffInputs", "SchedulerHandoff", "SchedulerHandoffBuilder"]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_CRON_FIELD = re.compile(r"[A-Za-z0-9*/,?#LW-]+")

#: Longest CronJob name Kubernetes accepts (Job names add an 11-character suffix).
K8S_NAME_MAX = 52
#: Longest Airflow task id.
AIRFLOW_TASK_ID_MAX = 250
_PY_IDENT_MAX = 100
_HASH_LEN = 8

# Names a Dagster asset may not take (dagster._core.definitions.utils.DISALLOWED_NAMES)
# plus the module-level names the generated snippets themselves use.
_RESERVED_IDENTIFIERS = frozenset(
    {
        "context",
        "conf",
        "config",
        "meta",
        "arg_dict",
        "dict",
        "input_arg_dict",
        "output_arg_dict",
        "int",
        "str",
        "float",
        "bool",
        "input",
        "output",
        "type",
        "dg",
        "os",
        "subprocess",
        "BashOperator",
    }
)


def _check_text(value: str, what: str) -> str:
    if "\x00" in value:
        raise ValueError(f"{what} contains a NUL character, which no command line can carry")
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        raise ValueError(f"{what} is not valid Unicode (it contains a lone surrogate)")
    return value


class HandoffInputs(BaseModel):
    """What a handoff is built from; the command is ``[program, *argv]``.

    ``argv`` is the full argument list after the program name, exactly as the
    orchestrated run was invoked. ``name`` is a free-form label (selector or
    run id) from which task ids, asset names and the CronJob name are derived.
    ``env_refs`` maps environment variable *names* to a description; values are
    never given to the builder. ``working_dir``, when set, is where the command
    runs (relative manifest paths resolve against it). ``secret_name`` is the
    Kubernetes Secret the CronJob reads ``env_refs`` from (a placeholder to
    create or rename).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    argv: list[str]
    program: str = "dpone"
    name: str
    schedule: str = "0 2 * * *"
    image: str = "REPLACE_ME/dpone:latest"
    env_refs: dict[str, str] = Field(default_factory=dict)
    working_dir: str | None = None
    secret_name: str = "dpone-secrets"

    @field_validator("argv")
    @classmethod
    def _argv_ok(cls, value: list[str]) -> list[str]:
        for index, arg in enumerate(value):
            _check_text(arg, f"argv[{index}]")
        return value

    @field_validator("program")
    @classmethod
    def _program_ok(cls, value: str) -> str:
        if not value:
            raise ValueError("program must not be empty")
        return _check_text(value, "program")

    @field_validator("name", "image")
    @classmethod
    def _text_ok(cls, value: str) -> str:
        return _check_text(value, "value")

    @field_validator("working_dir")
    @classmethod
    def _working_dir_ok(cls, value: str | None) -> str | None:
        if value is not None and not value:
            raise ValueError("working_dir must not be empty (use None for the default)")
        return None if value is None else _check_text(value, "working_dir")

    @field_validator("schedule")
    @classmethod
    def _schedule_ok(cls, value: str) -> str:
        fields = value.split()
        macro = len(fields) == 1 and re.fullmatch(r"@[a-z]+", fields[0]) is not None
        cron = len(fields) == 5 and all(_CRON_FIELD.fullmatch(f) for f in fields)
        if not (macro or cron):
            raise ValueError(
                f"schedule {value!r} is not a cron expression: expected five fields "
                "like '0 2 * * *' or a macro like '@daily'"
            )
        return " ".join(fields)

    @field_validator("env_refs")
    @classmethod
    def _env_refs_ok(cls, value: dict[str, str]) -> dict[str, str]:
        for env_name, description in value.items():
            if not _ENV_NAME.fullmatch(env_name):
                raise ValueError(
                    f"env_refs key {env_name!r} is not an environment variable name "
                    "(expected letters, digits and '_', not starting with a digit)"
                )
            _check_text(description, f"env_refs[{env_name!r}]")
        return value

    @field_validator("secret_name")
    @classmethod
    def _secret_name_ok(cls, value: str) -> str:
        if len(value) > 253 or not _DNS_SUBDOMAIN.fullmatch(value):
            raise ValueError(f"secret_name {value!r} is not a DNS-1123 subdomain")
        return value


class SchedulerHandoff(BaseModel):
    """The four snippets (plus a ready ``crontab`` line) for one run.

    ``cron_command`` is the command as one shell command: every argument is
    :func:`shlex.quote`-d, so ``shlex.split`` gives back ``[program, *argv]``
    and ``bash -c`` (or ``sh -c``) runs exactly that. An argument holding a
    newline stays a quoted newline, so it spans lines only in that case.

    ``crontab_line`` is ``<schedule> <command>`` fit for a crontab: always one
    physical line (control characters use bash ``$'...'`` quoting, then the
    command runs under ``bash -c``) and ``%`` escaped as ``\\%``.
    """

    model_config = ConfigDict(frozen=True)

    cron_command: str
    crontab_line: str
    airflow_task: str
    dagster_asset: str
    kubernetes_cronjob: str

    def to_dict(self) -> dict[str, str]:
        """The contract keys of ``scheduler_handoff`` in the run report."""
        return {
            "cron_command": self.cron_command,
            "airflow_task": self.airflow_task,
            "dagster_asset": self.dagster_asset,
            "kubernetes_cronjob": self.kubernetes_cronjob,
        }


# --------------------------------------------------------------------------- names


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:_HASH_LEN]


def _fit(name: str, *, valid: bool, mapped: str, separator: str, max_len: int) -> str:
    """``name`` itself when ``valid``; else ``mapped`` cut short plus a hash of ``name``.

    The hash suffix keeps names that differ only in dropped or replaced
    characters (``a/b`` and ``a_b``) distinct.
    """
    if valid:
        return name
    suffix = separator + _short_hash(name)
    base = mapped[: max_len - len(suffix)].rstrip(separator) or "dpone"
    return base + suffix


_ASCII_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_K8S_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_AIRFLOW_ID = re.compile(r"[A-Za-z0-9_.-]+")
_PY_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def kubernetes_name(name: str) -> str:
    """A DNS-1123 label of at most 52 characters derived from ``name``."""
    mapped = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    valid = len(name) <= K8S_NAME_MAX and _K8S_LABEL.fullmatch(name) is not None
    return _fit(name, valid=valid, mapped=mapped, separator="-", max_len=K8S_NAME_MAX)


def airflow_task_id(name: str) -> str:
    """An Airflow task id (letters, digits, ``_``, ``-``, ``.``) derived from ``name``."""
    mapped = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    valid = len(name) <= AIRFLOW_TASK_ID_MAX and _AIRFLOW_ID.fullmatch(name) is not None
    return _fit(name, valid=valid, mapped=mapped, separator="_", max_len=AIRFLOW_TASK_ID_MAX)


def python_identifier(name: str) -> str:
    """An ASCII Python identifier, valid as a Dagster asset name, derived from ``name``.

    Keywords, Dagster's reserved names and the names the snippets use
    (``dg``, ``os``, ``subprocess``, ``BashOperator``) are never returned.
    """
    mapped = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if mapped[:1].isdigit():
        mapped = "_" + mapped
    valid = (
        len(name) <= _PY_IDENT_MAX
        and _PY_IDENT.fullmatch(name) is not None
        and not keyword.iskeyword(name)
        and name not in _RESERVED_IDENTIFIERS
    )
    return _fit(name, valid=valid, mapped=mapped, separator="_", max_len=_PY_IDENT_MAX)


# --------------------------------------------------------------------------- shell


_CONTROL = re.compile("[\x00-\x1f\x7f]")


def _needs_ansi_c(text: str) -> bool:
    return _CONTROL.search(text) is not None


def _ansi_c_quote(text: str) -> str:
    """bash ``$'...'`` quoting; the result holds no control characters."""
    named = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\", "'": "\\'"}
    out = []
    for ch in text:
        if ch in named:
            out.append(named[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "$'" + "".join(out) + "'"


def _force_quote(text: str) -> str:
    """Always-quoted shell word: ``'...'`` (or ``$'...'`` for control characters)."""
    if _needs_ansi_c(text):
        return _ansi_c_quote(text)
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _one_line_word(text: str) -> str:
    """A shell word that never spans lines (bash ``$'...'`` when it must)."""
    return _ansi_c_quote(text) if _needs_ansi_c(text) else shlex.quote(text)


def _jinja_inert_word(text: str, *, last: bool) -> str:
    """A bash word that no Jinja parser reads as a tag and never ends in ``.sh``.

    Every ``{`` is written as the shell escape ``\\{`` and the text after it is
    always quoted, so the result never contains ``{{``, ``{%`` or ``{#``. The
    last word of a command is always quoted so the command ends in a quote
    (or ``{``), never in ``.sh``/``.bash``. Control characters use bash
    ``$'...'`` quoting, because Jinja rewrites ``\\r\\n`` and ``\\r`` to ``\\n``.
    """
    if "{" not in text:
        return _force_quote(text) if last else _one_line_word(text)
    pieces = text.split("{")
    out = [_one_line_word(pieces[0]) if pieces[0] else ""]
    for piece in pieces[1:]:
        out.append("\\{")
        if piece:
            out.append(_force_quote(piece))
    return "".join(out)


def _cd_prefix(working_dir: str | None, quote: Callable[[str], str]) -> str:
    return "" if working_dir is None else f"cd {quote(working_dir)} && "


# --------------------------------------------------------------------------- builder


class SchedulerHandoffBuilder:
    """Build the cron, Airflow, Dagster and Kubernetes snippets for one run.

    Pure and deterministic: no I/O, no clock. The builder never receives
    secret values: environment variables are passed by name only
    (:attr:`HandoffInputs.env_refs`) and every string is redacted once more.
    """

    def build(self, inputs: HandoffInputs) -> SchedulerHandoff:
        program = redact(inputs.program)
        argv = [redact(arg) for arg in inputs.argv]
        command = [program, *argv]
        working_dir = None if inputs.working_dir is None else redact(inputs.working_dir)
        env_refs = {name: redact(desc) for name, desc in sorted(inputs.env_refs.items())}
        label = redact(inputs.name)

        cron_command = _cd_prefix(working_dir, shlex.quote) + shlex.join(command)
        return SchedulerHandoff(
            cron_command=cron_command,
            crontab_line=self._crontab_line(inputs.schedule, command, working_dir),
            airflow_task=self._airflow(label, inputs.schedule, command, working_dir, env_refs),
            dagster_asset=self._dagster(label, command, working_dir, env_refs),
            kubernetes_cronjob=self._kubernetes(
                label,
                inputs.schedule,
                inputs.image,
                command,
                working_dir,
                env_refs,
                inputs.secret_name,
            ),
        )

    # -- cron ------------------------------------------------------------------

    @staticmethod
    def _crontab_line(schedule: str, command: list[str], working_dir: str | None) -> str:
        line = _cd_prefix(working_dir, _one_line_word) + " ".join(
            _one_line_word(word) for word in command
        )
        texts = [*command, *([] if working_dir is None else [working_dir])]
        if any(_needs_ansi_c(text) for text in texts):
            # $'...' is bash; cron runs /bin/sh, so hand the line to bash.
            line = "bash -c " + shlex.quote(line)
        # cron turns an unescaped % into a newline (stdin); \% is a literal %.
        return f"{schedule} " + line.replace("%", "\\%")

    # -- Airflow ---------------------------------------------------------------

    @staticmethod
    def _airflow(
        label: str,
        schedule: str,
        command: list[str],
        working_dir: str | None,
        env_refs: dict[str, str],
    ) -> str:
        words = [
            _jinja_inert_word(word, last=index == len(command) - 1)
            for index, word in enumerate(command)
        ]
        prefix = (
            ""
            if working_dir is None
            else ("cd " + _jinja_inert_word(working_dir, last=False) + " && ")
        )
        bash_command = prefix + " ".join(words)
        variable = python_identifier(label)
        lines = [
            f"# dpone scheduler handoff: Airflow task for {label!r}.",
            f"# Add it inside a `with DAG(...)` block; the original schedule was {schedule!r}.",
            "# The command's exit code is the task's result: non-zero fails the task.",
            "# bash_command is Jinja-inert on purpose: every '{' is written as the shell",
            "# escape \\{ so no template tag can form, and the command ends in a quote,",
            "# never in .sh/.bash, so Airflow never loads it as a template file.",
            "# It is one line: control characters use bash $'...' quoting (Jinja would",
            "# rewrite a raw \\r).",
            *_env_comment(env_refs, "the Airflow worker"),
            "from airflow.operators.bash import BashOperator",
            "",
            f"{variable} = BashOperator(",
            f"    task_id={airflow_task_id(label)!r},",
            f"    bash_command={bash_command!r},",
            ")",
            "",
        ]
        return "\n".join(lines)

    # -- Dagster ---------------------------------------------------------------

    @staticmethod
    def _dagster(
        label: str,
        command: list[str],
        working_dir: str | None,
        env_refs: dict[str, str],
    ) -> str:
        function = python_identifier(label)
        run_kwargs = "check=False" if working_dir is None else f"cwd={working_dir!r}, check=False"
        lines = [
            f"# dpone scheduler handoff: Dagster asset for {label!r}.",
            "# Materializing it runs the orchestrated command; a non-zero exit code",
            "# fails the materialization with dg.Failure.",
            *_env_comment(env_refs, "the Dagster code server and run workers"),
            *(["import os"] if env_refs else []),
            "import subprocess",
            "",
            "import dagster as dg",
            "",
            "",
            "@dg.asset",
            # No annotations: under `from __future__ import annotations` Dagster
            # would see the string "dg.AssetExecutionContext" and reject it.
            f"def {function}(context):",
            f"    command = {command!r}",
            *(
                [
                    f"    for env_name in {tuple(env_refs)!r}:",
                    "        if env_name not in os.environ:",
                    "            context.log.warning("
                    '"environment variable " + env_name + " is not set")',
                ]
                if env_refs
                else []
            ),
            '    context.log.info(f"running {command!r}")',
            f"    completed = subprocess.run(command, {run_kwargs})",
            "    if completed.returncode != 0:",
            "        raise dg.Failure(",
            '            description=f"dpone exited with code {completed.returncode}",',
            '            metadata={"exit_code": completed.returncode},',
            "        )",
            '    return dg.MaterializeResult(metadata={"exit_code": completed.returncode})',
            "",
        ]
        return "\n".join(lines)

    # -- Kubernetes --------------------------------------------------------------

    @staticmethod
    def _kubernetes(
        label: str,
        schedule: str,
        image: str,
        command: list[str],
        working_dir: str | None,
        env_refs: dict[str, str],
        secret_name: str,
    ) -> str:
        container: dict[str, Any] = {"name": "dpone", "image": image, "command": command}
        if working_dir is not None:
            container["workingDir"] = working_dir
        if env_refs:
            container["env"] = [
                {
                    "name": env_name,
                    "valueFrom": {"secretKeyRef": {"name": secret_name, "key": env_name}},
                }
                for env_name in env_refs
            ]
        annotations = {"dpone/handoff-name": label}
        if env_refs:
            annotations["dpone/env-refs"] = "; ".join(
                f"{env_name}: {desc}" for env_name, desc in env_refs.items()
            )
        document: dict[str, Any] = {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {
                "name": kubernetes_name(label),
                "labels": {"app.kubernetes.io/managed-by": "dpone"},
                "annotations": annotations,
            },
            "spec": {
                "schedule": schedule,
                "concurrencyPolicy": "Forbid",
                "jobTemplate": {
                    "spec": {
                        # dpone retries inside the run (--retry-attempts); a Job-level
                        # retry would only be refused by the resume policy.
                        "backoffLimit": 0,
                        "template": {
                            "spec": {"restartPolicy": "Never", "containers": [container]},
                        },
                    },
                },
            },
        }
        header = [
            "# dpone scheduler handoff: Kubernetes CronJob.",
            "# Replace the image placeholder with an image that has dpone installed.",
        ]
        if env_refs:
            header.append(
                f"# Environment variables come from the Secret {secret_name!r} "
                "(create it or rename it); no value is written here."
            )
        return "\n".join(header) + "\n" + _safe_yaml(document)


def _env_comment(env_refs: dict[str, str], where: str) -> list[str]:
    if not env_refs:
        return []
    lines = [
        f"# Environment variables read by reference (set them on {where};",
        "# their values never appear here):",
    ]
    lines += [f"#   {env_name}: {desc!r}" for env_name, desc in env_refs.items()]
    return lines


#: Characters YAML readers treat as line breaks or refuse; inside JSON strings
#: they are written as \\uXXXX escapes (astral characters stay raw: PyYAML would
#: not join an escaped surrogate pair).
_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")


def _safe_yaml(document: dict[str, Any]) -> str:
    """The CronJob as JSON, which is valid YAML (``kubectl apply -f`` takes it).

    Rendered on every run, so it must be cheap: PyYAML's representer costs
    ~0.8 ms per document, pydantic-core's JSON writer a few microseconds
    (``json.dumps`` with ``indent`` falls back to pure Python). ASCII escapes keep
    every argument exact where a YAML reader would otherwise fold or reject a
    character (U+0085, U+2028, ...).
    """
    text = pydantic_core.to_json(document, indent=2).decode("utf-8")
    return _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n"
