"""Runs made outside Dagster, reported as materializations: the dpone observation sensor.

cron, Airflow, Kubernetes and people at the CLI run ``dpone orchestrate run``
against the same job-state store as Dagster. The sensor built by
:func:`build_dpone_observation_sensor` reads that store's change feed
(:meth:`~dpone_core.backends.protocol.JobStateStore.changed_since`) and reports
each **committed** run it finds as an ``AssetMaterialization`` of the matching
asset, with the ``dpone/*`` metadata a Dagster run's materialization carries
(built from the run's committed evidence report when it can be read, else
from the job state alone). So an asset's history is the same whichever
scheduler ran it. docs/dagster-observe.md is the user's guide.

How a state is matched to an asset and a partition, and how runs Dagster
made itself are told apart, is :mod:`dpone_dagster.observed_runs`. Here:

* **the cursor**: the store's change-feed cursor, wrapped in the sensor's own
  (``{"v": 1, "store": ...}``); one it cannot use fails the tick with how to
  reset it, rather than silently reporting the whole history again or
  skipping it;
* **exactly once**: the cursor moves past each state once; a committed
  attempt is also checked against the asset's latest materializations before
  it is reported, so a repeated tick (a daemon that died before storing its
  cursor, a reset cursor) does not report it twice; runs this Dagster
  instance made (the scheduler the job state records) are never reported:
  Dagster recorded them itself;
* **bounded ticks**: at most ``max_states_per_tick`` state changes are read per
  tick; a long history is reported over several ticks.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from dpone_core.errors import DponeUsageError
from dpone_core.job_state import JobState
from dpone_core.lifecycle import JobStatus
from dpone_core.redact import redact
from dpone_dagster.metadata import report_metadata
from dpone_dagster.observed_runs import (
    AssetIndex,
    ObservedAsset,
    already_recorded,
    committed_report,
    made_here,
    partition_of,
)
from dpone_dagster.partitions import PartitionWindow
from dpone_dagster.resource import DponeResource

__all__ = ["DEFAULT_SENSOR_NAME", "build_dpone_observation_sensor"]

DEFAULT_SENSOR_NAME = "dpone_observation_sensor"

_CURSOR_VERSION = 1


# -- the sensor ----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Settings:
    name: str
    resource_key: str
    resource: DponeResource | None
    max_states_per_tick: int
    page_size: int


class _Tick:
    """One evaluation: read the feed from the cursor, turn committed runs into events."""

    def __init__(
        self, context: dg.SensorEvaluationContext, index: AssetIndex, settings: _Settings
    ) -> None:
        self.context = context
        self.index = index
        self.settings = settings
        self.resource: DponeResource = settings.resource or getattr(
            context.resources, settings.resource_key
        )
        self.store = self.resource.job_state_store()
        self.events: list[dg.AssetMaterialization] = []
        self._reported: set[tuple[str, int, int]] = set()

    def run(self) -> dg.SensorResult:
        cursor = _read_cursor(self.context.cursor, self.settings.name)
        read = 0
        while True:
            size = min(self.settings.page_size, self.settings.max_states_per_tick - read)
            try:
                page = self.store.changed_since(cursor, size)
            except DponeUsageError as exc:
                raise DponeUsageError(_reset_hint(str(exc), self.settings.name)) from None
            for unreadable in page.unreadable:
                self.context.log.warning(
                    redact(f"dpone: skipped {unreadable.location}: {unreadable.reason}")
                )
            for state in page.states:
                self._consider(state)
            cursor = page.cursor
            read += len(page.states) + len(page.unreadable)
            if not page.more or read >= self.settings.max_states_per_tick:
                break
        new_cursor = json.dumps({"v": _CURSOR_VERSION, "store": cursor})
        if not self.events:
            return dg.SensorResult(
                skip_reason=f"no new run committed outside Dagster ({read} state changes read)",
                cursor=new_cursor,
            )
        self.context.log.info(
            f"dpone: {len(self.events)} run(s) committed outside Dagster reported "
            f"({read} state changes read)"
        )
        return dg.SensorResult(asset_events=self.events, cursor=new_cursor)

    def _consider(self, state: JobState) -> None:
        if state.status is not JobStatus.COMMITTED:
            return  # failed, blocked or still running: not a materialization
        asset, why = self.index.match(state)
        if asset is None:
            log = self.context.log.warning if "several" in why else self.context.log.debug
            log(redact(f"dpone: run {state.run_id!r} not reported: {why}"))
            return
        window, why = partition_of(asset, state.run_id)
        if why:
            self.context.log.warning(
                redact(
                    f"dpone: run {state.run_id!r} of {asset.key.to_user_string()} not "
                    f"reported: {why}"
                )
            )
            return
        identity = (state.run_id, state.attempt, state.generation)
        instance = self.context.instance
        partition = window.key if window is not None else None
        if (
            identity in self._reported
            or made_here(instance, state, asset)
            or already_recorded(instance, asset.key, partition, state)
        ):
            return
        self._reported.add(identity)
        self.events.append(self._materialization(state, asset, window))

    def _materialization(
        self, state: JobState, asset: ObservedAsset, window: PartitionWindow | None
    ) -> dg.AssetMaterialization:
        location = self.store.location(state.run_id)
        report = committed_report(state, location, self.resource.output_root)
        self.context.log.info(
            redact(
                f"dpone: {asset.key.to_user_string()}"
                + (f" partition {window.key}" if window else "")
                + f": run {state.run_id!r} (attempt {state.attempt}) committed outside Dagster"
            )
        )
        return dg.AssetMaterialization(
            asset_key=asset.key,
            partition=window.key if window is not None else None,
            metadata=report_metadata(report, window=window),
            description=redact(
                f"dpone run {state.run_id} committed outside Dagster (job state: {location}); "
                f"reported by the sensor {self.settings.name}"
            ),
        )


def _read_cursor(text: str | None, name: str) -> str | None:
    """The store's cursor inside the sensor's (None: from the beginning)."""
    if not text:
        return None
    try:
        data = json.loads(text)
        if data.get("v") != _CURSOR_VERSION:
            raise ValueError(data.get("v"))
        store = data["store"]
        if store is not None and not isinstance(store, str):
            raise ValueError(store)
        return store
    except (ValueError, AttributeError, KeyError, TypeError):
        raise DponeUsageError(
            _reset_hint(f"the cursor {text[:60]!r} is not a dpone sensor cursor", name)
        ) from None


def _reset_hint(problem: str, name: str) -> str:
    return (
        f"{problem}. To report the job-state store's runs from the beginning, reset the "
        f"sensor's cursor (`dagster sensor cursor --delete {name}`, or in the UI); runs "
        "already reported are recognised and not reported twice"
    )


def build_dpone_observation_sensor(
    assets: Sequence[dg.AssetsDefinition | dg.AssetSpec],
    *,
    resource: DponeResource | None = None,
    resource_key: str = "dpone",
    name: str = DEFAULT_SENSOR_NAME,
    minimum_interval_seconds: int = 30,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
    max_states_per_tick: int = 1000,
    page_size: int = 200,
    description: str | None = None,
) -> dg.SensorDefinition:
    """A sensor reporting runs committed outside Dagster as materializations of ``assets``.

    Args:
        assets: the dpone assets (or specs) to report on; other assets are ignored.
        resource: where the job states and evidence live; default: the
            :class:`~dpone_dagster.resource.DponeResource` under ``resource_key``
            in the Definitions (the one the assets use).
        name, minimum_interval_seconds, default_status, description: the sensor's.
            ``default_status`` is STOPPED: turning it on reports the store's
            history, which a deployment should choose to do.
        max_states_per_tick: state changes read per evaluation at most (a long
            history is reported over several ticks); ``page_size``: per read.
    """
    if max_states_per_tick < 1 or page_size < 1:
        raise ValueError("max_states_per_tick and page_size must be at least 1")
    index = AssetIndex(assets)
    settings = _Settings(name, resource_key, resource, max_states_per_tick, page_size)

    @dg.sensor(
        name=name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=description
        or "Reports dpone runs committed outside Dagster (cron, Airflow, Kubernetes, the CLI) "
        "as materializations, read from the job-state store.",
        required_resource_keys=None if resource is not None else {resource_key},
    )
    def _sensor(context: dg.SensorEvaluationContext, **_resources: Any) -> dg.SensorResult:
        # Invoked directly (tests), Dagster passes the required resources as keywords as
        # well; the daemon does not. Either way they are read from the context.
        return _Tick(context, index, settings).run()

    return _sensor
