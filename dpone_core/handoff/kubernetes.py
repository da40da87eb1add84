"""Kubernetes: a CronJob whose pod runs one logical run, with its state outliving the pod.

The container runs dpone through ``/bin/sh -c`` only to take the logical date
from the container's clock (``date -u``, the run-id rule's UTC). The program and
its arguments are passed to the shell as positional parameters, never pasted
into the script, and every ``$`` in them is doubled because Kubernetes expands
``$(VAR)`` in commands. The file backend's locks, states and evidence live on a
PersistentVolumeClaim mounted at the same absolute paths (``data_dirs``);
secrets come from ``secretKeyRef``\\ s; the schedule is in UTC (``timeZone``).
"""

from __future__ import annotations

import re
from typing import Any

import pydantic_core

from dpone_core.cli_flags import flag
from dpone_core.handoff.inputs import OPTIONAL_ENV
from dpone_core.handoff.names import kubernetes_name, qualified
from dpone_core.schedule import Period

__all__ = ["DATA_CLAIM", "JOB_NAME_ENV", "kubernetes_cronjob"]

#: The PersistentVolumeClaim holding locks, states and evidence (create or rename it).
DATA_CLAIM = "dpone-data"

#: The Job's name, from the downward API: dpone records it as the scheduler's run id.
JOB_NAME_ENV = "DPONE_KUBERNETES_JOB"
_SCRIPT = (
    'exec "$0" "$@" {date_flag} "$(date -u {fmt})" {scheduler_flag} kubernetes'
    ' ${{{job}:+{run_id_flag} "${job}"}}'
)


def _k8s_literal(text: str) -> str:
    """``text`` as Kubernetes passes it on: ``$$`` is how a command writes a ``$``."""
    return text.replace("$", "$$")


def _secret_env(name: str, description: str, secret_name: str) -> dict[str, Any]:
    """``name`` from the Secret; optional where the run has a default for it."""
    ref: dict[str, Any] = {"name": secret_name, "key": name}
    if description.startswith(OPTIONAL_ENV):
        ref["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def _container(
    image: str,
    command: list[str],
    working_dir: str | None,
    period: Period,
    env_refs: dict[str, str],
    data_dirs: dict[str, str],
    secret_name: str,
) -> dict[str, Any]:
    fmt = "+%F" if period is Period.DAY else "+%FT%H:%MZ"
    script = _k8s_literal(
        _SCRIPT.format(
            date_flag=flag("execution_date"),
            fmt=fmt,
            scheduler_flag=flag("scheduler"),
            run_id_flag=flag("scheduler_run_id"),
            job=JOB_NAME_ENV,
        )
    )
    container: dict[str, Any] = {
        "name": "dpone",
        "image": image,
        "command": ["/bin/sh", "-c", script, *(_k8s_literal(word) for word in command)],
    }
    if working_dir is not None:
        container["workingDir"] = working_dir
    job_name = {
        "name": JOB_NAME_ENV,
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['batch.kubernetes.io/job-name']"}},
    }
    container["env"] = [
        job_name,
        *(_secret_env(name, desc, secret_name) for name, desc in env_refs.items()),
    ]
    if data_dirs:
        # One mount per directory: the API server refuses two mounts at one path (a lock
        # dir and a state dir may be the same directory).
        first_sub_path: dict[str, str] = {}
        for sub, path in data_dirs.items():
            first_sub_path.setdefault(path, sub)
        container["volumeMounts"] = [
            {"name": "dpone-data", "mountPath": path, "subPath": sub_path}
            for path, sub_path in first_sub_path.items()
        ]
    return container


def kubernetes_cronjob(
    name: str,
    namespace: str,
    schedule: str,
    image: str,
    command: list[str],
    working_dir: str | None,
    period: Period,
    env_refs: dict[str, str],
    data_dirs: dict[str, str],
    secret_name: str,
    grace_seconds: int,
) -> str:
    container = _container(
        image, command, working_dir, period, env_refs, data_dirs, secret_name
    )
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        # dpone stops the command's process tree, records the attempt as failed and
        # writes evidence on SIGTERM; this is how long it may take before SIGKILL.
        "terminationGracePeriodSeconds": grace_seconds,
        "containers": [container],
    }
    if data_dirs:
        pod["volumes"] = [
            {"name": "dpone-data", "persistentVolumeClaim": {"claimName": DATA_CLAIM}}
        ]
    annotations = {"dpone/process": name, "dpone/manifest": namespace}
    if env_refs:
        annotations["dpone/env-refs"] = "; ".join(f"{n}: {d}" for n, d in env_refs.items())
    document: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": qualified(namespace, name, "-", kubernetes_name),
            "labels": {"app.kubernetes.io/managed-by": "dpone"},
            "annotations": annotations,
        },
        "spec": {
            "schedule": schedule,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "jobTemplate": {
                "spec": {
                    # dpone retries inside the run (--retry-attempts); a Job-level
                    # retry would only be refused by the resume policy.
                    "backoffLimit": 0,
                    "template": {"spec": pod},
                },
            },
        },
    }
    return "\n".join(_header(env_refs, data_dirs, secret_name)) + "\n" + _safe_yaml(document)


def _header(env_refs: dict[str, str], data_dirs: dict[str, str], secret_name: str) -> list[str]:
    lines = [
        "# dpone scheduler handoff: Kubernetes CronJob (schedule in UTC).",
        "# Set the image (an image with dpone and the project at workingDir): it is left",
        "# empty on purpose, which the API server refuses, so this cannot be applied by",
        "# mistake.",
    ]
    if env_refs:
        lines.append(
            f"# Secrets come from the Secret {secret_name!r} (one key per variable; "
            "no value is written here)."
        )
    if data_dirs:
        lines.append(
            f"# Locks, job states and evidence live on the PersistentVolumeClaim {DATA_CLAIM!r}"
            " (create it;"
        )
        lines.append("# ReadWriteMany if pods may land on different nodes).")
    return lines


#: Characters YAML readers treat as line breaks or refuse; inside JSON strings
#: they are written as \\uXXXX escapes.
_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")


def _safe_yaml(document: dict[str, Any]) -> str:
    """The CronJob as JSON, which is valid YAML (``kubectl apply -f`` takes it).

    pydantic-core's JSON writer costs microseconds (PyYAML's representer ~0.8 ms);
    escapes keep every argument exact where a YAML reader would fold a character.
    """
    text = pydantic_core.to_json(document, indent=2).decode("utf-8")
    return _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n"
