#!/usr/bin/env bash
# The test command: set up .venv, lint and type-check the engine, run every test.
# Needs the local PostgreSQL (DPONE_TEST_PG_DSN, default postgresql://postgres@127.0.0.1:5432/test).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/bootstrap.sh"
cd "$root"
venv="${DPONE_VENV:-$root/.venv}"
"$venv/bin/ruff" check dpone_core dpone_dagster tests bench
"$venv/bin/mypy" --strict dpone_core
"$venv/bin/python" -m pytest "$@"
