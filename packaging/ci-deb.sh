#!/usr/bin/env bash
# CI for the Debian package, as root on a Debian machine (systemd need not run):
#  1. build the .deb (packaging/build-deb.sh) and check its contents and metadata (dpkg-deb);
#  2. check the unit with systemd-analyze (verify, security) where systemd-analyze exists:
#     exposure at most 2.0 alone, at most 2.5 with the cluster drop-in (packaging/check-unit.sh);
#  3. install the package with apt, check the user, the config and --check-config;
#  4. run /usr/bin/topicd as the user topicd with the packaged config, its directories moved
#     to a throwaway one (--data-dir, --control-socket), train the bundled example through
#     /usr/bin/topicctl, print its topics, and check who may use the socket;
#  5. stop the daemon (SIGTERM), apt-get remove, dpkg --purge, and check what is left.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
step() { printf '\n== ci-deb: %s (%ss)\n' "$*" "$((SECONDS - started))"; }
fail() { echo "ci-deb: FAILED: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "must run as root (installs the package)"
passed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }

step "build the package"
packaging/build-deb.sh >/dev/null
deb=$(ls target/debian/topicd_*.deb)
echo "$deb"

step "contents and metadata"
dpkg-deb -I "$deb"
dpkg-deb -c "$deb" | awk '{print $1, $3, $6}'
contents=$(dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|')
for f in /usr/bin/topicd /usr/bin/topicctl /etc/topicd/topicd.toml \
    /lib/systemd/system/topicd.service /usr/lib/sysusers.d/topicd.conf \
    /usr/share/topicd/systemd/cluster.conf /usr/share/topicd/python/topicd_gensim.py \
    /usr/lib/tmpfiles.d/topicd.conf /usr/share/man/man8/topicd.8.gz \
    /usr/share/man/man1/topicctl.1.gz /usr/share/man/man1/topicctl-submit-lsi.1.gz \
    /usr/share/bash-completion/completions/topicctl /usr/share/zsh/vendor-completions/_topicctl \
    /usr/share/fish/vendor_completions.d/topicctl.fish /usr/share/doc/topicd/operations.md \
    /usr/share/doc/topicd/copyright; do
    # cargo-deb may place the unit under /usr/lib/systemd/system
    grep -qx "$f" <<<"$contents" || grep -qx "/usr$f" <<<"$contents" || fail "$f is not in the package"
done
ok "every file is in the package"
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
grep -Eq 'libopenblas0|libblas3|liblapack3' <<<"$depends" || fail "Depends names no BLAS/LAPACK library"
ok "Depends names the BLAS/LAPACK runtime"
conffiles=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)
[ "$conffiles" = "/etc/topicd/topicd.toml" ] || fail "conffiles: $conffiles"
ok "conffiles: $conffiles"
for script in postinst prerm postrm; do
    body=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO "./$script")
    grep -q 'deb-systemd-' <<<"$body" || fail "$script does not use deb-systemd-helper/invoke"
    sh -n <<<"$body" || fail "$script is not valid sh"
done
ok "maintainer scripts use deb-systemd-helper and deb-systemd-invoke"

step "systemd-analyze"
if command -v systemd-analyze >/dev/null 2>&1; then
    packaging/check-unit.sh systemd/topicd.service systemd/drop-in/cluster.conf
    ok "systemd-analyze security: exposure at most 2.0, at most 2.5 with the cluster drop-in"
else
    echo "SKIPPED: systemd-analyze is not installed (apt-get install systemd): unit not checked"
fi

user_existed=no
getent passwd topicd >/dev/null && user_existed=yes
dir=$(mktemp -d)
pid=""
notify_pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    [ -n "$notify_pid" ] && kill "$notify_pid" 2>/dev/null
    if dpkg-query -W -f='${Status}' topicd 2>/dev/null | grep -q 'ok installed\|config-files'; then
        dpkg --purge topicd >/dev/null 2>&1 || true
    fi
    if [ "$user_existed" = no ] && getent passwd topicd >/dev/null; then
        userdel topicd 2>/dev/null || true
        groupdel topicd 2>/dev/null || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT

step "install"
if ! command -v systemd-sysusers >/dev/null 2>&1; then
    apt-get update -q >/dev/null   # a Depends (systemd-sysusers) must come from the archive
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "./$deb" >/dev/null
dpkg-query -W -f='${Package} ${Version} ${Status}\n' topicd
getent passwd topicd | grep -q ':/var/lib/topicd:/usr/sbin/nologin$' || fail "no system user topicd"
[ "$(stat -c '%U:%G %a' /var/lib/topicd)" = "topicd:topicd 750" ] || fail "/var/lib/topicd: $(stat -c '%U:%G %a' /var/lib/topicd)"
[ "$(stat -c '%U:%G %a' /var/lib/topicd/inbox)" = "topicd:topicd 2770" ] || fail "inbox: $(stat -c '%U:%G %a' /var/lib/topicd/inbox)"
ok "user topicd and its directories"
/usr/bin/topicd --version
/usr/bin/topicd --check-config --config /etc/topicd/topicd.toml
printf 'datadir = "/x"\nsocket_mode = "rw"\n' >"$dir/bad.toml"
if /usr/bin/topicd --check-config --config "$dir/bad.toml" 2>"$dir/check.err"; then
    fail "--check-config accepted a bad file"
fi
cat "$dir/check.err"
grep -q ':1: datadir' "$dir/check.err" && grep -q ':2: socket_mode' "$dir/check.err" \
    || fail "--check-config did not name both problems"
ok "--check-config names each problem"
if command -v systemd-analyze >/dev/null 2>&1; then
    installed_unit=$(ls /lib/systemd/system/topicd.service /usr/lib/systemd/system/topicd.service 2>/dev/null | head -1)
    systemd-analyze verify "$installed_unit"
    ok "systemd-analyze verify $installed_unit"
    packaging/check-unit.sh "$installed_unit" /usr/share/topicd/systemd/cluster.conf
    # enabled as operations.md says (a link), the drop-in applies and systemd takes every line
    dropins=/etc/systemd/system/topicd.service.d
    dropins_existed=no
    [ -d "$dropins" ] && dropins_existed=yes
    mkdir -p "$dropins"
    ln -s /usr/share/topicd/systemd/cluster.conf "$dropins/50-cluster.conf"
    verified=$(systemd-analyze verify "$installed_unit" 2>&1 || true)
    merged=$(systemd-analyze security --offline=true --threshold=25 topicd.service 2>&1) || merged_failed=yes
    rm "$dropins/50-cluster.conf"
    [ "$dropins_existed" = yes ] || rmdir "$dropins"
    if grep '50-cluster.conf' <<<"$verified"; then fail "systemd rejects lines of the enabled drop-in"; fi
    [ -z "${merged_failed:-}" ] || { echo "$merged"; fail "exposure above 2.5 with the drop-in enabled"; }
    grep -q '✗ PrivateNetwork=' <<<"$merged" || fail "the linked drop-in is not in effect"
    ok "the cluster drop-in, linked into $dropins: in effect, $(tail -1 <<<"$merged" | sed 's/.*: //')"
else
    echo "SKIPPED: systemd-analyze is not installed: systemd-analyze verify not run"
fi
man -w topicd.8 topicctl.1 >/dev/null 2>&1 && ok "man finds topicd(8) and topicctl(1)"
if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import ast, sys; ast.parse(open(sys.argv[1]).read())' /usr/share/topicd/python/topicd_gensim.py \
        || fail "the installed topicd_gensim.py is not valid Python"
    ok "topicd_gensim.py is installed and parses"
fi

step "run the packaged daemon as topicd on a throwaway directory"
chmod 755 "$dir"
install -d -o topicd -g topicd -m 0750 "$dir/data" "$dir/run"
install -d -o topicd -g topicd -m 2770 "$dir/inbox"
install -m 0644 examples/planted_tfidf.mm.gz examples/planted_wordids.txt "$dir/inbox/"
socket="$dir/run/control.sock"
# systemd's readiness protocol: a datagram socket as NOTIFY_SOCKET collects what topicd sends.
if command -v python3 >/dev/null 2>&1; then
    python3 -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o666)
with open(sys.argv[2], "a") as out:
    while True:
        out.write(s.recv(4096).decode() + "\n"); out.flush()
' "$dir/notify.sock" "$dir/notify.txt" &
    notify_pid=$!
    for _ in $(seq 50); do [ -S "$dir/notify.sock" ] && break; sleep 0.1; done
fi
NOTIFY_SOCKET="$dir/notify.sock" setpriv --reuid=topicd --regid=topicd --init-groups -- \
    /usr/bin/topicd --config /etc/topicd/topicd.toml --data-dir "$dir/data" --control-socket "$socket" \
    2>"$dir/topicd.log" &
pid=$!
for _ in $(seq 100); do [ -S "$socket" ] && break; sleep 0.1; done
[ -S "$socket" ] || { cat "$dir/topicd.log"; fail "no control socket"; }
[ "$(stat -c '%U:%G %a' "$socket")" = "topicd:topicd 660" ] || fail "socket: $(stat -c '%U:%G %a' "$socket")"
ok "control socket topicd:topicd 660"
ctl() { /usr/bin/topicctl --socket "$socket" "$@"; }
job=$(ctl submit lsi --corpus "$dir/inbox/planted_tfidf.mm.gz" --dictionary "$dir/inbox/planted_wordids.txt" --topics 8)
ctl wait "$job" || { cat "$dir/topicd.log"; fail "job $job did not succeed"; }
ctl topics "$job" --num-topics 8 --words 6 | tee "$dir/topics.txt"
[ "$(grep -c '^topic #' "$dir/topics.txt")" -eq 8 ] || fail "not 8 topics"
ok "job $job trained through /usr/bin/topicctl, 8 topics"
# A member of group topicd may use the socket; anyone else may not.
setpriv --reuid=nobody --regid=nogroup --groups=topicd -- /usr/bin/topicctl --socket "$socket" list >/dev/null \
    || fail "a member of group topicd cannot use topicctl"
if setpriv --reuid=nobody --regid=nogroup --clear-groups -- /usr/bin/topicctl --socket "$socket" list >/dev/null 2>&1; then
    fail "a user outside group topicd can use the socket"
fi
ok "socket: group topicd yes, others no"
grep -q "job_id=$job event=submitted" "$dir/topicd.log" && grep -q "job_id=$job event=succeeded" "$dir/topicd.log" \
    || { cat "$dir/topicd.log"; fail "log lines lack the job_id/event fields"; }
ok "log records carry job_id and event"
kill -TERM "$pid"
wait "$pid" || fail "topicd exited with status $? after SIGTERM"
pid=""
ok "SIGTERM: clean exit"
if [ -n "$notify_pid" ]; then
    kill "$notify_pid"; wait "$notify_pid" 2>/dev/null || true
    notify_pid=""
    cat "$dir/notify.txt"
    grep -qx 'READY=1' "$dir/notify.txt" && grep -qx 'STOPPING=1' "$dir/notify.txt" \
        || fail "no READY=1 and STOPPING=1 on NOTIFY_SOCKET"
    ok "sd_notify: READY=1 once listening, STOPPING=1 at shutdown"
else
    echo "SKIPPED: python3 is not installed: the readiness notification was not checked"
fi

step "remove and purge"
DEBIAN_FRONTEND=noninteractive apt-get remove -y -q topicd >/dev/null
[ ! -e /usr/bin/topicd ] && [ ! -e /usr/bin/topicctl ] || fail "binaries left after remove"
[ -e /etc/topicd/topicd.toml ] || fail "remove deleted the conffile"
ok "apt-get remove: binaries gone, config kept"
dpkg --purge topicd >/dev/null
[ ! -e /etc/topicd ] && [ ! -e /var/lib/topicd ] || fail "purge left /etc/topicd or /var/lib/topicd"
! dpkg-query -W topicd >/dev/null 2>&1 || [ -z "$(dpkg-query -W -f='${Status}' topicd 2>/dev/null | grep -v not-installed)" ] \
    || fail "dpkg still knows topicd"
ok "dpkg --purge: nothing left"

echo
echo "ci-deb: $passed passed, 0 failed ($((SECONDS - started))s)"
