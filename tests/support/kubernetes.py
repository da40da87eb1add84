"""Check a generated Kubernetes CronJob with the real tools, not with our reading of the API.

The scheduler handoff snippet is a CronJob printed as JSON (which is also YAML). A test that only
compares it with a dict we wrote ourselves would pass on a field Kubernetes does not have (for
example ``workdir`` for ``workingDir``): the API server prunes or rejects it, and the job runs
somewhere else. So the snippet is checked twice, by two independent sources of the API schema:

* ``validate_strict``: kubernetes-validate's JSON schemas (built from each release's OpenAPI) in
  strict mode, where an unknown field is an error, for several Kubernetes releases;
* ``load_cronjob``: the official Python client's own deserializer into ``V1CronJob``, whose models
  refuse a missing required field or a value of the wrong type.

Neither is the API server. Both take ``containers[].image`` as optional (the OpenAPI marks it so
that controllers and config tools may fill it in), while the API server requires it on create
(``validateContainerCommon`` in pkg/apis/core/validation/validation.go); see
test_kubernetes_support.py.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from typing import Any

import kubernetes_validate
import kubernetes_validate.utils
import yaml
from kubernetes.client import ApiClient, Configuration, V1Container, V1CronJob, V1PodSpec

#: The oldest release we check: from 1.25, batch/v1 is the only CronJob (v1beta1 was removed).
OLDEST_RELEASE = (1, 25)


def _release(version: str) -> tuple[int, int]:
    major, minor = version.removeprefix("v").split(".")[:2]
    return int(major), int(minor)


def _name(release: tuple[int, int]) -> str:
    return f"{release[0]}.{release[1]}"


def supported_versions() -> list[str]:
    """The Kubernetes releases ("1.25", ...) whose schemas the installed kubernetes-validate ships.

    Read from the package, not written down here, so that upgrading it moves the newest release we
    check forward instead of silently keeping an old one.
    """
    shipped = {_release(version) for version in kubernetes_validate.utils.all_versions()}
    return [_name(release) for release in sorted(shipped)]


def _spread(versions: Sequence[str]) -> tuple[str, ...]:
    """The oldest release from OLDEST_RELEASE on, the middle one and the newest.

    Three, not all thirteen: schema differences between neighbouring releases are rare, and the
    oldest and newest are where a field is missing or was removed.
    """
    candidates = [v for v in versions if _release(v) >= OLDEST_RELEASE]
    if not candidates:
        raise RuntimeError(f"kubernetes-validate ships no release from 1.25 on: {versions}")
    return tuple(dict.fromkeys([candidates[0], candidates[len(candidates) // 2], candidates[-1]]))


#: Releases `validate_strict` checks unless told otherwise (1.25, 1.31, 1.37 with 1.37.0 installed).
DEFAULT_VERSIONS: tuple[str, ...] = _spread(supported_versions())


def parse_document(document_text: str) -> dict[str, Any]:
    """The one object in the text, read as YAML the way kubectl and kubernetes-validate read it.

    YAML rather than json.loads, because a user pastes the snippet into a YAML file; JSON is YAML.
    """
    documents = [doc for doc in yaml.safe_load_all(document_text) if doc is not None]
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise AssertionError(f"expected one Kubernetes object, got {len(documents)} documents")
    return documents[0]


def validate_strict(document_text: str, versions: Sequence[str] = DEFAULT_VERSIONS) -> None:
    """Validate against each release's schema, unknown fields being errors; AssertionError if not.

    Uses the library call ``kubernetes_validate.validate(data, version, strict=True)`` (the
    documented Python API; the CLI is a thin wrapper over it) rather than running the CLI, because
    the CLI only *warns* and exits 0 when it has no schema for the kind/apiVersion (a typo in
    ``apiVersion`` would pass), and its output would have to be parsed. Every failing release is
    listed, with the tool's own message and the path of the offending field.
    """
    if not versions:
        raise ValueError("no Kubernetes versions to validate against")
    data = parse_document(document_text)
    failures: list[str] = []
    for version in versions:
        try:
            used = kubernetes_validate.validate(data, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path) or "<root>"
            failures.append(f"Kubernetes {version}: {path}: {error.message}")
            continue
        except kubernetes_validate.SchemaNotFoundError as error:
            failures.append(f"Kubernetes {version}: {error.message}")
            continue
        except (kubernetes_validate.utils.VersionNotSupportedError, IndexError):
            # IndexError: the library's own reaction to a release older than all it ships.
            failures.append(f"Kubernetes {version}: kubernetes-validate ships no schema for it")
            continue
        # The library falls back to an older schema when it lacks the one asked for, and compares
        # versions as strings ("1.3" > "1.25"); only an exact match means we checked that release.
        if _release(used) != _release(version):
            failures.append(f"Kubernetes {version}: kubernetes-validate used the {used} schema")
    if failures:
        raise AssertionError(
            "kubernetes-validate --strict rejected the document:\n" + "\n".join(failures)
        )


def _api_client() -> ApiClient:
    configuration = Configuration()
    # Already the default; set so that a changed default cannot turn the check off.
    configuration.client_side_validation = True
    return ApiClient(configuration)


def load_cronjob(document_text: str) -> V1CronJob:
    """Deserialize with the official client, as it reads a CronJob the API server returned.

    ``ApiClient.deserialize`` is the client's public route from JSON text to a model. Its models
    raise ValueError (pydantic's ValidationError from kubernetes 37, the client-side-validation
    setters before) when a required field is missing or a value has the wrong type. It ignores
    unknown fields; `validate_strict` is the check for those.
    """
    data = parse_document(document_text)
    if (data.get("apiVersion"), data.get("kind")) != ("batch/v1", "CronJob"):
        raise ValueError(f"not a batch/v1 CronJob: {data.get('apiVersion')} {data.get('kind')}")
    client = _api_client()
    text = json.dumps(data)
    deserialize: Any = client.deserialize  # its signature changed in kubernetes 37
    if next(iter(inspect.signature(deserialize).parameters)) == "response_text":
        loaded = deserialize(text, "V1CronJob", "application/json")
    else:  # kubernetes < 37: deserialize(response, type) reads response.data

        class _Response:
            data = text

        loaded = deserialize(_Response(), "V1CronJob")
    if not isinstance(loaded, V1CronJob):
        raise ValueError(f"the client deserialized a {type(loaded).__name__}, not a V1CronJob")
    return loaded


def pod_spec(cronjob: V1CronJob) -> V1PodSpec:
    """The pod spec inside the job template (the client types every level as optional)."""
    job = cronjob.spec.job_template.spec
    if job is None or job.template.spec is None:
        raise ValueError("the CronJob has no spec.jobTemplate.spec.template.spec")
    spec: V1PodSpec = job.template.spec
    return spec


def first_container(cronjob: V1CronJob) -> V1Container:
    """The job's first container, where the snippet puts the `dpone` command."""
    containers: list[V1Container] = pod_spec(cronjob).containers
    return containers[0]


def container_command(document_text: str) -> tuple[list[str], str | None, list[dict[str, Any]]]:
    """The first container's command, workingDir and env, as the client loaded them.

    Read from the loaded object rather than the JSON, so a misspelt key (which the client drops)
    shows up as a missing value. The env entries are in API form (camelCase keys, no nulls), by
    the client's own serializer, e.g. ``{"name": "X", "valueFrom": {"secretKeyRef": {...}}}``.
    An unset command (the image's ENTRYPOINT would run) is ``[]``.
    """
    container = first_container(load_cronjob(document_text))
    serialize: Any = _api_client().sanitize_for_serialization  # untyped in the client
    env: list[dict[str, Any]] = [serialize(variable) for variable in container.env or []]
    return list(container.command or []), container.working_dir, env
