"""Send events through the openlineage-python client's transports, with the spool in front.

**Configuration is the client's**: ``OPENLINEAGE_URL`` (+ ``OPENLINEAGE_ENDPOINT``,
``OPENLINEAGE_API_KEY``) for HTTP, an ``openlineage.yml`` (``OPENLINEAGE_CONFIG``,
the working directory, ``~/.openlineage/``) or ``OPENLINEAGE__TRANSPORT__*``
variables for any transport it offers (``http``, ``file``, ``console``, ``kafka``,
``composite``...), and ``OPENLINEAGE_DISABLED=true`` to turn it off. dpone adds
only ``--openlineage-config PATH``, which hands that file's content to the client
as its configuration. :func:`lineage_configured` tells, without importing the
client, whether any of these is present (``orchestrate run`` emits only then).

**Delivery** (:func:`deliver`): each event is first enriched exactly as
``OpenLineageClient.emit`` would (environment-variable facets, configured tags,
source-code location, dataset reduction, filters), then, under the spool's lock,
spooled events are sent first and new ones after them. The first transport
error stops sending: that event and every later one are kept in the spool, the
error is returned (never raised), and the next delivery or ``dpone ops
lineage-flush`` sends them, in order. A lineage server that is down therefore
never fails a run.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from dpone_core.ops.errors import OpsInputError
from dpone_core.ops.lineage_spool import LineageSpool
from dpone_core.redact import redact

if TYPE_CHECKING:
    from openlineage.client import OpenLineageClient
    from openlineage.client.event_v2 import RunEvent

__all__ = ["Delivery", "deliver", "flush", "lineage_configured", "open_client"]

_CONSOLE_LOGGER = "openlineage.client.transport.console"


@dataclass
class Delivery:
    """What one delivery did (events counted one by one)."""

    #: The client's transport kind (``http``, ``file``, ``console``...), None when none is set.
    transport: str | None
    spool_dir: str
    #: New events the transport took.
    delivered: int = 0
    #: Earlier spooled events it took now.
    flushed: int = 0
    #: New events kept in the spool.
    spooled: int = 0
    #: Events waiting in the spool afterwards.
    waiting: int = 0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def lineage_configured(
    environ: Mapping[str, str], *, cwd: Path, home: Path, config_path: str | None = None
) -> bool:
    """Whether the client would find a transport (the client's own places, in its order)."""
    if (environ.get("OPENLINEAGE_DISABLED") or "").strip().lower() == "true":
        return False
    if config_path or environ.get("OPENLINEAGE_URL"):
        return True
    if any(key.startswith("OPENLINEAGE__TRANSPORT") for key in environ):
        return True
    candidates = [environ.get("OPENLINEAGE_CONFIG"), cwd / "openlineage.yml"]
    candidates.append(home / ".openlineage" / "openlineage.yml")
    return any(path and os.path.isfile(path) for path in candidates)


def open_client(config_path: str | None = None) -> OpenLineageClient:
    """The client as its configuration says (plus ``config_path``'s content, if given)."""
    from openlineage.client import OpenLineageClient

    config: dict[str, Any] | None = None
    if config_path is not None:
        config = _read_config(config_path)
    try:
        return OpenLineageClient(config=config)
    except Exception as exc:
        raise OpsInputError(
            config_path or "OpenLineage configuration",
            "transport",
            f"the openlineage client refused it: {type(exc).__name__}: {exc}",
        ) from None


def _read_config(path: str) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise OpsInputError(
            "--openlineage-config", path, f"cannot read it: {exc.strerror}"
        ) from None
    except yaml.YAMLError as exc:
        raise OpsInputError("--openlineage-config", path, f"expected YAML: {exc}") from None
    if not isinstance(data, dict):
        raise OpsInputError("--openlineage-config", path, "expected a mapping (transport: ...)")
    return cast("dict[str, Any]", data)


def _prepare(client: OpenLineageClient, event: RunEvent) -> dict[str, Any] | None:
    """The event as ``client.emit`` would send it (None when a configured filter drops it)."""
    from openlineage.client.serde import Serde

    from dpone_core.ops.entry import redact_strings

    prepared: Any = client.add_environment_facets(event)
    prepared = client.update_event_tags_facets(prepared)
    prepared = client.add_source_code_location_facet(prepared)
    if client.config.dataset.reducing_enabled:
        prepared = client.reduce_datasets(prepared)
    if client.filter_event(prepared) is None:
        return None
    cleaned: dict[str, Any] = redact_strings(Serde.to_dict(prepared))
    return cleaned


@contextmanager
def _console_to_stderr() -> Iterator[None]:
    """The client's console transport logs at INFO: show it on stderr (stdout is the report)."""
    logger = logging.getLogger(_CONSOLE_LOGGER)
    handler = logging.StreamHandler(sys.stderr)
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def _send(client: OpenLineageClient, event: dict[str, Any]) -> str | None:
    """Hand one prepared event to the transport; the error line, or None when it took it."""
    try:
        client.transport.emit(cast("Any", event))
    except Exception as exc:
        return redact(f"{client.transport.kind} transport: {type(exc).__name__}: {exc}")
    return None


def _disabled(client: OpenLineageClient) -> bool:
    return str(client.transport.kind) == "noop"


def deliver(
    events: Sequence[RunEvent], *, spool: LineageSpool, client: OpenLineageClient
) -> Delivery:
    """Send spooled events, then ``events``; keep whatever the transport did not take."""
    report = Delivery(transport=str(client.transport.kind), spool_dir=str(spool.directory))
    if _disabled(client):
        return report
    prepared = [p for p in (_prepare(client, e) for e in events) if p is not None]
    with spool.delivering() as locked, _console_to_stderr():
        if not locked:
            report.error = f"the spool {spool.directory} is locked by another delivery"
        else:
            _flush_pending(client, spool, report)
        for event in prepared:
            if report.error is None:
                report.error = _send(client, event)
                if report.error is None:
                    report.delivered += 1
                    continue
            spool.keep(event)
            report.spooled += 1
        report.waiting = len(spool.pending())
    return report


def _flush_pending(client: OpenLineageClient, spool: LineageSpool, report: Delivery) -> None:
    for spooled in spool.pending():
        report.error = _send(client, spooled.event)
        if report.error is not None:
            return
        spool.remove(spooled)
        report.flushed += 1


def flush(*, spool: LineageSpool, client: OpenLineageClient) -> Delivery:
    """Send the spooled events, oldest first, until the transport refuses one."""
    return deliver([], spool=spool, client=client)
