#!/usr/bin/env bash
# Set-up as scripts/setup.sh, then every test: GoogleTest suites through ctest, and the
# pytest suites (which include ../shared/checks/check_plans.py on every shared topology).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${IPEX_BUILD_DIR:-$root/build}
"$root/scripts/setup.sh"

echo "== GoogleTest (ctest)"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"

echo "== pytest"
export IPEX_BUILD_DIR="$build"
cd "$root"
# The interpreter with torch is Debian's, whatever python3 comes first on PATH.
/usr/bin/python3 -m pytest -q -p no:cacheprovider tests
