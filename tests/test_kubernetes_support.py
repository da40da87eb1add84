"""The CronJob checks in tests/support/kubernetes.py can fail, and fail for the right reasons.

A validator that accepts everything would make every snippet test pass, so each check is shown
rejecting a document with one defect, next to the same document without it.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import kubernetes
import pytest

from tests.support.kubernetes import (
    DEFAULT_VERSIONS,
    OLDEST_RELEASE,
    container_command,
    first_container,
    load_cronjob,
    pod_spec,
    supported_versions,
    validate_strict,
)


def minimal_cronjob() -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "dpone-example"},
        "spec": {
            "schedule": "*/15 * * * *",
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [
                                {"name": "dpone", "image": "registry.example/dpone:1.0"}
                            ],
                        }
                    }
                }
            },
        },
    }


def full_cronjob() -> dict[str, Any]:
    """The fields the handoff snippet uses beyond the minimum."""
    document = minimal_cronjob()
    document["spec"]["timeZone"] = "Europe/Berlin"
    document["spec"]["concurrencyPolicy"] = "Forbid"
    pod = document["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    pod["terminationGracePeriodSeconds"] = 120
    pod["volumes"] = [{"name": "state", "persistentVolumeClaim": {"claimName": "dpone-state"}}]
    pod["containers"][0].update(
        {
            "command": ["dpone", "run", "--manifest", "/work/manifest.yml"],
            "workingDir": "/work",
            "volumeMounts": [{"name": "state", "mountPath": "/work/.dpone"}],
            "env": [
                {"name": "DPONE_LOG_LEVEL", "value": "info"},
                {
                    "name": "DPONE_PG_PASSWORD",
                    "valueFrom": {"secretKeyRef": {"name": "dpone-pg", "key": "password"}},
                },
            ],
        }
    )
    return document


def container(document: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = document["spec"]["jobTemplate"]["spec"]["template"]["spec"][
        "containers"
    ]
    return containers[0]


def text(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2)


def test_default_versions_are_oldest_middle_and_newest_shipped() -> None:
    shipped = supported_versions()
    eligible = [v for v in shipped if tuple(map(int, v.split("."))) >= OLDEST_RELEASE]
    assert DEFAULT_VERSIONS[0] == eligible[0]
    assert DEFAULT_VERSIONS[-1] == shipped[-1]
    assert len(DEFAULT_VERSIONS) == 3, (DEFAULT_VERSIONS, shipped)


def test_minimal_cronjob_passes_both_checks() -> None:
    validate_strict(text(minimal_cronjob()))
    cronjob = load_cronjob(text(minimal_cronjob()))
    assert cronjob.spec.schedule == "*/15 * * * *"


def test_unknown_field_fails_strict_validation_for_every_version() -> None:
    document = full_cronjob()
    container(document)["workdir"] = container(document).pop("workingDir")
    with pytest.raises(AssertionError) as failure:
        validate_strict(text(document))
    message = str(failure.value)
    for version in DEFAULT_VERSIONS:
        assert f"Kubernetes {version}: spec.jobTemplate.spec.template.spec.containers.0:" in message
    assert "'workdir' was unexpected" in message


def test_unknown_field_is_dropped_by_the_client_so_the_value_goes_missing() -> None:
    """Why the schema check is needed: the client ignores the typo instead of refusing it."""
    document = full_cronjob()
    container(document)["workdir"] = container(document).pop("workingDir")
    _, working_dir, _ = container_command(text(document))
    assert working_dir is None


@pytest.mark.parametrize("version", supported_versions())
def test_full_cronjob_passes_strict_validation(version: str) -> None:
    """Every shipped release from 1.25 accepts the full document, `spec.timeZone` included.

    timeZone went GA in 1.27, but the field is in the 1.25 and 1.26 schemas too (beta there,
    behind the CronJobTimeZone feature gate, on by default), so the schema cannot tell them apart.
    """
    if tuple(map(int, version.split("."))) < OLDEST_RELEASE:
        pytest.skip("older than the releases we support")
    validate_strict(text(full_cronjob()), versions=[version])


def test_full_cronjob_loads_and_reads_back() -> None:
    command, working_dir, env = container_command(text(full_cronjob()))
    assert command == ["dpone", "run", "--manifest", "/work/manifest.yml"]
    assert working_dir == "/work"
    assert env == [
        {"name": "DPONE_LOG_LEVEL", "value": "info"},
        {
            "name": "DPONE_PG_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "dpone-pg", "key": "password"}},
        },
    ]
    cronjob = load_cronjob(text(full_cronjob()))
    assert cronjob.spec.time_zone == "Europe/Berlin"
    pod = pod_spec(cronjob)
    assert pod.termination_grace_period_seconds == 120
    assert pod.volumes is not None and pod.volumes[0].persistent_volume_claim is not None
    assert pod.volumes[0].persistent_volume_claim.claim_name == "dpone-state"
    assert pod.containers[0].volume_mounts is not None
    assert pod.containers[0].volume_mounts[0].mount_path == "/work/.dpone"


@pytest.mark.parametrize("image", [None, ""])
def test_missing_or_empty_image_is_caught_by_neither_tool(image: str | None) -> None:
    """Only the API server requires an image, so a snippet test must check it itself.

    The OpenAPI (hence both the schemas and the client's models) marks containers[].image
    optional; the API server's validateContainerCommon rejects len(image) == 0 with
    "spec.jobTemplate.spec.template.spec.containers[0].image: Required value" on create. If a
    tool starts rejecting it, this test fails and the note in tests/support/kubernetes.py goes.
    """
    document = minimal_cronjob()
    if image is None:
        del container(document)["image"]
    else:
        container(document)["image"] = image
    validate_strict(text(document))
    assert not first_container(load_cronjob(text(document))).image


def test_missing_container_name_fails_both_checks() -> None:
    """A field the schema does require: both tools refuse it."""
    document = minimal_cronjob()
    del container(document)["name"]
    with pytest.raises(AssertionError, match="'name' is a required property"):
        validate_strict(text(document))
    with pytest.raises(ValueError, match="name"):
        load_cronjob(text(document))


def test_missing_schedule_fails_both_checks() -> None:
    document = minimal_cronjob()
    del document["spec"]["schedule"]
    with pytest.raises(AssertionError, match="'schedule' is a required property"):
        validate_strict(text(document))
    with pytest.raises(ValueError, match="schedule"):
        load_cronjob(text(document))


def test_wrongly_typed_command_fails_both_checks() -> None:
    """`command` as one shell string instead of an argv list; the client refuses it from 37."""
    document = minimal_cronjob()
    container(document)["command"] = "dpone run --manifest /work/manifest.yml"
    with pytest.raises(AssertionError, match="is not of type 'array'"):
        validate_strict(text(document))
    if int(kubernetes.__version__.split(".")[0]) < 37:
        # Before 37 the client iterates the string: one "argument" per character, no error.
        assert container_command(text(document))[0][:5] == ["d", "p", "o", "n", "e"]
        return
    with pytest.raises(ValueError, match="command"):
        load_cronjob(text(document))


def test_removed_api_version_fails_instead_of_warning() -> None:
    """batch/v1beta1 CronJob was removed in 1.25; the CLI only warns and exits 0 for it."""
    document = minimal_cronjob()
    document["apiVersion"] = "batch/v1beta1"
    with pytest.raises(AssertionError, match="Couldn't find schema for kind CronJob"):
        validate_strict(text(document))
    with pytest.raises(ValueError, match="not a batch/v1 CronJob"):
        load_cronjob(text(document))


@pytest.mark.parametrize("version", ["1.24", "1.3", "1.99"])
def test_version_without_a_shipped_schema_fails(version: str) -> None:
    """No silent fallback: "1.3" would otherwise be checked against 1.29 (string comparison)."""
    with pytest.raises(AssertionError, match=f"Kubernetes {version}: "):
        validate_strict(text(minimal_cronjob()), versions=[version])


def test_more_than_one_document_is_refused() -> None:
    two = text(minimal_cronjob()) + "\n---\n" + text(copy.deepcopy(minimal_cronjob()))
    with pytest.raises(AssertionError, match="expected one Kubernetes object"):
        validate_strict(two)
