"""The crontab line of a real `dpone orchestrate run`, run the way cron runs it.

cron hands the command part of the line to ``/bin/sh -c`` after its own ``%``
rule, with almost no environment (``PATH=/usr/bin:/bin``), from the user's home
directory, once per firing. Each firing here is one day (or one quarter of an
hour) under a faked clock: each must commit its own logical run, under the one
lock key of the process, with its evidence next to the first run's, and its job
state must record cron as the scheduler that ran it.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from dpone_core.naming import file_safe_name
from tests.support import recorder_command

from .conftest import (
    MINIMAL_PATH,
    CronEntry,
    Project,
    cron_command_of,
    day,
    run_like_cron,
    who,
)

# -- the cron simulation itself -------------------------------------------------------------


def test_cron_splits_schedule_command_and_stdin() -> None:
    entry = cron_command_of("0 2 * * *\tdate +\\%F \\\\%x 100\\% done%line one%line \\% two\n")
    assert entry.schedule == ("0", "2", "*", "*", "*")
    # \% is a percent sign; an escaped backslash does not escape the % after it.
    assert entry.command == "date +%F \\\\"
    assert entry.stdin == "x 100% done\nline one\nline % two"


def test_cron_keeps_other_backslashes_and_blanks_inside_the_command() -> None:
    entry = cron_command_of("*/15   1-3 *  * 1,5    echo 'a\\%b'  \\x \\")
    assert entry == CronEntry(("*/15", "1-3", "*", "*", "1,5"), "echo 'a%b'  \\x \\", None)


def test_cron_macro_schedule_and_a_leading_percent() -> None:
    assert cron_command_of("@daily  run it") == CronEntry(("@daily",), "run it", None)
    assert cron_command_of("0 0 * * * %x%") == CronEntry(("0", "0", "*", "*", "*"), "", "x\n")


@pytest.mark.parametrize("line", ["0 2 * * *", "0 2 * *   ", "@daily", "0 2 * * * a\nb"])
def test_cron_refuses_a_line_without_exactly_one_command(line: str) -> None:
    with pytest.raises(ValueError):
        cron_command_of(line)


def test_cron_simulation_has_the_clock_directory_and_environment_of_cron(tmp_path: Path) -> None:
    out = run_like_cron(
        r"0 2 * * * date -u +\%FT\%H:\%M; pwd; env; cat",
        home=tmp_path,
        at_utc=day("2026-11-30 02:00"),
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    # libfaketime 0.9.10 makes `date -u` print local time: on a host whose zone is not UTC,
    # this fails, and the simulation would give dpone the wrong logical date.
    assert lines[0] == "2026-11-30T02:00", "date -u under faketime is not the faked UTC time"
    assert lines[1] == str(tmp_path)
    names = {line.split("=", 1)[0] for line in lines[2:]}
    faketime_own = {"LD_PRELOAD", "FAKETIME", "FAKETIME_FMT", "FAKETIME_SHARED"}
    shell_own = {"PWD", "SHLVL", "_", "OLDPWD"}
    assert names - faketime_own - shell_own == {"HOME", "LOGNAME", "SHELL", "PATH"}
    assert f"PATH={MINIMAL_PATH}" in lines and f"HOME={tmp_path}" in lines


# -- dpone's crontab line -------------------------------------------------------------------


def _manifest(project: Project, process: str = "job") -> None:
    project.write_manifest(
        {process: {"kind": "command", "command": recorder_command("--record", "record.txt")}}
    )


def _run_ids(project: Project) -> list[str]:
    return [record[0] for record in project.records()]


def _committed_under_one_key(project: Project, run_ids: list[str], key: str) -> None:
    """Every run id's job state (a file of its own) committed, locked under ``key``, by cron."""
    for run_id in run_ids:
        state = project.state(run_id)
        assert (state["run_id"], state["status"], state["lock_key"]) == (run_id, "committed", key)
        assert state["scheduler"] == who("cron"), run_id


def _evidence_of(project: Project, run_id: str) -> dict[str, Any]:
    path = project.evidence(run_id)
    assert path.is_file(), f"no evidence for {run_id} at {path}"
    report: dict[str, Any] = json.loads(path.read_text())
    return report


def test_three_days_of_cron_commit_three_runs_under_one_key(project: Project) -> None:
    _manifest(project)
    first = project.first_run("--manifest", "m.yml", "--execution-date", "2026-11-29")
    assert first["run_id"] == "m.job_2026_11_29"
    line = first["scheduler_handoff"]["crontab_line"]
    entry = cron_command_of(line)
    assert entry.schedule == ("0", "2", "*", "*", "*") and entry.stdin is None
    # cron's PATH has no venv: the line names this venv's dpone by its absolute path.
    assert f"{Path(sys.executable).parent / 'dpone'} orchestrate run " in entry.command
    assert entry.command.endswith(' --execution-date "$(date -u +%F)" --scheduler cron')
    assert project.scheduler(first["run_id"]) == who("cli")

    days = ["2026-11-30", "2026-12-01", "2026-12-02"]
    for date in days:
        out = run_like_cron(line, home=project.home, at_utc=day(f"{date} 02:00"))
        assert out.returncode == 0, out.stdout + out.stderr

    expected = [f"m.job_{date.replace('-', '_')}" for date in days]
    assert _run_ids(project) == [first["run_id"], *expected]
    _committed_under_one_key(project, expected, "m.job")
    states = sorted(path.name for path in project.state_dir.glob("*.job_state.json"))
    assert states == sorted(f"{file_safe_name(r)}.job_state.json" for r in [*_run_ids(project)])
    # The evidence goes where the first run put its own: one directory per run id.
    first_evidence = project.root / first["output_dir"] / "orchestrated_run.json"
    assert first_evidence.resolve() == project.evidence(first["run_id"]).resolve()
    for run_id in expected:
        evidence = _evidence_of(project, run_id)
        assert (evidence["run_id"], evidence["status"]) == (run_id, "committed")
        assert evidence["lock_key"] == "m.job"
    # cron's directory is not the project: nothing landed there.
    assert list(project.home.iterdir()) == []

    # The same day again (later that day): refused, and the command does not run.
    before = project.state(expected[-1])
    again = run_like_cron(line, home=project.home, at_utc=day("2026-12-02 14:30"))
    assert again.returncode == 1, again.stdout + again.stderr
    assert "job_state.already_committed" in again.stdout
    assert "already committed by cron (run id" in again.stdout  # the refusal names cron
    assert _run_ids(project) == [first["run_id"], *expected]
    assert project.state(expected[-1]) == before


def test_percent_signs_survive_crons_percent_rule(project: Project) -> None:
    """A ``%`` in the process name and the paths, and a first run id whose file name has ``%``."""
    odd = Project(project.root / "100% sure %F", home=project.home)
    odd.root.mkdir()
    _manifest(odd, process="orders%daily")
    first = odd.first_run("--manifest", "m.yml", "--run-id", "a.b:c+d")
    # Its evidence directory is the file-safe name of the run id, full of %.
    assert Path(first["output_dir"]).name == "a%2Eb%3Ac%2Bd"
    line = first["scheduler_handoff"]["crontab_line"]
    assert re.search(r"(?<!\\)%", line) is None  # every % escaped for cron...
    entry = cron_command_of(line)
    assert entry.stdin is None  # ...so that cron cuts nothing off
    assert "orders%daily" in entry.command and "100% sure %F" in entry.command

    out = run_like_cron(line, home=odd.home, at_utc=day("2026-11-30 02:00"))
    assert out.returncode == 0, out.stdout + out.stderr
    run_id = "m.orders%daily_2026_11_30"
    assert _run_ids(odd) == ["a.b:c+d", run_id]
    _committed_under_one_key(odd, [run_id], "m.orders%daily")
    assert _evidence_of(odd, run_id)["run_id"] == run_id
    assert odd.scheduler("a.b:c+d") == who("cli")
    assert odd.evidence(run_id).parent.name == "m%2Eorders%25daily_2026_11_30"
    assert (odd.root / first["output_dir"]).parent.resolve() == odd.evidence_root.resolve()


def test_backslash_before_percent_survives_crons_percent_rule(project: Project) -> None:
    """A ``\\`` right before a ``%`` (here in the process name) must reach dpone as written."""
    _manifest(project, process="orders\\%daily")
    first = project.first_run("--manifest", "m.yml", "--execution-date", "2026-11-29")
    line = first["scheduler_handoff"]["crontab_line"]
    entry = cron_command_of(line)
    # cron reads "\\%" as an escaped backslash and a bare % (the end of the command), so
    # the line must never put a literal backslash right before an escaped %.
    assert entry.stdin is None, f"cron cuts the command at ...{entry.command[-40:]!r}"
    out = run_like_cron(line, home=project.home, at_utc=day("2026-11-30 02:00"))
    assert out.returncode == 0, out.stdout + out.stderr
    run_id = "m.orders\\%daily_2026_11_30"
    assert _run_ids(project)[-1] == run_id
    _committed_under_one_key(project, [run_id], "m.orders\\%daily")


def test_sub_daily_schedule_names_the_utc_minute(project: Project) -> None:
    _manifest(project)
    first = project.first_run(
        "--manifest", "m.yml", "--schedule", "*/15 * * * *", "--execution-date", "2026-11-30T02:00Z"
    )
    assert first["run_id"] == "m.job_2026_11_30T02_00"
    line = first["scheduler_handoff"]["crontab_line"]
    entry = cron_command_of(line)
    assert entry.schedule == ("*/15", "*", "*", "*", "*") and entry.stdin is None

    for minute in ("02:15", "02:30"):
        out = run_like_cron(line, home=project.home, at_utc=day(f"2026-11-30 {minute}"))
        assert out.returncode == 0, out.stdout + out.stderr
    expected = ["m.job_2026_11_30T02_15", "m.job_2026_11_30T02_30"]
    assert _run_ids(project) == [first["run_id"], *expected]
    _committed_under_one_key(project, expected, "m.job")
    for run_id in expected:
        assert _evidence_of(project, run_id)["run_id"] == run_id
