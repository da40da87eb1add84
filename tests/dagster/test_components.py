"""``DponeComponent`` in this process: what ``defs.yaml`` settings become, and real runs.

The component must be a thin layer over the Python API: the same settings give
the same assets as ``build_dpone_assets`` (keys, specs, ops), and materializing
one of them through Dagster commits a real transfer against the demo shop.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import dagster as dg
import jsonschema
import pytest
import yaml
from components_support import (
    TYPE,
    code_reference_paths,
    copy_example,
    loaded_project,
    seed_shop,
    specs_by_key,
)
from dagster.components.core.component_tree import ComponentTree
from dagster_support import materializations, query, repository_snapshot

from dpone_core.state import LocalJobStateStore
from dpone_dagster import DponeResource, build_dpone_assets
from dpone_dagster.components import DponeComponent
from dpone_dagster.components.scaffolder import defs_yaml_text
from dpone_dagster.components.schema import inline_sections
from dpone_dagster.components.settings import (
    DponeOpSettings,
    DponeResourceSettings,
    DponeRetryPolicySettings,
    DponeTranslationSettings,
)
from dpone_dagster.components.translator import ComponentDponeTranslator
from tests.support.pg import drop_schema, dsn_with_password, new_schema
from tests.support.pg import query as pg_query

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dagster's test load context takes the working directory as the project root."""
    monkeypatch.chdir(tmp_path)


def _build(attributes: dict[str, Any], path: Path | None = None) -> dg.Definitions:
    """The component's definitions from ``attributes`` (what ``defs.yaml`` holds)."""
    context = ComponentTree.for_test().load_context
    if path is not None:
        context = context.for_path(path)
    component = DponeComponent.from_attributes_dict(attributes=attributes, context=context)
    return component.build_defs(context)


def _all_specs(assets: list[dg.AssetsDefinition]) -> list[dg.AssetSpec]:
    return sorted((s for a in assets for s in a.specs), key=lambda s: s.key.to_user_string())


def _ops(assets: list[dg.AssetsDefinition]) -> dict[str, Any]:
    return {
        a.op.name: (sorted(k.to_user_string() for k in a.keys), a.op.tags, a.op.retry_policy)
        for a in assets
    }


def test_the_example_loads_as_build_dpone_assets_and_commits_a_transfer(tmp_path: Path) -> None:
    project = copy_example(tmp_path)
    seed_shop(tmp_path)
    with loaded_project(project) as defs:
        assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
        resource = defs.resources["dpone"] if defs.resources else None
    expected = build_dpone_assets([tmp_path / "manifests"])
    assert specs_by_key(assets) == specs_by_key(expected)
    defs_yaml = str(project / "dpone_example" / "defs" / "shop" / "defs.yaml")
    for a, b in zip(_all_specs(assets), _all_specs(expected), strict=True):
        # Dagster adds the defs.yaml to the code references dpone gives (the manifest line).
        assert code_reference_paths(a) == [*code_reference_paths(b), defs_yaml]
    assert _ops(assets) == _ops(expected)
    assert {c for a in assets for c in a.check_keys} == {c for a in expected for c in a.check_keys}
    assert isinstance(resource, DponeResource)
    assert resource.state_dir == str(tmp_path / ".dpone" / "orchestration-state")
    assert (resource.retry_attempts, resource.retry_backoff_seconds) == (1, 1)

    result = dg.materialize(
        assets,
        resources={"dpone": resource},
        selection=["warehouse/landing_orders"],
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert result.success
    (md,) = materializations(result)["warehouse/landing_orders"]
    assert md["dpone/status"] == "committed"
    assert md["dpone/inserted_rows"] == 100
    states = LocalJobStateStore(tmp_path / ".dpone" / "orchestration-state")
    state = states.load(str(md["dpone/run_id"]))
    assert state is not None and state.status == "committed"
    assert query(tmp_path / "data" / "warehouse.db", "select count(*) from landing_orders") == [
        (100,)
    ]


def test_translation_and_op_settings_are_the_python_apis_arguments(tmp_path: Path) -> None:
    translation = {
        "key_prefix": ["lake", "raw"],
        "group_name": "dpone_{manifest}",
        "tags": {"team": "data"},
        "kinds": ["warehouse"],
        "owners": ["team:data"],
        "metadata": {"tier": "gold"},
        "run_id_prefix": "{manifest}.{selector}",
        "automation_condition": "{{ dg.AutomationCondition.eager() }}",
    }
    op = {"tags": {"cost": "low"}, "retry_policy": {"max_retries": 2, "delay": 3}}
    defs = _build({"manifests": [str(MANIFESTS)], "translation": translation, "op": op})
    assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
    expected = build_dpone_assets(
        [MANIFESTS],
        ComponentDponeTranslator(
            DponeTranslationSettings.model_validate(
                {**translation, "automation_condition": dg.AutomationCondition.eager()}
            )
        ),
        op_tags={"cost": "low"},
        retry_policy=dg.RetryPolicy(max_retries=2, delay=3),
    )
    assert specs_by_key(assets) == specs_by_key(expected)
    assert _ops(assets) == _ops(expected)

    specs = specs_by_key(assets)
    orders = specs["lake/raw/warehouse/landing_orders"]
    assert [d.asset_key.to_user_string() for d in orders.deps] == ["lake/raw/shop/orders"]
    daily = specs["lake/raw/reporting/daily_orders"]  # lineage across manifests stays connected
    assert "lake/raw/warehouse/landing_orders" in [d.asset_key.to_user_string() for d in daily.deps]
    (command,) = [k for k in specs_by_key(build_dpone_assets([MANIFESTS])) if "refresh" in k]
    assert f"lake/raw/{command}" in specs  # a command's key is prefixed too
    assert orders.group_name == "dpone_shop"
    assert orders.tags["team"] == "data" and set(orders.kinds) >= {"dpone", "sqlite", "warehouse"}
    assert "team:data" in orders.owners and orders.metadata["tier"] == "gold"
    assert orders.automation_condition is not None
    assert orders.metadata["dpone/run_id_prefix"] == "shop.orders"
    assert all(a.op.retry_policy == dg.RetryPolicy(max_retries=2, delay=3) for a in assets)


def test_no_translation_means_the_default_translator() -> None:
    defs = _build({"manifests": [str(MANIFESTS)], "checks": False})
    assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
    expected = build_dpone_assets([MANIFESTS], checks=False)
    assert specs_by_key(assets) == specs_by_key(expected)
    assert not any(a.check_keys for a in assets)


def test_op_pool_is_every_ops_pool_and_dagster_queues_on_it(tmp_path: Path) -> None:
    manifest = tmp_path / "m.yml"
    manifest.write_text(
        "version: 1\nprocesses:\n  hello:\n    kind: command\n"
        "    command: ['python3', '-c', 'print(1)']\n"
    )

    def concurrency_keys(attributes: dict[str, Any]) -> set[str]:
        defs = _build({"manifests": [str(manifest)], **attributes}, tmp_path)
        assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
        overrides = {"concurrency": {"pools": {"default_limit": 1}}}
        with dg.instance_for_test(overrides=overrides) as inst:
            result = dg.materialize(assets, resources=defs.resources, instance=inst)
            assert result.success
            return set(inst.event_log_storage.get_concurrency_keys())

    assert concurrency_keys({}) == set()
    assert concurrency_keys({"op": {"pool": "shared"}}) == {"shared"}

    manifest.write_text(manifest.read_text() + "    concurrency_key: warehouse\n")
    with pytest.raises(dg.DagsterInvalidDefinitionError, match=r"op.pool 'shared' conflicts"):
        _build({"manifests": [str(manifest)], "op": {"pool": "shared"}}, tmp_path)


def test_resource_settings_build_the_resource(tmp_path: Path) -> None:
    (tmp_path / "defs").mkdir()
    (tmp_path / "m.yml").write_text(
        "version: 1\nprocesses:\n  hello:\n    kind: command\n    command: [echo, hi]\n"
    )
    settings = {
        "lock_dir": "locks",
        "state_dir": "../states",
        "output_root": str(tmp_path / "evidence"),
        "lock_ttl_seconds": 60,
        "retry_attempts": 2,
        "retry_backoff_seconds": 0.5,
        "resume_policy": "resume",
        "backend": "files",
    }
    defs = _build({"manifests": ["../m.yml"], "resource": settings}, tmp_path / "defs")
    resource = (defs.resources or {})["dpone"]
    assert resource == DponeResource(
        lock_dir=str(tmp_path / "defs" / "locks"),
        state_dir=str(tmp_path / "states"),
        output_root=str(tmp_path / "evidence"),
        lock_ttl_seconds=60,
        retry_attempts=2,
        retry_backoff_seconds=0.5,
        resume_policy="resume",
        backend="files",
    )
    # Equal settings, one object: Dagster merges two components' definitions only then.
    again = _build({"manifests": ["../m.yml"], "resource": settings}, tmp_path / "defs")
    assert (again.resources or {})["dpone"] is resource
    other = _build({"manifests": ["../m.yml"]}, tmp_path / "defs")
    assert (other.resources or {})["dpone"] is not resource

    keyed = _build(
        {
            "manifests": ["../m.yml"],
            "resource_key": "shop_dpone",
            "resource": {"backend_dsn_env": "SHOP_DPONE_DSN"},
        },
        tmp_path / "defs",
    )
    backend = (keyed.resources or {})["shop_dpone"].backend
    assert isinstance(backend, dg.EnvVar) and backend.env_var_name == "SHOP_DPONE_DSN"

    with pytest.raises(ValueError, match=r"backend_dsn_env .* but backend is 'files'"):
        DponeResourceSettings(backend="files", backend_dsn_env="X")
    with pytest.raises(ValueError, match="not an environment variable name"):
        DponeResourceSettings(backend_dsn_env="postgresql://u:p@h/db")


def test_the_component_covers_every_resource_field() -> None:
    """A field added to DponeResource must reach defs.yaml too (backend: backend_dsn_env)."""
    resource_fields = set(DponeResource.model_fields)
    settings_fields = set(DponeResourceSettings.model_fields) - {"backend_dsn_env"}
    assert resource_fields == settings_fields
    defaults = DponeResource()
    for name in resource_fields - {"lock_dir", "state_dir", "output_root"}:
        assert getattr(DponeResourceSettings(), name) == getattr(defaults, name), name


def _uncommented(text: str) -> dict[str, Any]:
    """The scaffolded defs.yaml with every commented-out field switched on."""
    lines = []
    for line in text.splitlines():
        match = re.match(r"^(\s*)# ( *\w+:.*)$", line)
        lines.append(match.group(1) + match.group(2) if match else line)
    doc: dict[str, Any] = yaml.safe_load("\n".join(lines))
    return doc


def test_the_scaffolded_template_names_every_field_with_its_default(tmp_path: Path) -> None:
    (tmp_path / "m.yml").write_text(
        "version: 1\nprocesses:\n  hello:\n    kind: command\n    command: [echo, hi]\n"
    )
    doc = _uncommented(defs_yaml_text(TYPE, ["m.yml"]))
    attributes = doc["attributes"]
    assert set(attributes) == set(DponeComponent.model_fields)
    for name, model in (
        ("translation", DponeTranslationSettings),
        ("op", DponeOpSettings),
        ("resource", DponeResourceSettings),
    ):
        assert set(attributes[name]) == set(model.model_fields), name
    schema = DponeComponent.get_model_cls().model_json_schema()
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(attributes)) == []
    # Switching every default on changes nothing.
    on, off = _build(attributes), _build({"manifests": ["m.yml"]})
    assert (on.resources or {})["dpone"] is (off.resources or {})["dpone"]
    assert specs_by_key(list(on.assets or [])) == specs_by_key(list(off.assets or []))


def test_settings_refuse_what_dagster_or_dpone_would_refuse_later() -> None:
    with pytest.raises(ValueError, match=r"unknown placeholder \{team\}"):
        DponeTranslationSettings(group_name="{team}")
    with pytest.raises(ValueError, match="backoff and jitter need a delay"):
        DponeRetryPolicySettings(jitter="full")
    with pytest.raises(ValueError, match="not a valid resource key"):
        DponeComponent(manifests=["m.yml"], resource_key="my-dpone")
    with pytest.raises(ValueError, match="at least 1 item"):
        DponeComponent(manifests=[])
    assert DponeComponent(manifests="m.yml").manifests == ["m.yml"]  # type: ignore[arg-type]


def test_a_missing_manifest_is_named(tmp_path: Path) -> None:
    with pytest.raises(dg.DagsterInvalidDefinitionError, match=r"manifests\[1\] 'nowhere.yml'"):
        _build({"manifests": [str(MANIFESTS), "nowhere.yml"]}, tmp_path)


def test_the_published_schema_names_fields_and_accepts_the_same_documents() -> None:
    schema = DponeComponent.get_model_cls().model_json_schema()
    resource = schema["properties"]["resource"]
    assert resource["type"] == ["object", "string", "null"]
    assert resource["additionalProperties"] is False
    assert "lock_dir" in resource["properties"]
    retry = schema["properties"]["op"]["properties"]["retry_policy"]
    assert retry["type"][0] == "object" and "max_retries" in retry["properties"]
    policy = resource["properties"]["resume_policy"]["anyOf"]
    assert {"type": "string", "pattern": r"\{\{"} in policy  # a string other than the enum
    assert inline_sections({"properties": {"x": {"type": "string"}}}) == {
        "properties": {"x": {"type": "string"}}
    }


@pytest.fixture
def pg_schema(monkeypatch: pytest.MonkeyPatch) -> Any:
    schema = new_schema()
    monkeypatch.setenv("DPONE_ORCHESTRATION_SCHEMA", schema)
    yield schema
    drop_schema(schema)


def test_backend_dsn_env_runs_on_postgresql_and_the_dsn_stays_out_of_dagster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_schema: str
) -> None:
    dsn, password = dsn_with_password()
    monkeypatch.delenv("DPONE_ORCHESTRATION_DSN", raising=False)
    monkeypatch.setenv("SHOP_DPONE_DSN", dsn)
    manifest = tmp_path / "greet.yml"
    manifest.write_text(
        "version: 1\nprocesses:\n  hello:\n    kind: command\n"
        "    command: ['python3', '-c', 'print(1)']\n"
    )
    defs = _build(
        {"manifests": ["greet.yml"], "resource": {"backend_dsn_env": "SHOP_DPONE_DSN"}}, tmp_path
    )
    assert password not in repository_snapshot(defs)
    assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
    result = dg.materialize(
        assets, resources=defs.resources, instance=dg.DagsterInstance.ephemeral()
    )
    assert result.success
    ((md,),) = materializations(result).values()
    rows = pg_query(f'select run_id, status from "{pg_schema}".job_states')
    assert rows == [(md["dpone/run_id"], "committed")]
    assert password not in "".join(str(event) for event in result.all_events)


DOC = (Path(__file__).resolve().parents[2] / "docs" / "dagster-components.md").read_text()


def _doc_table(heading: str) -> set[str]:
    section = DOC.split(f"\n{heading}\n", 1)[1].split("\n#", 1)[0]
    return set(re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE))


@pytest.mark.parametrize(
    ("heading", "model"),
    [
        ("### `attributes`", DponeComponent),
        ("### `translation`", DponeTranslationSettings),
        ("### `op`", DponeOpSettings),
        ("### `op.retry_policy`", DponeRetryPolicySettings),
        ("### `resource`", DponeResourceSettings),
    ],
)
def test_the_reference_documents_every_field_and_nothing_else(heading: str, model: Any) -> None:
    assert _doc_table(heading) == set(model.model_fields)


def test_the_python_example_of_the_docs_runs(tmp_path: Path) -> None:
    code = DOC.split("\n## In Python\n", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/dagster-components.md", "exec"), namespace)
    (tmp_path / "m.yml").write_text(
        "version: 1\nprocesses:\n  hello:\n    kind: command\n    command: [echo, hi]\n"
        "    tags: {team: data}\n"
    )
    context = ComponentTree.for_test().load_context
    component = namespace["MyDponeComponent"].from_attributes_dict(
        attributes={"manifests": ["m.yml"], "translation": {"owners": ["a@example.com"]}},
        context=context,
    )
    (spec,) = [s for a in component.build_defs(context).assets for s in a.specs]
    assert spec.owners == ["a@example.com", "team:data"]
