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

packages=()
while read -r pkg; do
    case "$pkg" in ""|\#*) continue ;; esac
    packages+=("$pkg")
done < "$root/scripts/packages.txt"

# Prints the packages of "$@" that dpkg does not have fully installed.
not_installed() {
    local pkg status
    for pkg in "$@"; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
        [ "$status" = "installed" ] || echo "$pkg"
    done
}

# Every failure below is one line naming what is missing, before CMake runs.
fail() { echo "setup: error: $*" >&2; exit 1; }
mapfile -t missing < <(not_installed "${packages[@]}")
if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null || fail "missing packages: ${missing[*]} (and no apt-get to install them)"
    [ -z "$sudo" ] || command -v sudo >/dev/null || fail "missing packages: ${missing[*]} (run as root or install sudo)"
    echo "setup: installing ${missing[*]}"
    apt_log=$(mktemp "${TMPDIR:-/tmp}/ipex-setup-apt.XXXXXX")
    $sudo apt-get update -qq >"$apt_log" 2>&1 || fail "apt-get update failed (log: $apt_log); missing packages: ${missing[*]}"
    unknown=()
    for pkg in "${missing[@]}"; do
        candidate=$(apt-cache policy "$pkg" 2>/dev/null | sed -n 's/^ *Candidate: //p')
        [ -n "$candidate" ] && [ "$candidate" != "(none)" ] || unknown+=("$pkg")
    done
    [ ${#unknown[@]} -eq 0 ] || { rm -f "$apt_log"; fail "not available from the apt sources: ${unknown[*]}"; }
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >>"$apt_log" 2>&1 || true
    mapfile -t still_missing < <(not_installed "${missing[@]}")
    [ ${#still_missing[@]} -eq 0 ] || fail "apt-get could not install: ${still_missing[*]} (log: $apt_log)"
    rm -f "$apt_log"
fi

# ccache keys on paths below the repository relative to it, so a fresh clone reuses the cache.
export CCACHE_BASEDIR="$root"
export CCACHE_NOHASHDIR=1
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_INSTALL_PREFIX="$prefix" ${IPEX_CMAKE_ARGS:-} >/dev/null
jobs=$(nproc)
cmake --build "$build" -j "$jobs"
$sudo cmake --install "$build" >/dev/null
echo "setup: ipexrun installed as $prefix/bin/ipexrun"
