#!/usr/bin/env bash
# Installs what ipexrun needs from Debian, builds it and installs it under /usr/local.
# Idempotent: packages already present are not touched, and an unchanged tree rebuilds in
# seconds (ninja + ccache).
#   IPEX_BUILD_DIR   build folder (default: <repo>/build)
#   IPEX_PREFIX      install prefix (default: /usr/local)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${IPEX_BUILD_DIR:-$root/build}
prefix=${IPEX_PREFIX:-/usr/local}
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

missing=()
while read -r pkg; do
    case "$pkg" in ""|\#*) continue ;; esac
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = "installed" ] || missing+=("$pkg")
done < "$root/scripts/packages.txt"
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ccache keys on paths below the repository relative to it, so a fresh clone reuses the cache.
export CCACHE_BASEDIR="$root"
export CCACHE_NOHASHDIR=1
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_INSTALL_PREFIX="$prefix" ${IPEX_CMAKE_ARGS:-} >/dev/null
jobs=$(nproc)
cmake --build "$build" -j "$jobs"
$sudo cmake --install "$build" >/dev/null
echo "setup: ipexrun installed as $(command -v ipexrun || echo "$prefix/bin/ipexrun")"
