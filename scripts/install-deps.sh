#!/usr/bin/env bash
# Installs what zoosync needs to build, run and test, on Debian/Ubuntu.
# Idempotent and quiet: when everything is present it prints nothing and
# touches no package list. Run as root (or with sudo available).
set -euo pipefail

APT_PKGS=(
  gcc make cmake pkg-config                       # build
  clang libclang-rt-dev                            # fuzz targets (libFuzzer, ASan, UBSan)
  libzookeeper-mt-dev libmicrohttpd-dev            # ZooKeeper C client, HTTP server
  libgnutls28-dev openssl                          # HTTPS (--tls-cert); test certificates
  libjansson-dev libjwt-dev libglib2.0-dev         # JSON, JWT, containers
  libjemalloc-dev                                  # zoosyncd's allocator
  libcmocka-dev libssl-dev libcurl4-openssl-dev    # C unit tests, key parsing, the CLI
  libpcre2-dev json-schema-test-suite              # schema regexes; the draft-07 test suite
  zookeeper default-jre-headless                   # the ZooKeeper server (Java)
  nodejs npm                                       # integration and browser tests
  chromium                                         # real-browser tests
  procps curl ca-certificates                      # pgrep/kill, health checks
  iproute2 nftables                                # partition tests: namespaces, veths, packet loss
)

missing=()
for p in "${APT_PKGS[@]}"; do
  # nodejs from another source (e.g. nodesource) ships npm itself.
  if [ "$p" = npm ] && command -v npm >/dev/null 2>&1; then continue; fi
  if [ "$p" = nodejs ] && command -v node >/dev/null 2>&1; then continue; fi
  if [ "$p" = default-jre-headless ] && command -v java >/dev/null 2>&1; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages used by the tests (playwright-core drives Debian's chromium;
# it never downloads a browser of its own). Installed again when the lock
# file is newer than what node_modules holds.
here="$(cd "$(dirname "$0")/.." && pwd)"
if [ -f "$here/package.json" ]; then
  stamp="$here/node_modules/.package-lock.json"
  if [ ! -f "$stamp" ] || { [ -f "$here/package-lock.json" ] && [ "$here/package-lock.json" -nt "$stamp" ]; }; then
    echo "install-deps: npm packages"
    if [ -f "$here/package-lock.json" ]; then
      (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    else
      (cd "$here" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
    fi
  fi
fi
