"""OpenLineage events from registry entries, validated against the spec the client declares."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from dpone_core.manifest import load_manifest, resolved_connections
from dpone_core.ops.entry import parse_parent_id
from dpone_core.ops.lineage import (
    LineageDataset,
    LineageJob,
    build_run_events,
    event_dicts,
    job_name_for,
    openlineage_run_id,
    producer_uri,
)
from dpone_core.ops.lineage_columns import Column
from dpone_core.ops.lineage_datasets import datasets_from_manifest, datasets_from_specs
from tests.ops.test_entry import make_entry
from tests.support.openlineage_spec import spec_version, validate_run_event
from tests.support.workspace import Workspace

JOB = LineageJob(
    namespace="dpone",
    name="shop.orders",
    kind="transfer",
    description="Orders",
    owners=("team:data",),
    query=None,
)
SOURCE = LineageDataset("sqlite:/d/shop.db", "orders", (Column("order_id", "INTEGER"),), 10)
TARGET = LineageDataset("postgres://db:5432", "dwh.public.orders", None, 10)


def _events(entry, **kw):  # type: ignore[no-untyped-def]
    events = build_run_events(
        entry,
        JOB,
        [SOURCE],
        [TARGET],
        producer=producer_uri("0.1.0"),
        entry_location="/reg/x__run_registry.json",
        **kw,
    )
    return event_dicts(events)


def test_the_client_declares_spec_2_0_2() -> None:
    assert spec_version() == "2-0-2"


def test_a_committed_run_is_start_then_complete_at_its_real_times() -> None:
    entry = make_entry(attempt=2)
    start, end = _events(entry)
    for event in (start, end):
        validate_run_event(event)
    assert (start["eventType"], end["eventType"]) == ("START", "COMPLETE")
    assert start["eventTime"] == entry.started_at == "2026-11-30T02:00:00.000000Z"
    assert end["eventTime"] == entry.finished_at == "2026-11-30T02:05:00.000000Z"
    run_id = start["run"]["runId"]
    assert end["run"]["runId"] == run_id == openlineage_run_id(entry.run_id, 2)
    assert uuid.UUID(run_id).version == 5
    assert start["job"] == end["job"]
    assert (start["job"]["namespace"], start["job"]["name"]) == ("dpone", "shop.orders")
    facets = start["job"]["facets"]
    assert (
        facets["jobType"]["integration"] == "DPONE" and facets["jobType"]["jobType"] == "TRANSFER"
    )
    assert facets["documentation"]["description"] == "Orders"
    assert facets["ownership"]["owners"] == [{"name": "team:data"}]
    tags = {t["key"]: t["value"] for t in end["run"]["facets"]["tags"]["tags"]}
    assert tags["dpone.run_id"] == entry.run_id and tags["dpone.attempt"] == "2"
    assert tags["dpone.registry_entry"] == "/reg/x__run_registry.json"
    assert "errorMessage" not in end["run"]["facets"]


def test_datasets_carry_schema_source_and_the_runs_row_counts_at_the_end() -> None:
    start, end = _events(make_entry())
    (source,) = end["inputs"]
    (target,) = end["outputs"]
    assert source["facets"]["schema"]["fields"] == [
        {"name": "order_id", "type": "INTEGER", "ordinal_position": 1, "fields": []}
    ]
    assert source["facets"]["dataSource"]["uri"] == "sqlite:/d/shop.db"
    assert source["inputFacets"]["inputStatistics"]["rowCount"] == 10
    assert target["outputFacets"]["outputStatistics"]["rowCount"] == 10
    assert "schema" not in target["facets"]  # no columns known, no facet
    assert start["outputs"][0].get("outputFacets", {}) == {}  # counts only once it ended


@pytest.mark.parametrize(("status", "event_type"), [("failed", "FAIL"), ("blocked", "ABORT")])
def test_a_run_that_did_not_commit_ends_with_its_error(status: str, event_type: str) -> None:
    entry = make_entry(status=status, errors=["target table is locked"])
    start, end = _events(entry)
    validate_run_event(end)
    assert end["eventType"] == event_type
    error = end["run"]["facets"]["errorMessage"]
    assert error["message"] == "target table is locked" and error["programmingLanguage"] == "PYTHON"
    assert "errorMessage" not in start["run"]["facets"]


def test_a_parent_run_from_the_scheduler_becomes_the_parent_facet() -> None:
    parent_id, root_id = str(uuid.uuid4()), str(uuid.uuid4())
    parent = parse_parent_id(f"airflow/daily.orders/{parent_id}", "x", f"airflow/daily/{root_id}")
    entry = make_entry().model_copy(update={"parent": parent})
    for event in _events(entry):
        validate_run_event(event)
        facet = event["run"]["facets"]["parent"]
        assert facet["run"]["runId"] == parent_id
        assert (facet["job"]["namespace"], facet["job"]["name"]) == ("airflow", "daily.orders")
        assert facet["root"]["run"]["runId"] == root_id


def test_run_ids_are_deterministic_per_run_and_attempt() -> None:
    assert openlineage_run_id("r", 1) == openlineage_run_id("r", 1)
    assert (
        len({openlineage_run_id("r", 1), openlineage_run_id("r", 2), openlineage_run_id("s", 1)})
        == 3
    )
    assert job_name_for("/x/manifests/shop.yml", "orders") == "shop.orders"
    assert job_name_for(None, "orders") == "orders"


def test_manifest_datasets_source_target_and_deps(shop: Workspace) -> None:
    loaded = load_manifest(shop.root / "shop.yml")
    connections = resolved_connections(loaded)
    inputs, outputs = datasets_from_manifest(
        "orders", loaded.manifest.processes["orders"], connections
    )
    shop_ns = f"sqlite:{shop.root / 'data' / 'shop.db'}"
    assert [(d.id.namespace, d.id.name, d.primary) for d in inputs] == [
        (shop_ns, "orders", True),
        (shop_ns, "customers", False),
    ]
    assert [(d.id.name, d.primary) for d in outputs] == [("landing_orders", True)]
    inputs, outputs = datasets_from_manifest(
        "report", loaded.manifest.processes["report"], connections
    )
    assert [d.id.name for d in inputs] == ["landing_orders"] and outputs == []


def test_given_datasets_resolve_manifest_connections_and_keep_other_namespaces(
    tmp_path: Path,
) -> None:
    connections = {"warehouse": "postgresql://u:pw@db:5432/dwh"}
    (given,) = datasets_from_specs("output", ["warehouse=landing.orders"], connections)
    assert (given.id.namespace, given.id.name, given.primary) == (
        "postgres://db:5432",
        "dwh.landing.orders",
        True,
    )
    assert given.url == connections["warehouse"]
    first, second = datasets_from_specs("input", ["postgres=public.orders", "mssql=x.y"], {})
    assert (first.id.namespace, first.id.name, first.url) == ("postgres", "public.orders", None)
    assert not first.primary and not second.primary  # two inputs: whose rows? neither's
