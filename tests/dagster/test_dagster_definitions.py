"""Asset definitions: keys, lineage across manifests, the translator, pools, splits.

No ``from __future__ import annotations``: Dagster reads decorated functions'
annotations as objects.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster_support import materializations, repository_snapshot, run

from dpone_dagster import (
    DagsterDponeTranslator,
    DponeProcess,
    DponeResource,
    build_dpone_assets,
    dpone_assets,
)
from tests.support.workspace import Workspace


def _two_manifests(ws: Workspace) -> tuple[Path, Path]:
    shop = ws.write_manifest(
        {
            "orders": {
                "description": "Orders into the landing zone",
                "source": {"connection": "shop", "table": "orders"},
                "target": {"connection": "warehouse", "table": "landing_orders"},
                "strategy": {"mode": "merge", "key": ["order_id"], "cursor": "updated_at"},
                "tags": {"tier": "gold"},
                "owners": ["data-eng@example.com"],
            },
            "notify": {"kind": "command", "command": ["true"]},
        },
        name="shop.yml",
        connections={
            "shop": "sqlite:///shop.db",
            "warehouse": "postgresql+psycopg://etl@db.example:5432/wh",
        },
    )
    reporting = ws.write_manifest(
        {
            "daily": {
                "source": {"connection": "warehouse", "table": "landing_orders"},
                "target": {"connection": "reporting", "table": "analytics.daily_orders"},
                "strategy": {"mode": "append"},
            },
            "adhoc": {
                "source": {"connection": "warehouse", "query": "select 1 as x"},
                "target": {"connection": "reporting", "table": "adhoc"},
            },
        },
        name="reporting.yml",
        connections={
            "warehouse": "postgresql://etl@db.example:5432/wh",
            "reporting": "sqlite:///reporting.db",
        },
    )
    return shop, reporting


def test_default_specs(ws: Workspace) -> None:
    shop, reporting = _two_manifests(ws)
    assets = build_dpone_assets([shop, reporting])
    specs = {spec.key.to_user_string(): spec for a in assets for spec in a.specs}
    assert set(specs) == {
        "warehouse/landing_orders",
        "command/shop/notify",
        "reporting/analytics/daily_orders",
        "reporting/adhoc",
    }
    orders = specs["warehouse/landing_orders"]
    assert [d.asset_key for d in orders.deps] == [dg.AssetKey(["shop", "orders"])]
    assert orders.group_name == "shop"
    assert orders.description == "Orders into the landing zone"
    assert orders.owners == ["data-eng@example.com"]
    assert orders.tags["tier"] == "gold"
    assert orders.kinds == {"dpone", "postgres"}
    assert orders.code_version and len(orders.code_version) == 16
    md = {k: getattr(v, "value", v) for k, v in orders.metadata.items()}
    assert md["dpone/selector"] == "orders"
    assert md["dpone/kind"] == "transfer"
    assert md["dpone/source"] == "shop.orders"
    assert md["dpone/target"] == "warehouse.landing_orders"
    assert md["dpone/strategy"] == {
        "mode": "merge",
        "key": ["order_id"],
        "cursor": "updated_at",
        "null_cursor": "error",  # the effective default (docs/manifests.md)
    }
    assert md["dpone/manifest_sha256"] and str(md["dpone/manifest"]).endswith("shop.yml")
    assert md["dagster/table_name"] == "wh.public.landing_orders"  # database.schema.table

    notify = specs["command/shop/notify"]
    assert notify.kinds == {"dpone", "command"} and not list(notify.deps)
    assert specs["reporting/analytics/daily_orders"].kinds == {"dpone", "sqlite"}
    assert not list(specs["reporting/adhoc"].deps)  # a query names no table
    # Each process has its own code version: editing one marks only that asset changed.
    assert len({s.code_version for s in specs.values()}) == 4


def test_lineage_across_manifests(ws: Workspace) -> None:
    shop, reporting = _two_manifests(ws)
    defs = dg.Definitions(
        assets=build_dpone_assets([shop, reporting]), resources={"dpone": DponeResource()}
    )
    graph = defs.resolve_asset_graph()
    daily = dg.AssetKey(["reporting", "analytics", "daily_orders"])
    landing = dg.AssetKey(["warehouse", "landing_orders"])
    assert graph.get(daily).parent_keys == {landing}
    assert daily in graph.get(landing).child_keys
    assert graph.get(landing).parent_keys == {dg.AssetKey(["shop", "orders"])}


class LakeTranslator(DagsterDponeTranslator):
    """Tables under a ``lake`` prefix, groups by owner team, commands keyed by selector."""

    def get_table_asset_key(self, connection: str, table: str) -> dg.AssetKey:
        return dg.AssetKey(["lake", connection, *table.split(".")])

    def get_asset_key(self, process: DponeProcess) -> dg.AssetKey:
        if process.is_command:
            return dg.AssetKey(["ops", process.selector])
        return super().get_asset_key(process)

    def get_group_name(self, process: DponeProcess) -> str:
        return "ingest" if process.is_transfer else "ops"


def test_translator_subclass_changes_keys_and_groups_and_keeps_lineage(ws: Workspace) -> None:
    shop, reporting = _two_manifests(ws)
    assets = build_dpone_assets([shop, reporting], translator=LakeTranslator())
    specs = {spec.key.to_user_string(): spec for a in assets for spec in a.specs}
    assert set(specs) == {
        "lake/warehouse/landing_orders",
        "ops/notify",
        "lake/reporting/analytics/daily_orders",
        "lake/reporting/adhoc",
    }
    assert specs["ops/notify"].group_name == "ops"
    assert specs["lake/warehouse/landing_orders"].group_name == "ingest"
    graph = dg.Definitions(
        assets=assets, resources={"dpone": DponeResource()}
    ).resolve_asset_graph()
    assert graph.get(
        dg.AssetKey(["lake", "reporting", "analytics", "daily_orders"])
    ).parent_keys == {dg.AssetKey(["lake", "warehouse", "landing_orders"])}


def test_translator_subclass_assets_materialize(ws: Workspace) -> None:
    manifest = ws.write_manifest({"ping": {"kind": "command", "command": ["true"]}}, name="ops.yml")
    result = run(build_dpone_assets([manifest], translator=LakeTranslator()), ws)
    assert result.success
    assert materializations(result)["ops/ping"][0]["dpone/status"] == "committed"


def test_per_asset_metadata_stays_small_and_holds_no_url(ws: Workspace) -> None:
    shop, reporting = _two_manifests(ws)
    for spec in (s for a in build_dpone_assets([shop, reporting]) for s in a.specs):
        text = repr(spec.metadata)
        assert "db.example" not in text and "sqlite:///" not in text
        assert "processes" not in text  # never the whole manifest
        assert len(text) < 1500


def test_same_selector_in_two_manifests_gets_two_run_ids(ws: Workspace) -> None:
    """Run ids carry the manifest's name (the run-id rule), so selectors may repeat; a
    translator that makes two prefixes equal is refused, naming both processes."""
    one = ws.write_manifest({"sync": {"kind": "command", "command": ["true"]}}, name="one.yml")
    two = ws.write_manifest({"sync": {"kind": "command", "command": ["true"]}}, name="two.yml")
    result = run(build_dpone_assets([one, two]), ws)
    assert result.success
    mats = materializations(result)
    assert mats["command/one/sync"][0]["dpone/run_id"] == f"one.sync_{result.run_id}"
    assert mats["command/two/sync"][0]["dpone/run_id"] == f"two.sync_{result.run_id}"

    class BareSelector(DagsterDponeTranslator):
        def get_run_id_prefix(self, process: DponeProcess) -> str:
            return process.selector

    with pytest.raises(dg.DagsterInvalidDefinitionError, match="share the run id prefix 'sync'"):
        build_dpone_assets([one, two], translator=BareSelector())


def test_pools_follow_concurrency_keys_and_split_the_manifest(ws: Workspace) -> None:
    manifest = ws.write_manifest(
        {
            "a": {"kind": "command", "command": ["true"], "concurrency_key": "warehouse"},
            "b": {"kind": "command", "command": ["true"], "concurrency_key": "warehouse"},
            "c": {"kind": "command", "command": ["true"]},
            "d": {
                "kind": "command",
                "command": ["true"],
                "partitions": {"granularity": "daily", "start": "2026-01-01"},
            },
        },
        name="pools.yml",
    )
    assets = build_dpone_assets([manifest])
    by_keys = {
        tuple(sorted(k.to_user_string() for k in a.keys)): (a.op.name, a.op.pool, a.partitions_def)
        for a in assets
    }
    a, b, c, d = (f"command/pools/{name}" for name in "abcd")
    assert set(by_keys) == {(a, b), (c,), (d,)}
    assert by_keys[(a, b)][:2] == ("dpone_pools__warehouse", "warehouse")
    assert by_keys[(c,)][:2] == ("dpone_pools__default", None)
    name, pool, partitions = by_keys[(d,)]
    assert (name, pool) == ("dpone_pools__daily", None) and partitions is not None
    assert all(a.can_subset for a in assets)
    assert len({a.op.name for a in assets}) == 3


def test_decorator_refuses_mixed_pools_and_select_splits(ws: Workspace) -> None:
    manifest = ws.write_manifest(
        {
            "a": {"kind": "command", "command": ["true"], "concurrency_key": "k1"},
            "b": {"kind": "command", "command": ["true"], "concurrency_key": "k2"},
        },
        name="mixed.yml",
    )
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="must share concurrency_key"):
        dpone_assets(manifest=manifest)

    @dpone_assets(manifest=manifest, select=["b"])
    def only_b(context: dg.AssetExecutionContext, dpone: DponeResource) -> Iterator[Any]:
        yield from dpone.materialize(context)

    assert only_b.keys == {dg.AssetKey(["command", "mixed", "b"])}
    assert only_b.op.pool == "k2" and only_b.op.name == "only_b"
    with pytest.raises(ValueError, match="no process named 'zzz'"):
        dpone_assets(manifest=manifest, select=["zzz"])


def test_check_specs_have_explicit_asset_keys(ws: Workspace) -> None:
    shop, _ = _two_manifests(ws)
    (assets,) = build_dpone_assets([shop])
    check_keys = set(assets.check_keys)
    assert check_keys == {
        dg.AssetCheckKey(dg.AssetKey(["warehouse", "landing_orders"]), "dpone_committed"),
        dg.AssetCheckKey(dg.AssetKey(["command", "shop", "notify"]), "dpone_committed"),
    }
    (without,) = build_dpone_assets([shop], checks=False)
    assert not set(without.check_keys)


def test_repository_snapshot_serializes(ws: Workspace) -> None:
    shop, reporting = _two_manifests(ws)
    defs = dg.Definitions(
        assets=build_dpone_assets([shop, reporting]), resources={"dpone": DponeResource()}
    )
    text = repository_snapshot(defs, defer_snapshots=True)
    assert "landing_orders" in text and "db.example" not in text


def test_manifest_directory_expands_to_its_yml_files(ws: Workspace) -> None:
    folder = ws.root / "many"
    folder.mkdir()
    for name in ("b", "a"):
        (folder / f"{name}.yml").write_text(
            f"version: 1\nprocesses:\n  {name}_job: {{kind: command, command: ['true']}}\n"
        )
    (folder / "notes.txt").write_text("not a manifest")
    assets = build_dpone_assets([folder])
    assert [a.op.name for a in assets] == ["dpone_a", "dpone_b"]
    with pytest.raises(TypeError):
        build_dpone_assets(str(folder))  # type: ignore[arg-type]


def test_large_manifests_split_into_ops_in_run_order(ws: Workspace) -> None:
    # A chain declared backwards: t4 <- t3 <- t2 <- t1 <- t0 <- source.
    processes = {
        f"p{i}": {
            "source": {"connection": "db", "table": f"t{i - 1}" if i else "source"},
            "target": {"connection": "db", "table": f"t{i}"},
        }
        for i in reversed(range(5))
    }
    manifest = ws.write_manifest(processes, name="chain.yml", connections={"db": "sqlite:///x.db"})
    assets = build_dpone_assets([manifest], max_processes_per_op=2)
    assert [a.op.name for a in assets] == ["dpone_chain_1", "dpone_chain_2", "dpone_chain_3"]
    assert [sorted(k.path[-1] for k in a.keys) for a in assets] == [
        ["t0", "t1"],
        ["t2", "t3"],
        ["t4"],
    ]
    # Every dependency points to an earlier op, so Dagster can build the job.
    job = dg.Definitions(
        assets=assets, resources={"dpone": DponeResource()}
    ).resolve_implicit_global_asset_job_def()
    assert len(job.nodes) == 3
    with pytest.raises(ValueError):
        build_dpone_assets([manifest], max_processes_per_op=0)


def test_declared_deps_give_lineage_to_queries_and_commands(ws: Workspace) -> None:
    manifest = ws.write_manifest(
        {
            "landing": {
                "source": {"connection": "shop", "table": "orders"},
                "target": {"connection": "warehouse", "table": "landing_orders"},
            },
            "summary": {
                "source": {"connection": "warehouse", "query": "select 1 as x"},
                "target": {"connection": "warehouse", "table": "summary"},
                "deps": ["warehouse.landing_orders"],
            },
            "report": {
                "kind": "command",
                "command": ["true"],
                "deps": ["warehouse.summary", "warehouse.mart.daily"],
            },
        },
        name="deps.yml",
        connections={"shop": "sqlite:///shop.db", "warehouse": "sqlite:///warehouse.db"},
    )
    graph = dg.Definitions(
        assets=build_dpone_assets([manifest]), resources={"dpone": DponeResource()}
    ).resolve_asset_graph()
    summary = dg.AssetKey(["warehouse", "summary"])
    assert graph.get(summary).parent_keys == {dg.AssetKey(["warehouse", "landing_orders"])}
    assert graph.get(dg.AssetKey(["command", "deps", "report"])).parent_keys == {
        summary,
        dg.AssetKey(["warehouse", "mart", "daily"]),
    }


def test_code_references_point_at_the_process_line(ws: Workspace) -> None:
    shop, _ = _two_manifests(ws)
    (assets,) = build_dpone_assets([shop])
    lines = shop.read_text().splitlines()
    for spec in assets.specs:
        refs = spec.metadata["dagster/code_references"].code_references
        (ref,) = refs
        assert ref.file_path == str(shop.resolve())
        selector = spec.metadata["dpone/selector"]
        assert lines[ref.line_number - 1].strip() == f"{selector}:"


def test_two_processes_with_one_asset_key_are_refused_by_name(ws: Workspace) -> None:
    target = {"connection": "wh", "table": "orders"}
    first = ws.write_manifest(
        {"a": {"source": {"connection": "src", "table": "x"}, "target": target}},
        name="first.yml",
        connections={"src": "sqlite:///src.db", "wh": "sqlite:///wh.db"},
    )
    second = ws.write_manifest(
        {"b": {"source": {"connection": "src", "table": "y"}, "target": target}},
        name="second.yml",
        connections={"src": "sqlite:///src.db", "wh": "sqlite:///wh.db"},
    )
    with pytest.raises(dg.DagsterInvalidDefinitionError) as exc:
        build_dpone_assets([first, second])
    message = str(exc.value)
    assert "'a'" in message and "'b'" in message and "'wh/orders'" in message
    assert "get_asset_key" in message


class _Automated(DagsterDponeTranslator):
    def get_automation_condition(self, process: Any) -> Any:
        return dg.AutomationCondition.on_cron("0 2 * * *")

    def get_partitions_def(self, process: Any) -> Any:
        return dg.DailyPartitionsDefinition(start_date="2026-11-01")


def test_translator_sets_automation_conditions_and_partitions(ws: Workspace) -> None:
    manifest = ws.write_manifest({"job": {"kind": "command", "command": ["true"]}}, name="auto.yml")
    (assets,) = build_dpone_assets([manifest], translator=_Automated())
    (spec,) = assets.specs
    assert spec.automation_condition == dg.AutomationCondition.on_cron("0 2 * * *")
    assert assets.partitions_def == dg.DailyPartitionsDefinition(start_date="2026-11-01")
    result = run([assets], ws, partition_key="2026-11-03")
    assert result.success
    (md,) = materializations(result)["command/auto/job"]
    assert md["dpone/partition_key"] == "2026-11-03"
