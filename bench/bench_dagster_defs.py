"""Dagster definitions benchmark (issue 4): build + serialize the repository snapshot.

What a code server does when the webserver or daemon (re)loads a code location:
build the ``Definitions`` and send ``serialize_value(RepositorySnap.from_def(repo,
defer_snapshots=True))``. Measured for dpone's ``build_dpone_assets`` over N
manifest processes and, side by side in the same run, for ``@sling_assets`` over
Sling replication configs of the same shapes (same stream count per config, same
source/target/strategy per stream):

* ``many``: 20 processes per manifest; 1,000 = 50 manifests, 3,000 = 150 manifests;
* ``wide``: 50 manifests; 1,000 = 20 per manifest, 3,000 = 60 per manifest;
* ``one``: a single manifest of 1,000 or 3,000 processes.

Goals: dpone at most 1.0x Sling at 1,000, and linear growth (3,000 within 3.5x of
1,000). Every measurement runs in a fresh interpreter (the best of ``--runs``), so
imports and caches never leak between them; times exclude the imports.

``dagster-sling`` is not a project dependency: put it in a throwaway virtualenv
and pass its interpreter (same Dagster version as the project)::

    python3 -m venv /tmp/dpone-bench-sling
    /tmp/dpone-bench-sling/bin/pip install "dagster-sling==0.29.*"   # pins dagster 1.13
    .venv/bin/python bench/bench_dagster_defs.py --sling-python /tmp/dpone-bench-sling/bin/python

Without it, only the dpone column is printed. (No ``from __future__ import
annotations``: Dagster reads the Sling function's annotations as objects.)
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SHAPES: dict[str, dict[int, tuple[int, int]]] = {
    # name -> processes -> (manifests, processes per manifest)
    "many": {1000: (50, 20), 3000: (150, 20)},
    "wide": {1000: (50, 20), 3000: (50, 60)},
    "one": {1000: (1, 1000), 3000: (1, 3000)},
}
#: ``--quick`` (bench/run_all.py's CI smoke): the same shapes at 1/50 of the size.
QUICK_SHAPES: dict[str, dict[int, tuple[int, int]]] = {
    "many": {20: (1, 20), 60: (3, 20)},
    "wide": {20: (1, 20), 60: (1, 60)},
    "one": {20: (1, 20), 60: (1, 60)},
}
DEFAULT_SLING_PYTHON = "/tmp/dpone-bench-sling/bin/python"


# --------------------------------------------------------------------------- inputs


def _write_dpone(root: Path, manifests: int, per: int) -> list[Path]:
    """Transfers on two connections; every other process reads an earlier one's target,
    so the asset graph has lineage edges within and across manifests."""
    paths = []
    n = 0
    for m in range(manifests):
        lines = [
            "version: 1",
            "connections:",
            "  shop: sqlite:///shop.db",
            "  warehouse: ${BENCH_WAREHOUSE_URL:-sqlite:///warehouse.db}",
            "processes:",
        ]
        for _ in range(per):
            if n % 2 and n > 1:
                source = f"{{connection: warehouse, table: landing_t{n - 1:05d}}}"
            else:
                source = f"{{connection: shop, table: t{n:05d}}}"
            lines += [
                f"  p{n:05d}:",
                f"    description: table {n} into the landing zone",
                f"    source: {source}",
                f"    target: {{connection: warehouse, table: landing_t{n:05d}}}",
                "    strategy: {mode: merge, key: [id], cursor: updated_at}",
            ]
            n += 1
        path = root / f"m{m:03d}.yml"
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths


def _write_sling(root: Path, manifests: int, per: int) -> list[Path]:
    """The same streams as Sling replication configs (one config per manifest)."""
    paths = []
    n = 0
    for m in range(manifests):
        lines = [
            "source: SHOP",
            "target: WAREHOUSE",
            "defaults:",
            "  mode: incremental",
            "  primary_key: [id]",
            "  update_key: updated_at",
            "streams:",
        ]
        for _ in range(per):
            lines += [
                f"  public.t{n:05d}:",
                f"    object: landing.t{n:05d}",
                "    mode: incremental",
                "    primary_key: [id]",
                "    update_key: updated_at",
            ]
            n += 1
        path = root / f"r{m:03d}.yaml"
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- workers


def _snapshot(defs: Any) -> tuple[float, int]:
    from dagster import serialize_value
    from dagster._core.remote_representation.external_data import RepositorySnap

    start = time.perf_counter()
    repo = defs.get_repository_def()
    text = serialize_value(RepositorySnap.from_def(repo, defer_snapshots=True))
    return time.perf_counter() - start, len(text)


def _worker_dpone(paths: list[str]) -> dict[str, Any]:
    import dagster as dg

    from dpone_dagster import DponeResource, build_dpone_assets

    start = time.perf_counter()
    defs = dg.Definitions(assets=build_dpone_assets(paths), resources={"dpone": DponeResource()})
    build = time.perf_counter() - start
    snap, size = _snapshot(defs)
    return {"build": build, "snapshot": snap, "bytes": size}


def _worker_sling(paths: list[str]) -> dict[str, Any]:
    import dagster as dg
    from dagster_sling import SlingResource, sling_assets

    start = time.perf_counter()
    assets = []
    for index, path in enumerate(paths):

        @sling_assets(replication_config=path, name=f"sling_{index:03d}")
        def _assets(context: dg.AssetExecutionContext, sling: SlingResource) -> Any:
            yield from sling.replicate(context=context)

        assets.append(_assets)
    defs = dg.Definitions(assets=assets, resources={"sling": SlingResource(connections=[])})
    build = time.perf_counter() - start
    snap, size = _snapshot(defs)
    return {"build": build, "snapshot": snap, "bytes": size}


# --------------------------------------------------------------------------- driver


def _measure(python: str, kind: str, paths: list[Path], runs: int) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        proc = subprocess.run(
            [python, __file__, "--worker", kind, *map(str, paths)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{kind} worker failed:\n{proc.stderr[-3000:]}")
        samples.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    # Best of N: on a shared machine noise only ever adds time.
    total = min(s["build"] + s["snapshot"] for s in samples)
    build = min(s["build"] for s in samples)
    return {"total": total, "build": build, "bytes": samples[0]["bytes"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh interpreters per cell (best of)")
    parser.add_argument("--sling-python", default=None, help="interpreter with dagster-sling")
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated shapes")
    parser.add_argument("--dpone-only", action="store_true", help="skip the Sling column")
    parser.add_argument("--quick", action="store_true", help="20 and 60 processes (smoke)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        worker = _worker_dpone if args.worker == "dpone" else _worker_sling
        print(json.dumps(worker(args.paths)))
        return

    shapes = QUICK_SHAPES if args.quick else SHAPES
    sling_python = args.sling_python
    if args.dpone_only:
        sling_python = None
    elif sling_python is None and Path(DEFAULT_SLING_PYTHON).exists():
        sling_python = DEFAULT_SLING_PYTHON
    if sling_python is None and not args.dpone_only:
        print("dagster-sling interpreter not found: printing dpone only (see --help)\n")

    print(
        f"{'shape':<6} {'procs':>6} {'layout':>9} | {'dpone s':>8} {'sling s':>8} "
        f"{'dpone/sling':>11} | {'build s':>7} {'build s':>7} | {'dpone MB':>8} {'sling MB':>8}"
    )
    print(f"{'':<24} | {'(build + snapshot + serialize)':<30} | {'dpone':>7} {'sling':>7} |")
    results: dict[tuple[str, int], dict[str, Any]] = {}
    for shape in args.shapes.split(","):
        for procs, (manifests, per) in shapes[shape].items():
            with tempfile.TemporaryDirectory() as tmp:
                root = Path(tmp)
                dpone = _measure(
                    sys.executable, "dpone", _write_dpone(root, manifests, per), args.runs
                )
                sling = (
                    _measure(sling_python, "sling", _write_sling(root, manifests, per), args.runs)
                    if sling_python
                    else None
                )
            results[(shape, procs)] = {"dpone": dpone, "sling": sling}
            ratio = f"{dpone['total'] / sling['total']:.2f}x" if sling else "-"
            print(
                f"{shape:<6} {procs:>6} {f'{manifests}x{per}':>9} | {dpone['total']:>8.2f} "
                f"{(sling['total'] if sling else float('nan')):>8.2f} {ratio:>11} | "
                f"{dpone['build']:>7.2f} {(sling['build'] if sling else float('nan')):>7.2f} | "
                f"{dpone['bytes'] / 1e6:>8.2f} "
                f"{(sling['bytes'] / 1e6 if sling else float('nan')):>8.2f}",
                flush=True,
            )
    print()
    for shape in args.shapes.split(","):
        low, high = sorted(shapes[shape])
        small, large = results[(shape, low)], results[(shape, high)]
        growth = large["dpone"]["total"] / small["dpone"]["total"]
        line = f"{shape}: {high:,} / {low:,} processes: dpone {growth:.2f}x"
        if small["sling"] and large["sling"]:
            line += f", sling {large['sling']['total'] / small['sling']['total']:.2f}x"
        print(line + " (linear = 3.0x; goal for dpone <= 3.5x)")
    print(
        "\nbuild = load the manifests/configs and construct Definitions (the integration's "
        "own work);\nthe rest is Dagster resolving the repository and serializing its snapshot."
    )


if __name__ == "__main__":
    main()
