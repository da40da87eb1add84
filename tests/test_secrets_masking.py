"""No secret in any output: environment secrets, URL passwords of any spelling, in linear time.

Every test runs the real CLI in a subprocess (or a real subprocess around
``redact``) and then searches *everything* the run left behind: its stdout and
stderr, the job state and every file under ``.dpone``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import unquote

import pytest

from dpone_core.redact import (
    MASK,
    is_secret_env_name,
    redact,
    redact_url,
    register_environment_secrets,
    register_url_secrets,
    url_password_candidates,
)
from tests.support.workspace import Workspace, all_text_under

# Distinct values per test: the registry of secrets is global to a process.
PG_PASSWORD = "PgEnv-4c1d9e77"
API_TOKEN = "tok_6b0f2a91d3e4"
PROCESS_SECRET = "ProcEnv-8e2b55aa"
#: A password with every character a regex over free text cannot place.
URL_PASSWORD = "Qz9/Kx7 Wv@Jm4-sec#r?t"


def _leaks(text: str, *secrets: str) -> list[str]:
    """The secrets found in ``text``, and the pieces of them that a URL parser may show alone.

    A parser that splits a URL at an ``@``, ``/``, ``?`` or ``#`` inside its password
    shows the rest as a host or path, so those pieces (6+ characters) must not leak either.
    """
    found = [s for s in secrets if s in text]
    for secret in secrets:
        found += [p for p in re.split(r"[@/?#]", secret) if len(p) >= 6 and p in text]
    return found


def _everything(ws: Workspace, proc: subprocess.CompletedProcess[str]) -> str:
    evidence = all_text_under([ws.root / ".dpone"])
    return "\n".join([proc.stdout, proc.stderr, evidence])


def _orchestrate(
    ws: Workspace, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    proc = ws.dpone("orchestrate", "run", "--format", "json", *args, env=env)
    report = json.loads(proc.stdout) if proc.stdout.strip() else {}
    return proc, report


def test_environment_secrets_echoed_by_a_command_appear_nowhere(ws: Workspace) -> None:
    code = (
        "import os, sys\n"
        "for name in ('PGPASSWORD', 'MY_API_TOKEN', 'SERVICE_PASSWORD'):\n"
        "    print(name, '=', os.environ[name])\n"
        "    print(name, '=', os.environ[name], file=sys.stderr)\n"
        "sys.exit(3)\n"
    )
    ws.write_manifest(
        {
            "echo": {
                "kind": "command",
                "command": [sys.executable, "-c", code],
                "env": {"SERVICE_PASSWORD": PROCESS_SECRET},
            }
        }
    )
    proc, report = _orchestrate(
        ws,
        "--manifest",
        "m.yml",
        "--run-id",
        "r1",
        "--retry-attempts",
        "1",
        env={"PGPASSWORD": PG_PASSWORD, "MY_API_TOKEN": API_TOKEN},
    )
    assert proc.returncode == 1, proc.stderr
    assert report["status"] == "failed"
    # The command did print, and what it printed was kept -- masked.
    result = json.dumps(report)
    assert "PGPASSWORD = ***" in result and "MY_API_TOKEN = ***" in result
    assert "SERVICE_PASSWORD = ***" in result
    evidence = {p.name for p in (ws.root / ".dpone").rglob("orchestrated_run.*")}
    assert evidence == {"orchestrated_run.json", "orchestrated_run.md"}
    state = json.dumps(ws.state("r1"))
    everything = _everything(ws, proc) + state
    assert _leaks(everything, PG_PASSWORD, API_TOKEN, PROCESS_SECRET) == []


def test_a_url_password_with_slash_space_and_at_is_masked_when_the_connection_fails(
    ws: Workspace,
) -> None:
    (ws.root / "source.db").touch()
    ws.write_manifest(
        {
            "load": {
                "source": {"connection": "local", "table": "orders"},
                "target": {"connection": "warehouse", "table": "landing_orders"},
            }
        },
        connections={
            "local": "sqlite:///source.db",
            # A refused port: the transfer fails and its error names the connection.
            "warehouse": f"postgresql://dpone:{URL_PASSWORD}@127.0.0.1:9/warehouse",
        },
    )
    proc, report = _orchestrate(ws, "--manifest", "m.yml", "--run-id", "r1")
    assert proc.returncode == 1, proc.stderr
    assert report["status"] == "failed"
    everything = _everything(ws, proc) + json.dumps(ws.state("r1"))
    assert _leaks(everything, URL_PASSWORD) == []


def test_a_percent_encoded_url_password_is_masked_in_both_spellings(ws: Workspace) -> None:
    # A raw '@' (a parser splitting at the first '@' shows the rest as the host)
    # next to percent-encoded characters.
    encoded = "Pq8%20Hn3@Ls9-Kw4%2Fzz"
    decoded = "Pq8 Hn3@Ls9-Kw4/zz"
    (ws.root / "source.db").touch()
    ws.write_manifest(
        {
            "load": {
                "source": {"connection": "local", "table": "orders"},
                "target": {"connection": "warehouse", "table": "landing_orders"},
            }
        },
        connections={
            "local": "sqlite:///source.db",
            "warehouse": f"postgresql://dpone:{encoded}@127.0.0.1:9/warehouse",
        },
    )
    proc, _report = _orchestrate(ws, "--manifest", "m.yml", "--run-id", "r1")
    assert proc.returncode == 1, proc.stderr
    everything = _everything(ws, proc) + json.dumps(ws.state("r1"))
    assert _leaks(everything, encoded, decoded) == []


def test_a_backend_url_password_with_slash_space_and_at_is_masked(ws: Workspace) -> None:
    ws.write_manifest({"echo": {"kind": "command", "command": [sys.executable, "-c", "pass"]}})
    password = "Bk5/Tr8 Yu@Np3-x"
    backend = f"postgresql://dpone:{password}@127.0.0.1:9/db"
    proc, _report = _orchestrate(ws, "--manifest", "m.yml", "--backend", backend)
    assert proc.returncode != 0
    assert _leaks(_everything(ws, proc), password) == []


# -- the rules, one by one --------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "PGPASSWORD",
        "pgpassword",
        "AWS_SECRET_ACCESS_KEY",
        "GITHUB_TOKEN",
        "MY_API_TOKEN",
        "CLIENT_SECRET",
        "DB_PASSWORD",
        "LDAP_PASSWD",
        "OPENAI_API_KEY",
        "STRIPE_APIKEY",
        "SIGNING_KEY",
        "SSH_PRIVATE_KEY",
        "AWS_ACCESS_KEY",
        "MYSQL_PWD",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "SSH_PASSPHRASE",
        "DEPLOY_TOKENS",
        "my-api-token",
    ],
)
def test_secret_like_names(name: str) -> None:
    assert is_secret_env_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "PATH",
        "HOME",
        "LANG",
        "PWD",
        "OLDPWD",
        "TOKENIZERS_PARALLELISM",
        "KEYBOARD",
        "KEY",
        "SSH_AUTH_SOCK",
        "SECRETARY_NAME",
        "USER",
        "KEYRING_BACKEND",
        "DPONE_PARTITION_KEY",
        "CONCURRENCY_KEY",
        "GPG_KEY",
        "AWS_ACCESS_KEY_ID",
    ],
)
def test_harmless_names(name: str) -> None:
    assert not is_secret_env_name(name)


def test_environment_registration_skips_short_values_and_reads_urls_in_any_variable() -> None:
    register_environment_secrets(
        {
            "SHORT_TOKEN": "false",
            "LONG_TOKEN": "zz-long-token-71",
            "PATH": "/usr/bin:/bin",
            "DATABASE_URL": "postgresql://u:Url/Pw 55@db.example:5432/app",
        }
    )
    assert redact("false zz-long-token-71 /usr/bin:/bin") == f"false {MASK} /usr/bin:/bin"
    assert "Url/Pw 55" not in redact("password was Url/Pw 55, really")


@pytest.mark.parametrize(
    ("url", "passwords"),
    [
        ("postgresql://u:simple-pw@h:5432/db", ["simple-pw"]),
        ("postgresql://u:pa/ss w@rd@h:5432/db", ["pa/ss w@rd"]),
        ("postgresql://u:p#q?r:s@h/db?sslmode=require", ["p#q?r:s"]),
        ("postgresql://u:p%2Fq%40r@h/db", ["p%2Fq%40r"]),
        ("postgresql://u@h/db", []),
        ("sqlite:///data/a@b.db", []),
        ("postgresql://h/db", []),
    ],
)
def test_url_passwords_are_found_by_parsing(url: str, passwords: list[str]) -> None:
    assert set(url_password_candidates(url)) >= set(passwords)
    assert all(p not in redact_url(url) for p in passwords)
    register_url_secrets(url)
    for password in passwords:
        for spelling in (password, unquote(password)):
            assert spelling not in redact(f"an error: could not use {spelling!r}")


def test_redact_url_keeps_the_rest_of_the_url() -> None:
    assert redact_url("postgresql://u:pa/ss w@rd@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"


def test_text_that_merely_contains_a_url_is_still_masked() -> None:
    assert redact("postgresql://u:s3cr3t@h:5432/db failed") == "postgresql://u:***@h:5432/db failed"
    assert redact("see mysql+pymysql://app:Tx-91@db/x.") == "see mysql+pymysql://app:***@db/x."
    assert "hunter2" not in redact("host=h password=hunter2 user=u")
    assert "hunter 2" not in redact("host=h password='hunter 2' user=u")


def test_overlapping_secrets_mask_the_longest() -> None:
    from dpone_core.redact import register_secret

    register_secret("ovl-abc")
    register_secret("ovl-abcdef")
    assert redact("x ovl-abcdef y ovl-abc z") == f"x {MASK} y {MASK} z"


# -- linear time ------------------------------------------------------------------------

_LINEAR = textwrap.dedent(
    """
    import os, sys
    from dpone_core.redact import redact, register_secret
    for i in range(20):
        register_secret(f"lin-secret-{i:02d}-" + "q" * i)
    n = 5 * 1024 * 1024
    random_text = os.urandom(n).hex()[:n]                # no separators at all
    letters = "".join(chr(97 + b % 26) for b in os.urandom(n))
    fragments = ("x://a:b@" + "y" * 24) * (n // 32)       # one line, ~160k URL fragments
    unclosed = ("password='" + "z" * 22) * (n // 32)     # quotes that never close
    schemes = letters + "://"
    for text in (random_text, letters, fragments, unclosed, schemes):
        redact(text)
    assert "a:b@" not in redact(fragments)
    print("done")
    """
)


def test_masking_5_mb_of_hostile_output_finishes(tmp_path: Path) -> None:
    # On the old code the first input alone would take hours (quadratic backtracking).
    proc = subprocess.run(
        [sys.executable, "-c", _LINEAR],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "done"


def test_manifest_references_follow_the_one_secret_name_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`${OPENAI_API_KEY}` is secret by the environment rule; `${TOKENIZERS_PARALLELISM}` not."""
    from dpone_core.manifest import load_manifest

    monkeypatch.setenv("OPENAI_API_KEY", "sk-unified-rule-Qm83v")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "falsey-harmless")
    path = tmp_path / "m.yml"
    path.write_text(
        "version: 1\nprocesses:\n  p:\n    kind: command\n"
        '    command: ["echo", "${OPENAI_API_KEY}", "${TOKENIZERS_PARALLELISM}"]\n'
    )
    load_manifest(path)
    assert redact("key sk-unified-rule-Qm83v") == f"key {MASK}"
    assert redact("falsey-harmless") == "falsey-harmless"
