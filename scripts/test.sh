#!/usr/bin/env bash
# The test command: set up .venv; ruff, mypy --strict on both packages, the import-layer
# contracts (lint-imports, see pyproject.toml), then every test.
# Needs the local PostgreSQL (DPONE_TEST_PG_DSN, default postgresql://postgres@127.0.0.1:5432/test).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/bootstrap.sh"
cd "$root"
venv="${DPONE_VENV:-$root/.venv}"
"$venv/bin/ruff" check dpone_core dpone_dagster tests bench
"$venv/bin/mypy" --strict dpone_core dpone_dagster
"$venv/bin/lint-imports" --no-cache
"$venv/bin/python" -m pytest "$@"
