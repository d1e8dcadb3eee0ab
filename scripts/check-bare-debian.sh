#!/usr/bin/env bash
# Checks the README's two commands as a new user on a bare Debian 12 would
# run them: builds a Debian 12 (bookworm) minbase root with debootstrap,
# holding only git, make, ca-certificates and curl; copies this working tree
# in (tracked and untracked files, no build dirs or node_modules); then, in a
# chroot inside its own mount and PID namespaces, runs `make test`, and
# `make run` until the demo page answers curl, then stops it with SIGINT
# (Ctrl-C). Node.js there is Debian's own (18.x).
#
#   sudo scripts/check-bare-debian.sh             # root in /var/tmp/zoosync-bare
#   ROOT=/some/dir KEEP_ROOT=1 sudo scripts/check-bare-debian.sh
#
# Environment: ROOT (where the Debian root goes; made afresh unless
# REUSE_ROOT=1 and it exists), MIRROR (default: the first Debian mirror in
# /etc/apt/sources.list*, else http://deb.debian.org/debian), SUITE
# (bookworm), PORT (for `make run`, default 18080), KEEP_ROOT=1 (keep the
# root after a pass too; it is kept after a failure), SKIP_TEST=1 /
# SKIP_RUN=1, HOST_CA=0 (see below). Logs: $ROOT.log.d/. Needs root, network
# access to the mirror, and about 3 GB of disk. It takes 20 to 40 minutes.
# Exit status 0 when both commands passed.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
ROOT="${ROOT:-/var/tmp/zoosync-bare}"
SUITE="${SUITE:-bookworm}"
PORT="${PORT:-18080}"
LOGS="${ROOT}.log.d"

say() { echo "check-bare-debian: $*" >&2; }
die() { say "$*"; exit 1; }

# ------------------------------------------------------------ inner stage
# Runs in fresh mount and PID namespaces (unshare): every mount made here and
# every process started in the chroot ends with this stage.
if [ "${1:-}" = "--inner" ]; then
  mount --make-rprivate /
  mount -t proc proc "$ROOT/proc"
  mount --rbind /sys "$ROOT/sys"
  mount --rbind /dev "$ROOT/dev"
  mkdir -p "$ROOT/dev/shm" && mountpoint -q "$ROOT/dev/shm" || mount -t tmpfs -o mode=1777 shm "$ROOT/dev/shm"
  mount -t tmpfs -o mode=1777 tmp "$ROOT/tmp"
  in_root() {
    chroot "$ROOT" /usr/bin/env -i HOME=/root USER=root LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive \
      ${EXTRA_CA:+NODE_EXTRA_CA_CERTS=$EXTRA_CA} PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
  }
  rc=0
  if [ -z "${SKIP_TEST:-}" ]; then
    say "make test (log: $LOGS/make-test.log)"
    start=$(date +%s)
    if in_root bash -c 'cd /root/zoosync && make test' >"$LOGS/make-test.log" 2>&1; then
      say "make test: passed in $(( $(date +%s) - start )) s"
      # Skips are not passes: say which tests skipped, and why.
      skipped=$(grep -c '^ok .* # SKIP' "$LOGS/make-test.log" || true)
      [ "$skipped" = 0 ] || say "make test: $skipped tests SKIPPED in the root, e.g.: $(grep -m1 -o '# SKIP .*' "$LOGS/make-test.log" | cut -c1-200)"
    else
      rc=1; say "make test: FAILED after $(( $(date +%s) - start )) s; the end of its log:"; tail -40 "$LOGS/make-test.log" >&2
    fi
    say "node in the root: $(in_root node --version 2>&1) ($(in_root dpkg-query -W -f='${Version}' nodejs 2>/dev/null || echo '?'))"
  fi
  if [ -z "${SKIP_RUN:-}" ]; then
    say "make run on port $PORT (log: $LOGS/make-run.log)"
    # In its own process group (setsid), as a terminal's foreground job is.
    setsid chroot "$ROOT" /usr/bin/env -i HOME=/root USER=root LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive PORT="$PORT" \
      ${EXTRA_CA:+NODE_EXTRA_CA_CERTS=$EXTRA_CA} \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin bash -c 'cd /root/zoosync && exec make run' >"$LOGS/make-run.log" 2>&1 &
    run_pid=$!
    ok=""
    for _ in $(seq 1 1200); do  # up to 20 minutes: the first run installs and builds
      # make run prints a link per demo user ("  alice    http://...#token=..."):
      # that user's token reads the user's prefix of store todos.
      link="$(grep -E '^  [A-Za-z0-9._-]+ +http://[^ ]+#token=' "$LOGS/make-run.log" 2>/dev/null | head -1 || true)"
      user="$(awk '{print $1}' <<<"$link")"; tok="${link##*#token=}"
      if [ -n "$link" ] && curl -fsS "http://127.0.0.1:$PORT/" -o "$LOGS/page.html" 2>/dev/null && grep -qi '<html' "$LOGS/page.html" \
         && curl -fsS -H "Authorization: Bearer $tok" "http://127.0.0.1:$PORT/v1/stores/todos/changes?prefix=users/$user/" -o "$LOGS/store.json" 2>/dev/null \
         && [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/v1/stores/todos")" = 401 ]; then ok=1; break; fi
      kill -0 "$run_pid" 2>/dev/null || break
      sleep 1
    done
    if [ -n "$ok" ] && curl -fsS "http://127.0.0.1:$PORT/client/zoosync.js" -o /dev/null; then
      say "make run: the demo page, the client and $user's link answer (prefix users/$user/ of todos: $(cat "$LOGS/store.json")); without a token 401"
    else
      rc=1; say "make run: the demo did not answer; the end of its log:"; tail -30 "$LOGS/make-run.log" >&2
    fi
    # Ctrl-C: SIGINT to the process group of make run (make, run.sh, zoosyncd).
    kill -INT -- "-$run_pid" 2>/dev/null || kill -INT "$run_pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$run_pid" 2>/dev/null || break; sleep 1; done
    if kill -0 "$run_pid" 2>/dev/null; then rc=1; say "make run: still running 30 s after SIGINT"; kill -KILL "$run_pid" 2>/dev/null || true; fi
    wait "$run_pid" 2>/dev/null || true
    if grep -q '^stopped\.' "$LOGS/make-run.log"; then say "make run: stopped cleanly on SIGINT"; else rc=1; say "make run: no 'stopped.' after SIGINT"; fi
    if curl -fsS -m 2 "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then rc=1; say "make run: the gateway still answers after SIGINT"; fi
  fi
  # Leaving this PID namespace ends whatever is left in it; the mounts go with it.
  exit $rc
fi

# ------------------------------------------------------------ outer stage
[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap, chroot and mounts need it)"
for t in unshare chroot mount curl git; do command -v "$t" >/dev/null || die "$t is missing"; done
if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap"
  apt-get install -y -qq debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
fi
if [ -z "${MIRROR:-}" ]; then
  MIRROR=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -1 | tr -d ' ' || true)
  MIRROR="${MIRROR:-http://deb.debian.org/debian}"
fi
SECURITY="${SECURITY:-${MIRROR%/debian*}/debian-security}"
case "$ROOT" in /|/usr|/var|/tmp|/home|/root|"") die "ROOT=$ROOT: refusing";; esac
mkdir -p "$LOGS"

if [ -n "${REUSE_ROOT:-}" ] && [ -x "$ROOT/usr/bin/make" ]; then
  say "reusing $ROOT"
else
  if [ -e "$ROOT" ]; then
    grep -q " $ROOT/" /proc/mounts && die "something is mounted under $ROOT; unmount it first"
    rm -rf --one-file-system "$ROOT"
  fi
  say "debootstrap --variant=minbase $SUITE from $MIRROR (log: $LOGS/debootstrap.log)"
  debootstrap --variant=minbase --include=git,make,ca-certificates,curl "$SUITE" "$ROOT" "$MIRROR" >"$LOGS/debootstrap.log" 2>&1 \
    || { tail -20 "$LOGS/debootstrap.log" >&2; die "debootstrap failed"; }
  cat >"$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY $SUITE-security main
EOF
fi
cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
cp /etc/hosts "$ROOT/etc/hosts" 2>/dev/null || true
# Behind a TLS-intercepting proxy (a sandbox, a corporate network) the host
# trusts extra CA certificates that a bare root does not, and npm fails with
# SELF_SIGNED_CERT_IN_CHAIN. They are copied in (HOST_CA=0 to skip); that
# is the only difference from a bare install, and it is printed.
EXTRA_CA=""
if [ "${HOST_CA:-1}" != 0 ] && compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  say "copying the host's local CA certificates in: $(cd /usr/local/share/ca-certificates && echo *.crt)"
  mkdir -p "$ROOT/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
  chroot "$ROOT" update-ca-certificates >/dev/null 2>&1 || say "warning: update-ca-certificates failed in the root"
  EXTRA_CA=/etc/ssl/certs/ca-certificates.crt
fi

say "copying $here (tracked and untracked files) to $ROOT/root/zoosync"
rm -rf "$ROOT/root/zoosync"
mkdir -p "$ROOT/root/zoosync"
(cd "$here" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) | tar -xf - -C "$ROOT/root/zoosync"

rc=0
ROOT="$ROOT" LOGS="$LOGS" PORT="$PORT" EXTRA_CA="$EXTRA_CA" unshare --mount --pid --fork --mount-proc --propagation private "$0" --inner || rc=$?
if grep -q " $ROOT/" /proc/mounts; then say "warning: mounts left under $ROOT"; rc=1; fi
# Kept after a failure (to look into it: REUSE_ROOT=1 runs again in it).
if [ -z "${KEEP_ROOT:-}" ] && [ "$rc" -eq 0 ] && ! grep -q " $ROOT/" /proc/mounts; then rm -rf --one-file-system "$ROOT"; fi
if [ "$rc" -eq 0 ]; then say "PASSED: make test and make run on a bare Debian $SUITE"; else say "FAILED (logs in $LOGS)"; fi
exit "$rc"
