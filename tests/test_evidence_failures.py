"""An unusable output dir is invalid input found before admission; evidence that cannot be
written after the run never turns the run's exit code into 2 (issue 9, item 10)."""

from __future__ import annotations

import os
import resource
import subprocess
from pathlib import Path

import pytest

from tests.support import Workspace, recorder_command


def _manifest(ws: Workspace, *extra: str) -> Path:
    command = recorder_command("--record", str(ws.root / "record.txt"), *extra)
    return ws.write_manifest({"job": {"kind": "command", "command": command}})


@pytest.mark.parametrize("where", ["a_file", "/proc/1/evidence", "a_file/below"])
def test_an_unusable_output_dir_is_refused_before_anything_runs(ws: Workspace, where: str) -> None:
    (ws.root / "a_file").write_text("not a directory")
    manifest = _manifest(ws)
    code, report, err = ws.orchestrate(
        "--manifest", str(manifest), "--run-id", "r1", "--output-dir", where
    )
    assert code == 2, err
    assert report == {}
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "output dir" in err and where in err and "writable directory" in err
    assert ws.records() == []  # the command never ran
    assert not ws.state_dir.exists() or not any(ws.state_dir.iterdir())


def test_evidence_lost_after_the_run_keeps_the_runs_exit_code(ws: Workspace) -> None:
    """The command replaces its own output dir with a file: the report cannot be written."""
    out = ws.root / "out"
    script = f"rm -rf {out} && echo gone > {out}"
    manifest = ws.write_manifest({"job": {"kind": "command", "command": ["sh", "-c", script]}})
    code, report, err = ws.orchestrate(
        "--manifest", str(manifest), "--run-id", "r1", "--output-dir", str(out)
    )
    assert code == 0, err  # it committed; only its evidence is missing
    assert report["status"] == "committed"
    assert report["evidence_error"].startswith(f"could not write the evidence to {out}/")
    assert f"dpone: could not write the evidence to {out}/" in err and "Traceback" not in err
    assert ws.state("r1")["status"] == "committed"
    assert out.read_text() == "gone\n"


def test_a_write_cut_short_leaves_no_half_written_invocation(ws: Workspace) -> None:
    """RLIMIT_FSIZE lets the small state file through and cuts the report mid-write (EFBIG)."""
    manifest = _manifest(ws, "--echo", "x" * 3000)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (6000, 6000))

    argv = ws.argv("orchestrate", "run", "--manifest", str(manifest), "--run-id", "r1")
    proc = subprocess.run(
        [*argv, "--output-dir", "out", "--format", "json"],
        cwd=ws.root,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit,
        env={**os.environ},
    )
    assert proc.returncode == 0, proc.stderr
    assert "could not write the evidence to out/invocations/" in proc.stderr
    assert ws.state("r1")["status"] == "committed"
    invocations = ws.root / "out" / "invocations"
    leftovers = [p.name for p in invocations.iterdir()] if invocations.exists() else []
    assert leftovers == []  # neither a .tmp folder nor half an invocation
