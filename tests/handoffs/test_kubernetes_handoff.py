"""The CronJob of a real `dpone orchestrate run`: valid, loadable, runnable as the kubelet runs it.

The document is checked by kubernetes-validate (strict: an unknown field is an
error) and loaded by the official client (tests/support/kubernetes.py). Then its
container command is started the way the kubelet starts it: ``$$``/``$(NAME)``
expanded, the env resolved from the Secret and from the pod the CronJob's Job
creates (the downward API gives it the Job's name), in ``workingDir``, with nothing
else in the environment, under a faked clock, one logical day per start. Each run's
job state records Kubernetes as its scheduler, with the Job's name as its run id.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import all_text_under, recorder_command
from tests.support.kubernetes import (
    container_command,
    first_container,
    load_cronjob,
    pod_spec,
    validate_strict,
)
from tests.support.pg import dsn_with_password

from .conftest import (
    JOB_NAME_LABEL,
    MissingSecretKey,
    Pod,
    Project,
    container_env,
    cronjob_pod,
    day,
    k8s_expand,
    pod_field,
    run_like_kubelet,
    who,
)

SECRET = "some-secret-value"
DSN_ENV = "DPONE_ORCHESTRATION_DSN"
JOB_NAME_ENV = "DPONE_KUBERNETES_JOB"
#: The env entry every CronJob starts with: the Job's name, from the pod's label.
JOB_NAME_ENTRY = {
    "name": JOB_NAME_ENV,
    "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{JOB_NAME_LABEL}']"}},
}

# -- the kubelet simulation itself ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$$", "$"),
        ("$$(A)", "$(A)"),
        ("$(A)", "alpha"),
        ("x$(A)y$(B)z", "xalphay$(B)z"),
        ("$(date -u +%F)", "$(date -u +%F)"),
        ("$$$(A)", "$alpha"),
        ("$$$$", "$$"),
        ("$", "$"),
        ("a$", "a$"),
        ("$x $é", "$x $é"),
        ("$(A", "$(A"),
        ("$((A))", "$((A))"),
        ("$()", "$()"),
        ('exec "$$0" "$$@" "$$(date -u +%F)"', 'exec "$0" "$@" "$(date -u +%F)"'),
    ],
)
def test_k8s_expand(text: str, expected: str) -> None:
    assert k8s_expand(text, {"A": "alpha"}) == expected


def test_k8s_expand_maps_any_name_the_env_has() -> None:
    assert k8s_expand("$()$(A B)", {"": "empty", "A B": "spaced"}) == "emptyspaced"


def test_container_env_resolves_secret_refs_and_values() -> None:
    entries: list[dict[str, Any]] = [
        {"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "A"}}},
        {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "B", "optional": True}}},
        {"name": "C", "value": "$(A)-$(B)"},
    ]
    assert container_env(entries, {"s": {"A": "a"}}) == {"A": "a", "C": "a-$(B)"}
    with pytest.raises(MissingSecretKey):
        container_env(entries, {"s": {"B": "b"}})


def test_container_env_resolves_field_refs_from_the_pod() -> None:
    pod = cronjob_pod("shop-orders", day("2025-12-02 00:00"))
    assert pod.labels[JOB_NAME_LABEL] == "shop-orders-29410560"  # the CronJob's Job name
    assert pod.name.startswith("shop-orders-29410560-")
    entries: list[dict[str, Any]] = [
        JOB_NAME_ENTRY,
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NOTE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['nope']"}}},
        {"name": "BOTH", "value": "$(POD)/$(DPONE_KUBERNETES_JOB)"},
    ]
    assert container_env(entries, {}, pod) == {
        JOB_NAME_ENV: "shop-orders-29410560",
        "POD": pod.name,
        "NOTE": "",  # a label the pod lacks: set, and empty
        "BOTH": f"{pod.name}/shop-orders-29410560",
    }
    # A pod without the label (Kubernetes before 1.27, a pod of one's own): empty.
    assert container_env([JOB_NAME_ENTRY], {}, Pod(name="bare")) == {JOB_NAME_ENV: ""}
    with pytest.raises(AssertionError):
        container_env([JOB_NAME_ENTRY], {})  # a fieldRef needs a pod
    with pytest.raises(ValueError):
        pod_field(pod, "spec.nodeName")
    with pytest.raises(ValueError):
        container_env([{"name": "X", "valueFrom": {"configMapKeyRef": {}}}], {}, pod)


# -- dpone's CronJob ------------------------------------------------------------------------


def _env_refs(env: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """name -> secretKeyRef, after the Job's name: no variable has a literal value."""
    assert env[0] == JOB_NAME_ENTRY, env
    refs = {}
    for entry in env[1:]:
        assert set(entry) == {"name", "valueFrom"}, entry
        assert set(entry["valueFrom"]) == {"secretKeyRef"}, entry
        refs[entry["name"]] = entry["valueFrom"]["secretKeyRef"]
    return refs


def _cronjob_name(document: str) -> str:
    metadata = load_cronjob(document).metadata
    assert metadata is not None and metadata.name
    name: str = metadata.name
    return name


def _job_name(document: str, scheduled: str) -> str:
    """The name of the Job the CronJob creates for the run scheduled at ``scheduled``."""
    return cronjob_pod(_cronjob_name(document), day(scheduled)).labels[JOB_NAME_LABEL]


def _mounts(document: str) -> set[str]:
    cronjob = load_cronjob(document)
    volumes = pod_spec(cronjob).volumes or []
    claims = {v.name for v in volumes if v.persistent_volume_claim is not None}
    assert claims, "no PersistentVolumeClaim volume"
    mounts = first_container(cronjob).volume_mounts or []
    assert all(m.name in claims for m in mounts)
    return {m.mount_path for m in mounts}


def _committed(project: Project, run_id: str, key: str) -> dict[str, Any]:
    state = project.state(run_id)
    assert (state["run_id"], state["status"], state["lock_key"]) == (run_id, "committed", key)
    evidence = json.loads(project.evidence(run_id).read_text())
    assert (evidence["run_id"], evidence["status"]) == (run_id, "committed")
    return state


def test_cronjob_is_valid_and_runs_as_the_kubelet_runs_it_on_two_days(project: Project) -> None:
    project.write_manifest(
        {
            "job": {
                "kind": "command",
                "command": recorder_command(
                    "--record", "record.txt",
                    "--echo", "token=${MY_API_TOKEN} other=${OPTIONAL_THING:-x}",
                ),
            }
        },
        secrets=["MY_API_TOKEN"],
    )  # fmt: skip
    first = project.first_run(
        "--manifest", "m.yml", "--execution-date", "2026-11-29", env={"MY_API_TOKEN": SECRET}
    )
    # The value was in the first run's environment and its command's stdout: nowhere after.
    assert SECRET not in json.dumps(first)
    assert SECRET not in all_text_under([project.root / ".dpone"])
    document = first["scheduler_handoff"]["kubernetes_cronjob"]

    validate_strict(document)
    cronjob = load_cronjob(document)
    assert cronjob.spec.time_zone == "Etc/UTC"
    assert cronjob.spec.concurrency_policy == "Forbid"
    job = cronjob.spec.job_template.spec
    assert job is not None and job.backoff_limit == 0
    pod = pod_spec(cronjob)
    assert pod.restart_policy == "Never"
    assert (pod.termination_grace_period_seconds or 0) >= 10
    container = first_container(cronjob)
    assert container.image == ""  # the placeholder the API server refuses
    command, working_dir, env = container_command(document)
    assert command[:2] == ["/bin/sh", "-c"]
    assert command[3:6] == [str(Path(sys.executable).parent / "dpone"), "orchestrate", "run"]
    assert working_dir == str(project.root.resolve())
    assert _mounts(document) == {
        str(project.lock_dir.resolve()),
        str(project.state_dir.resolve()),
        str(project.evidence_root.resolve()),
    }
    refs = _env_refs(env)
    assert set(refs) == {"MY_API_TOKEN", "OPTIONAL_THING"}
    assert refs["MY_API_TOKEN"].get("optional") in (None, False)
    assert refs["OPTIONAL_THING"]["optional"] is True
    assert {ref["key"] for ref in refs.values()} == set(refs)
    (secret_name,) = {ref["name"] for ref in refs.values()}

    # Day 1: the optional key is missing from the Secret (the variable is then unset).
    days = {
        "2026-11-30": {"MY_API_TOKEN": "token-of-day-one"},
        "2026-12-01": {"MY_API_TOKEN": "token-of-day-two", "OPTIONAL_THING": "given"},
    }
    for date, data in days.items():
        scheduled = day(f"{date} 02:00")
        out = run_like_kubelet(
            command, working_dir, env, {secret_name: data},
            pod=cronjob_pod(_cronjob_name(document), scheduled),
            home=project.home, at_utc=scheduled,
        )  # fmt: skip
        assert out.returncode == 0, out.stdout + out.stderr
    expected = ["m.job_2026_11_30", "m.job_2026_12_01"]
    assert [record[0] for record in project.records()] == [first["run_id"], *expected]
    # Who ran each: the first run the CLI; each Kubernetes run, its Job (m-job-<minutes>).
    assert project.scheduler(first["run_id"]) == who("cli")
    job_names = [_job_name(document, f"{date} 02:00") for date in days]
    assert job_names == ["m-job-29933400", "m-job-29934840"]
    for run_id, job_name in zip(expected, job_names, strict=True):
        assert project.scheduler(run_id) == who("kubernetes", run_id=job_name)
    tails = [_committed(project, run_id, "m.job")["run_result"] for run_id in expected]
    stdout = [json.dumps(tail) for tail in tails]
    assert "other=x" in stdout[0] and "other=given" in stdout[1]
    assert "token-of-day" not in "".join(stdout) and "token=***" in stdout[0]
    assert list(project.home.iterdir()) == []


def test_dollar_signs_in_paths_reach_dpone_as_written(project: Project) -> None:
    """The kubelet expands ``$(NAME)`` in a command, not in workingDir or mountPath."""
    odd = Project(project.root / "a$(MY_API_TOKEN)b$$c$", home=project.home)
    odd.root.mkdir()
    odd.write_manifest(
        {"job": {"kind": "command", "command": recorder_command("--record", "record.txt")}},
        secrets=["MY_API_TOKEN"],
    )
    first = odd.first_run(
        "--manifest", "m.yml", "--execution-date", "2026-11-29", env={"MY_API_TOKEN": SECRET}
    )
    document = first["scheduler_handoff"]["kubernetes_cronjob"]
    validate_strict(document)
    command, working_dir, env = container_command(document)
    assert working_dir == str(odd.root.resolve())
    assert str(odd.evidence_root.resolve()) in _mounts(document)
    (secret_name,) = {ref["name"] for ref in _env_refs(env).values()}

    out = run_like_kubelet(
        command, working_dir, env, {secret_name: {"MY_API_TOKEN": "expanded-by-mistake"}},
        pod=cronjob_pod(_cronjob_name(document), day("2026-11-30 02:00")),
        home=odd.home, at_utc=day("2026-11-30 02:00"),
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    # Had a $ reached the kubelet undoubled, the manifest path would hold the secret's value.
    _committed(odd, "m.job_2026_11_30", "m.job")
    job_name = _job_name(document, "2026-11-30 02:00")
    assert odd.scheduler("m.job_2026_11_30") == who("kubernetes", run_id=job_name)


def test_a_pod_without_the_job_name_label_records_no_run_id(project: Project) -> None:
    """Before Kubernetes 1.27 the Job controller sets no batch.kubernetes.io/job-name label
    (and a pod made by hand from the template has none): the downward API gives an empty
    variable, and dpone is told only that Kubernetes runs it, never an empty run id."""
    project.write_manifest(
        {"job": {"kind": "command", "command": recorder_command("--record", "record.txt")}}
    )
    first = project.first_run("--manifest", "m.yml", "--execution-date", "2026-11-29")
    document = first["scheduler_handoff"]["kubernetes_cronjob"]
    validate_strict(document)
    command, working_dir, env = container_command(document)
    assert env == [JOB_NAME_ENTRY]
    legacy = Pod(name="m-job-29933400-x7k2q", labels={"job-name": "m-job-29933400"})
    out = run_like_kubelet(
        command, working_dir, env, {}, pod=legacy,
        home=project.home, at_utc=day("2026-11-30 02:00"),
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    _committed(project, "m.job_2026_11_30", "m.job")
    assert project.scheduler("m.job_2026_11_30") == who("kubernetes")


def test_cronjob_on_postgresql_keeps_only_evidence_on_the_volume(
    project: Project, schema: str
) -> None:
    dsn, password = dsn_with_password()
    project.write_manifest(
        {"job": {"kind": "command", "command": recorder_command("--record", "record.txt")}}
    )
    first = project.first_run(
        "--manifest", "m.yml", "--execution-date", "2026-11-29", "--backend-schema", schema,
        env={DSN_ENV: dsn},
    )  # fmt: skip
    assert password not in json.dumps(first)
    document = first["scheduler_handoff"]["kubernetes_cronjob"]
    assert dsn not in document and password not in document

    validate_strict(document)
    command, working_dir, env = container_command(document)
    assert working_dir == str(project.root.resolve())
    refs = _env_refs(env)
    assert set(refs) == {DSN_ENV} and refs[DSN_ENV].get("optional") in (None, False)
    assert _mounts(document) == {str(project.evidence_root.resolve())}
    assert "--lock-dir" not in command and "--state-dir" not in command

    out = run_like_kubelet(
        command, working_dir, env, {refs[DSN_ENV]["name"]: {DSN_ENV: dsn}},
        pod=cronjob_pod(_cronjob_name(document), day("2026-11-30 02:00")),
        home=project.home, at_utc=day("2026-11-30 02:00"),
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    run_id = "m.job_2026_11_30"
    assert [record[0] for record in project.records()] == [first["run_id"], run_id]
    status = project.dpone(
        "orchestrate", "status", "--run-id", run_id, "--format", "json",
        "--backend-schema", schema, env={DSN_ENV: dsn},
    )  # fmt: skip
    assert status.returncode == 0, status.stderr
    state = json.loads(status.stdout)
    assert (state["run_id"], state["status"], state["lock_key"]) == (run_id, "committed", "m.job")
    job_name = _job_name(document, "2026-11-30 02:00")
    assert state["scheduler"] == who("kubernetes", run_id=job_name)
    evidence = json.loads(project.evidence(run_id).read_text())
    assert (evidence["run_id"], evidence["status"]) == (run_id, "committed")
    # Locks and job states live in PostgreSQL: nothing of them on disk.
    assert not project.lock_dir.exists() and not project.state_dir.exists()
    assert password not in all_text_under([project.root / ".dpone"])
