"""Small building blocks: injective names, atomic writes, redaction."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from dpone_core.durable import atomic_write_text, write_synced
from dpone_core.naming import file_safe_name
from dpone_core.redact import redact, register_secret

KEYS = ["a/b", "a_b", "a%2Fb", "../x", "..", ".", "ключ", "x" * 300, "x" * 301, "a~b", "A", "a"]


def test_names_are_injective_and_contained(tmp_path: Path) -> None:
    names = [file_safe_name(k) for k in KEYS]
    assert len(set(names)) == len(KEYS)
    for name in names:
        assert "/" not in name and name not in (".", "..") and not name.startswith(".")
        assert len(name.encode()) <= 200
        path = (tmp_path / f"{name}.lock.json").resolve()
        assert path.parent == tmp_path.resolve()
        path.write_text("x")  # the file system accepts it
    with pytest.raises(ValueError):
        file_safe_name("")


def test_atomic_write_never_shows_half_a_file(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    big_a, big_b = "a" * 200_000, "b" * 200_000
    atomic_write_text(target, big_a)
    seen: set[str] = set()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            seen.add(target.read_text()[:1] + str(len(target.read_text())))

    thread = threading.Thread(target=reader)
    thread.start()
    for i in range(50):
        atomic_write_text(target, big_b if i % 2 else big_a)
    stop.set()
    thread.join()
    assert seen <= {"a200000", "b200000"}
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_write_synced_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "e.json"
    write_synced(target, "first")
    with pytest.raises(FileExistsError):
        write_synced(target, "second")
    assert target.read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["e.json"]


def test_redaction() -> None:
    assert redact("postgresql://u:s3cr3t@h:5432/db failed") == "postgresql://u:***@h:5432/db failed"
    assert "hunter2" not in redact("host=h password=hunter2 user=u")
    token = f"tok-{os.getpid()}-value"
    register_secret(token)
    assert redact(f"echo {token}!") == "echo ***!"
