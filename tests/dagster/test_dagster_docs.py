"""docs/dagster.md stays true to the code: every metadata key and resource field is listed.

(The metadata tables are checked key by key in test_dagster_metadata.py.)"""

from __future__ import annotations

import re

from dagster_support import REPO

from dpone_dagster import METADATA_KEYS, DponeResource

DOC = (REPO / "docs" / "dagster.md").read_text()


def _table_keys(heading: str) -> set[str]:
    section = DOC.split(heading, 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE))


def test_every_metadata_key_is_documented_and_nothing_else() -> None:
    assert _table_keys("## Materialization metadata") == set(METADATA_KEYS)


def test_every_resource_field_is_documented() -> None:
    assert _table_keys("## The resource") == set(DponeResource.model_fields)
