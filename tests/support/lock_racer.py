"""A real process that contends for a lock key, for tests/test_locks.py.

Run as a script so every racer is a separate interpreter with its own POSIX
record locks (threads or forks of the test process would not be). The outcome
JSON is written as soon as the attempt is decided, so a test can wait for it
and then watch, kill or outlast the holder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dpone_core.locks import LocalRunLockManager


def _write_json(path: Path, payload: dict[str, object]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload), encoding="utf-8")
    os.replace(tmp, path)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lock-dir", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--hold", type=float, default=0.0, help="seconds to hold if acquired")
    parser.add_argument("--ttl", type=float, default=3600.0)
    parser.add_argument("--ready", help="file to create once imported and ready to race")
    parser.add_argument("--go", help="file whose appearance starts the race")
    parser.add_argument(
        "--release-on", help="if acquired, hold until this file appears (--hold caps the wait)"
    )
    parser.add_argument(
        "--exit-without-release",
        action="store_true",
        help="leave the holder record behind, as a crash would",
    )
    args = parser.parse_args()

    manager = LocalRunLockManager(args.lock_dir, ttl_seconds=args.ttl)
    if args.ready:
        Path(args.ready).touch()
    if args.go:
        go = Path(args.go)
        deadline = time.monotonic() + 30
        while not go.exists():
            if time.monotonic() > deadline:
                return 3
            time.sleep(0.0005)

    attempt = manager.acquire(args.key, run_id=args.run_id)
    _write_json(
        Path(args.out),
        {
            "pid": os.getpid(),
            "decided_at": time.time(),
            "acquired": attempt.acquired,
            "blocker": attempt.blocker,
            "message": attempt.message,
            "stale_lock_replaced": attempt.stale_lock_replaced,
            "holder": attempt.holder.model_dump() if attempt.holder else None,
            "replaced_holder": (
                attempt.replaced_holder.model_dump() if attempt.replaced_holder else None
            ),
        },
    )
    if attempt.lock is None:
        return 0
    if args.release_on:
        release_on = Path(args.release_on)
        deadline = time.monotonic() + args.hold
        while not release_on.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
    else:
        time.sleep(args.hold)
    if args.exit_without_release:
        os._exit(0)
    attempt.lock.release()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
