#!/usr/bin/env bash
# The test command: set up .venv; ruff, mypy --strict on both packages, the import-layer
# contracts (lint-imports, see pyproject.toml), then every test.
# Needs the local PostgreSQL (DPONE_TEST_PG_DSN, default postgresql://postgres@127.0.0.1:5432/test).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/bootstrap.sh"
# System tools the tests drive for real (cron runs under a faked clock; the Dagster UI is
# screenshotted with headless Chromium), installed here so CI on a fresh machine has them.
need=()
command -v faketime >/dev/null 2>&1 || need+=(faketime)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v strace >/dev/null 2>&1 || need+=(strace) # fsync order (tests/test_state_durable_before_command.py)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "test.sh: need ${need[*]} (apt-get install -y ${need[*]} as root)" >&2
    exit 2
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${need[@]}" >&2 \
    || { apt-get update -q >&2 && apt-get install -y -q "${need[@]}" >&2; }
fi
cd "$root"
venv="${DPONE_VENV:-$root/.venv}"
"$venv/bin/ruff" check dpone_core dpone_dagster tests bench
"$venv/bin/mypy" --strict dpone_core dpone_dagster
"$venv/bin/lint-imports" --no-cache
"$venv/bin/python" -m pytest "$@"
