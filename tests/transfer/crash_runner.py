"""Run one transfer in a real process, for the kill -9 tests (``DPONE_TEST_CRASH_AT``).

Usage: python crash_runner.py '<json spec>'; prints the result JSON when it survives.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from transfer_support import context, process

from dpone_core.executor.transfer import run_transfer


def main() -> int:
    spec = json.loads(sys.argv[1])
    result = run_transfer(
        process(spec["source"], spec["target"], spec["mode"], spec["key"], spec["cursor"]),
        context(spec["connections"], run_id=spec["run_id"], generation=spec["generation"]),
    )
    print(json.dumps(result.model_dump(mode="json")))
    return 0 if result.status == "passed" else 1


if __name__ == "__main__":
    raise SystemExit(main())
