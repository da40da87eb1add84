#!/usr/bin/env bash
# The main job: set up .venv, seed the example shop (SQLite) and run every process of
# manifests/shop.yml through `dpone orchestrate run`, printing each report.
# The first run seeds data/shop.db; later runs simulate a day of business first, so
# merge and incremental have something to do.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/bootstrap.sh"
cd "$root"
venv="${DPONE_VENV:-$root/.venv}"
export PATH="$venv/bin:$PATH"
if [ -f data/shop.db ]; then
  python scripts/seed_shop.py --touch
else
  python scripts/seed_shop.py
fi
stamp="$(date -u +%Y%m%dT%H%M%S)"
status=0
for process in customers orders products refresh_report; do
  dpone orchestrate run --manifest manifests/shop.yml --selector "$process" \
    --run-id "${process}_${stamp}" --retry-attempts 1 --retry-backoff-seconds 1 || status=1
  echo
done
echo "Evidence: .dpone/orchestration/<run-id>/, job states: .dpone/orchestration-state/" >&2
exit "$status"
