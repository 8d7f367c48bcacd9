#!/usr/bin/env bash
# The sandbox of topicd.service, measured offline by `systemd-analyze security`: the unit alone
# (a standalone daemon: no network) must stay at an exposure of 2.0 or below, the unit with
# the cluster drop-in (a dispatcher or a worker: TCP) at 2.5 or below. The drop-in is checked
# in effect (the measure must see the network opened) and free of keys systemd rejects.
#
#     packaging/check-unit.sh [UNIT [DROP_IN]]
#
# Defaults: the repository's systemd/topicd.service and systemd/drop-in/cluster.conf;
# packaging/ci-deb.sh also runs it on the installed files. Needs no root and no running
# systemd; skipped, saying so, without systemd-analyze.
set -euo pipefail
cd "$(dirname "$0")/.."
unit=${1:-systemd/topicd.service}
drop_in=${2:-systemd/drop-in/cluster.conf}
fail() { echo "check-unit: FAILED: $*" >&2; exit 1; }
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "SKIPPED: systemd-analyze is not installed (apt-get install systemd): the unit's sandbox was not measured"
    exit 0
fi
[ -f "$unit" ] || fail "no unit at $unit"
[ -f "$drop_in" ] || fail "no drop-in at $drop_in"

alone=$(systemd-analyze security --offline=true --threshold=20 "$unit" 2>&1) \
    || { echo "$alone"; fail "$unit alone: exposure above 2.0"; }
echo "$unit alone: $(tail -1 <<<"$alone")"

# The unit with the drop-in, as systemd would merge them, in a throwaway root.
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/etc/systemd/system/topicd.service.d"
cp "$unit" "$root/etc/systemd/system/topicd.service"
cp "$drop_in" "$root/etc/systemd/system/topicd.service.d/50-cluster.conf"
merged=$(systemd-analyze security --offline=true --threshold=25 --root="$root" topicd.service 2>&1) \
    || { echo "$merged"; fail "$unit with $drop_in: exposure above 2.5"; }
if grep -E '50-cluster\.conf:[0-9]+:' <<<"$merged"; then
    fail "systemd does not accept every line of $drop_in"
fi
grep -q '✗ PrivateNetwork=' <<<"$merged" && grep -q '✗ RestrictAddressFamilies=~AF_(INET|INET6)' <<<"$merged" \
    || { echo "$merged"; fail "$drop_in is not in effect: the network stays closed"; }
echo "$unit with $drop_in: $(tail -1 <<<"$merged")"
