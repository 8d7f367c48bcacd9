#!/usr/bin/env bash
# Install the system packages topicd builds against (Debian/Ubuntu): OpenBLAS with its LAPACK,
# and pkg-config. Does nothing when they are already installed.
set -euo pipefail
missing=()
for pkg in libopenblas-dev pkg-config; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing ${missing[*]} (apt)" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
