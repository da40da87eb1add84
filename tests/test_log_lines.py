"""A run id or key holding control characters cannot forge log lines (issue 9, item 13)."""

from __future__ import annotations

from tests.support import Workspace, recorder_command


def test_every_stderr_line_is_one_of_ours_whatever_the_run_id_holds(ws: Workspace) -> None:
    manifest = ws.write_manifest({"job": {"kind": "command", "command": recorder_command()}})
    run_id = "r1\ndpone: FORGED line\x1b[31m\r"
    code, report, err = ws.orchestrate("--manifest", str(manifest), "--run-id", run_id)
    assert code == 0, err
    assert report["run_id"] == run_id  # the id itself is kept exactly
    lines = err.splitlines()
    assert lines and all(line.startswith("dpone: ") for line in lines), lines
    assert not any(line.startswith("dpone: FORGED") for line in lines)
    assert "\x1b" not in err and "\r" not in err
    assert "r1\\ndpone: FORGED line\\x1b[31m\\r" in err


def test_an_error_line_stays_one_line(ws: Workspace) -> None:
    proc = ws.dpone("orchestrate", "run", "--manifest", "missing\nsecond line.yml")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "missing\\nsecond line.yml" in proc.stderr
