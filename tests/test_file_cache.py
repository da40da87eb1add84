"""The parse cache never returns a stale parse: real files, real stat, real renames."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from dpone_core import file_cache
from dpone_core.errors import ManifestError
from dpone_core.file_cache import SETTLE_NS, FileCache
from dpone_core.handoff.builder import SchedulerHandoffBuilder
from dpone_core.handoff.inputs import HandoffInputs
from dpone_core.manifest import load_manifest
from dpone_core.redact import register_secret


def later() -> int:
    """A "now" long after every file of the test changed (the file counts as settled)."""
    return time.time_ns() + 10 * SETTLE_NS


def _file(tmp_path: Path, text: str = "v1") -> Path:
    path = tmp_path / "f.txt"
    path.write_text(text)
    return path


def test_an_unchanged_settled_file_is_a_hit(tmp_path: Path) -> None:
    path = _file(tmp_path)
    cache: FileCache[str] = FileCache()
    cache.put(str(path), os.stat(path), "parsed", now_ns=later())
    assert cache.get(str(path)) == "parsed"
    assert cache.get(os.path.relpath(path)) == "parsed"  # keyed by absolute path


def test_a_file_changed_moments_ago_is_never_cached(tmp_path: Path) -> None:
    """Racy timestamps: a same-size rewrite within one tick keeps the mtime."""
    path = _file(tmp_path)
    cache: FileCache[str] = FileCache()
    cache.put(str(path), os.stat(path), "parsed")  # now: the file is not settled
    assert cache.get(str(path)) is None


@pytest.mark.parametrize("change", ["rewrite", "replace", "touch", "chmod", "delete"])
def test_any_change_to_the_file_is_a_miss(tmp_path: Path, change: str) -> None:
    path = _file(tmp_path)
    cache: FileCache[str] = FileCache()
    cache.put(str(path), os.stat(path), "parsed", now_ns=later())
    time.sleep(0.02)  # past the timestamp tick, so mtime/ctime move
    if change == "rewrite":
        path.write_text("v2")  # same size
    elif change == "replace":
        other = tmp_path / "g.txt"
        other.write_text("v2")
        os.replace(other, path)
    elif change == "touch":
        os.utime(path)
    elif change == "chmod":
        path.chmod(0o600)
    else:
        path.unlink()
    assert cache.get(str(path)) is None


def test_a_changed_input_variable_is_a_miss(tmp_path: Path) -> None:
    path = _file(tmp_path)
    cache: FileCache[str] = FileCache()
    env = {"DSN": "a"}
    cache.put(str(path), os.stat(path), "parsed", ["DSN", "UNSET"], env, now_ns=later())
    assert cache.get(str(path), env) == "parsed"
    assert cache.get(str(path), {"DSN": "b"}) is None
    assert cache.get(str(path), {"DSN": "a", "UNSET": "now set"}) is None


def test_the_cache_is_bounded_least_recently_used_first(tmp_path: Path) -> None:
    cache: FileCache[int] = FileCache(max_entries=2)
    paths = []
    for i in range(3):
        path = tmp_path / f"{i}.txt"
        path.write_text(str(i))
        paths.append(path)
    cache.put(str(paths[0]), os.stat(paths[0]), 0, now_ns=later())
    cache.put(str(paths[1]), os.stat(paths[1]), 1, now_ns=later())
    assert cache.get(str(paths[0])) == 0  # 0 is now the most recent
    cache.put(str(paths[2]), os.stat(paths[2]), 2, now_ns=later())
    assert [cache.get(str(p)) for p in paths] == [0, None, 2]


MANIFEST = (
    "version: 1\nprocesses:\n  job:\n    kind: command\n"
    "    command: [echo, '${GREETING:-hello}']\n"
)


def test_load_manifest_reuses_a_settled_file_and_sees_every_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(file_cache, "SETTLE_NS", -10 * SETTLE_NS)  # every file counts as settled
    path = tmp_path / "m.yml"
    path.write_text(MANIFEST)
    first = load_manifest(path)
    assert load_manifest(str(path)) is first  # not parsed again
    monkeypatch.setenv("GREETING", "bonjour")
    changed_env = load_manifest(path)
    assert changed_env is not first
    assert changed_env.manifest.processes["job"].command == ["echo", "bonjour"]  # type: ignore[union-attr]
    time.sleep(0.02)
    path.write_text(MANIFEST.replace("echo", "printf"))
    edited = load_manifest(path)
    assert edited.manifest.processes["job"].command[0] == "printf"  # type: ignore[union-attr]
    assert edited.sha256 != first.sha256


def test_a_cached_manifest_cannot_be_changed_by_one_of_its_users(tmp_path: Path) -> None:
    path = tmp_path / "m.yml"
    path.write_text(MANIFEST)
    loaded = load_manifest(path)
    with pytest.raises(ValueError, match="frozen"):
        loaded.manifest.version = 1  # type: ignore[misc]


def _inputs(name: str = "job") -> HandoffInputs:
    return HandoffInputs(
        argv=["orchestrate", "run", "--manifest", "/m.yml", "--selector", name],
        name=name,
        start_date="2026-11-30",  # type: ignore[arg-type]
        env_refs={"WAREHOUSE_TOKEN": "referenced by the manifest"},
    )


def test_the_handoff_builder_renders_the_same_inputs_once_and_masks_new_secrets() -> None:
    builder = SchedulerHandoffBuilder()
    first = builder.build(_inputs())
    assert builder.build(_inputs()) is first
    assert builder.build(_inputs("other")) is not first
    secret = "a-secret-selector-value-9f3k"
    unmasked = builder.build(_inputs(secret))
    assert secret in unmasked.cron_command  # not registered yet: a selector, not a secret
    register_secret(secret)
    masked = builder.build(_inputs(secret))
    assert secret not in masked.cron_command  # the cache does not outlive the registry


# -- the anchor-free fast path of the alias-bomb check (dpone_core.manifest) -------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("a: " + "[" * 70 + "]" * 70, "expected at most 64 levels of nesting"),
        ("a: [" + ", ".join(["1"] * 100_001) + "]", "expected at most 100000 YAML values"),
    ],
    ids=["deep", "wide"],
)
def test_a_manifest_without_anchors_meets_the_same_limits(
    tmp_path: Path, body: str, expected: str
) -> None:
    path = tmp_path / "m.yml"
    path.write_text(f"version: 1\n{body}\n")
    with pytest.raises(ManifestError, match=expected):
        load_manifest(path)


def test_an_ampersand_in_a_value_is_not_an_anchor(tmp_path: Path) -> None:
    path = tmp_path / "m.yml"
    path.write_text(
        "version: 1\nconnections: {db: 'postgresql://h/db?a=1&b=2'}\n"
        "processes:\n  job: {kind: command, command: [echo, 'fish & chips']}\n"
    )
    assert load_manifest(path).manifest.connections["db"].endswith("&b=2")
