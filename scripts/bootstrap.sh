#!/usr/bin/env bash
# Create or refresh the project's virtual environment in .venv.
# Re-installs only when pyproject.toml changed since the last install.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${DPONE_VENV:-$root/.venv}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv" >&2
fi
stamp="$venv/.dpone-installed"
want="$(sha256sum "$root/pyproject.toml" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "$venv/bin/python" -m pip install -q --upgrade pip >&2
  "$venv/bin/python" -m pip install -q -e "$root[test]" >&2
  echo "$want" > "$stamp"
fi
# Bytecode for the project's own packages (pip compiles only what it installs, not an
# editable source tree): without it every `dpone` run compiles ~60 modules again where
# PYTHONDONTWRITEBYTECODE is set or the tree is read-only (docs/performance.md).
"$venv/bin/python" -m compileall -q "$root/dpone_core" "$root/dpone_dagster" >/dev/null
