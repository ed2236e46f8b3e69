#!/usr/bin/env bash
# Set-up as scripts/setup.sh, then every test: GoogleTest suites through ctest, and the
# pytest suites (which include ../shared/checks/check_plans.py on every shared topology).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${IPEX_BUILD_DIR:-$root/build}
"$root/scripts/setup.sh"

echo "== clang-format (.clang-format at the root)"
(cd "$root" && git ls-files '*.cpp' '*.h' | xargs clang-format --dry-run -Werror)

echo "== GoogleTest (ctest)"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"

# The torch-free code again under AddressSanitizer and UndefinedBehaviorSanitizer: cheap
# (no torch headers), and it is where the launcher's memory handling lives.
echo "== GoogleTest under ASan/UBSan (torch-free parts)"
asan_build="${build}-asan"
CCACHE_BASEDIR="$root" cmake -S "$root" -B "$asan_build" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
    -DIPEX_WITH_TORCH=OFF -DIPEX_BUILD_BENCHMARKS=OFF -DIPEX_SANITIZE=ON >/dev/null
cmake --build "$asan_build" -j "$(nproc)" >/dev/null
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ctest --test-dir "$asan_build" --output-on-failure -j "$(nproc)"

echo "== pytest"
export IPEX_BUILD_DIR="$build"
cd "$root"
# The interpreter with torch is Debian's, whatever python3 comes first on PATH.
/usr/bin/python3 -m pytest -q -p no:cacheprovider tests
