"""Delivery through the OpenLineage client's transports: a real receiver on 127.0.0.1, one that
is down (events spooled, the run still exits 0, sent later in order), a file transport."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.lineage_server import LineageServer, refused_url
from tests.support.openlineage_spec import validate_run_event
from tests.support.workspace import Workspace

NO_RETRY = json.dumps({"total": 0, "connect": 0, "read": 0})


def http_env(url: str) -> dict[str, str]:
    """An HTTP transport as OPENLINEAGE__ variables (the client's convention), no retries."""
    return {
        "OPENLINEAGE__TRANSPORT__TYPE": "http",
        "OPENLINEAGE__TRANSPORT__URL": url,
        "OPENLINEAGE__TRANSPORT__RETRY": NO_RETRY,
    }


def register(ws: Workspace, selector: str = "orders", **env: str) -> dict[str, Any]:
    code, report, err = ws.orchestrate(
        "--manifest", "shop.yml", "--selector", selector, "--registry", "reg", "--lineage", "off"
    )
    assert code == 0, err
    entry = next((ws.root / "reg").glob(f"*{selector}*__run_registry.json"))
    return {"report": report, "entry": str(entry)}


def spooled(ws: Workspace) -> list[dict[str, Any]]:
    spool = ws.root / ".dpone" / "lineage-spool"
    return [json.loads(p.read_text()) for p in sorted(spool.glob("*.json"))]


def test_events_reach_a_lineage_server_in_order(shop: Workspace) -> None:
    run = register(shop)
    with LineageServer() as server:
        proc = shop.dpone(
            "ops",
            "lineage-export",
            "--run-registry-entry",
            run["entry"],
            "--format",
            "json",
            env={"OPENLINEAGE_URL": server.url},
        )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["delivery"]["delivered"] == 2 and out["delivery"]["transport"] == "http"
    assert [e["eventType"] for e in server.events] == ["START", "COMPLETE"]
    assert server.paths == ["/api/v1/lineage"] * 2
    assert {e["run"]["runId"] for e in server.events} == {out["openlineage_run_id"]}
    for event in server.events:
        validate_run_event(event)
    assert spooled(shop) == []


def test_a_server_that_is_down_keeps_the_events_and_they_are_sent_later(shop: Workspace) -> None:
    run = register(shop)
    url, port = refused_url()
    proc = shop.dpone(
        "ops",
        "lineage-export",
        "--run-registry-entry",
        run["entry"],
        "--format",
        "json",
        env=http_env(url),
    )
    assert proc.returncode == 0, proc.stderr
    assert "lineage not delivered" in proc.stderr and "2 event(s) kept" in proc.stderr
    delivery = json.loads(proc.stdout)["delivery"]
    assert (delivery["delivered"], delivery["spooled"], delivery["waiting"]) == (0, 2, 2)
    kept = spooled(shop)
    assert [e["eventType"] for e in kept] == ["START", "COMPLETE"]
    with LineageServer(port) as server:
        flushed = shop.dpone("ops", "lineage-flush", "--format", "json", env=http_env(url))
    assert flushed.returncode == 0, flushed.stderr
    assert json.loads(flushed.stdout)["flushed"] == 2
    assert server.events == kept
    assert spooled(shop) == []


def test_orchestrate_run_emits_by_itself_and_a_down_server_never_fails_it(shop: Workspace) -> None:
    url, port = refused_url()
    code, report, err = shop.orchestrate(
        "--manifest", "shop.yml", "--selector", "orders", "--registry", "reg", env=http_env(url)
    )
    assert code == 0 and report["status"] == "committed", err
    assert "registered" in err and "lineage not delivered" in err
    assert [e["job"]["name"] for e in spooled(shop)] == ["shop.orders", "shop.orders"]
    # the next run delivers: the spooled events first, then its own, each run in order
    with LineageServer(port) as server:
        code, _, err = shop.orchestrate(
            "--manifest", "shop.yml", "--selector", "report", env=http_env(url)
        )
    assert code == 0, err
    assert "lineage: 2 event(s) sent via http (and 2 spooled earlier)" in err
    assert [(e["job"]["name"], e["eventType"]) for e in server.events] == [
        ("shop.orders", "START"),
        ("shop.orders", "COMPLETE"),
        ("shop.report", "START"),
        ("shop.report", "COMPLETE"),
    ]
    for event in server.events:
        validate_run_event(event)
    assert spooled(shop) == []


def test_no_configuration_or_disabled_means_no_emission(shop: Workspace) -> None:
    code, _, err = shop.orchestrate("--manifest", "shop.yml", "--selector", "orders")
    assert code == 0 and "lineage" not in err
    url, _ = refused_url()
    env = {**http_env(url), "OPENLINEAGE_DISABLED": "true"}
    code, _, err = shop.orchestrate("--manifest", "shop.yml", "--selector", "report", env=env)
    assert code == 0 and "lineage" not in err
    assert not (shop.root / ".dpone" / "lineage-spool").exists()


def test_a_file_transport_from_openlineage_yml(shop: Workspace) -> None:
    run = register(shop)
    events_file = shop.root / "events.jsonl"
    (shop.root / "openlineage.yml").write_text(
        f"transport:\n  type: file\n  log_file_path: {events_file}\n  append: true\n"
    )
    proc = shop.dpone("ops", "lineage-export", "--run-registry-entry", run["entry"])
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in events_file.read_text().splitlines()]
    assert [e["eventType"] for e in lines] == ["START", "COMPLETE"]
    for event in lines:
        validate_run_event(event)
    assert "transport: file" in proc.stdout


def test_no_emit_only_prints(shop: Workspace, tmp_path: Path) -> None:
    run = register(shop)
    url, _ = refused_url()
    proc = shop.dpone(
        "ops",
        "lineage-export",
        "--run-registry-entry",
        run["entry"],
        "--no-emit",
        "--format",
        "json",
        env=http_env(url),
    )
    assert proc.returncode == 0 and json.loads(proc.stdout)["delivery"] is None
    assert spooled(shop) == []
