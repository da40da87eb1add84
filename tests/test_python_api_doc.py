"""The Python API example of docs/orchestration.md runs as written (against the demo shop)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_documented_python_api_example_runs(tmp_path: Path) -> None:
    doc = (ROOT / "docs" / "orchestration.md").read_text(encoding="utf-8")
    section = doc.split("## Python API", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "seed_shop.py"), "--db", "data/shop.db"],
        check=True,
        cwd=tmp_path,
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DPONE_ORCHESTRATION_DSN", None)
    done = subprocess.run(
        [sys.executable, "-c", code.group(1)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True committed []"
    assert (tmp_path / ".dpone/orchestration/orders/orchestrated_run.json").is_file()
    assert (tmp_path / ".dpone/orchestration-state/orders_2026_06_05.job_state.json").is_file()
