#!/usr/bin/env bash
# zoosync benchmarks: `make bench` runs `bench/run.sh build`.
#
#   bench/run.sh BUILD [--smoke] [--only B1,B4,...]
#
# Runs B1..B11 (see docs/PERFORMANCE.md) one after the other. Each starts its
# own standalone ZooKeeper (scripts/zk.sh, fsync on) and gateway(s) on
# loopback, measures its figure and its ceiling in the same run, prints one
# JSON line per figure on stdout, and stops every process it started by its
# pid. Progress goes to stderr; the JSON lines are also kept in
# BUILD/bench-results.jsonl (BUILD/bench-smoke.jsonl with --smoke).
#
# --smoke: tiny sizes, well under a minute; checks that the benchmarks still
# work (the exit status says whether each one ran, not whether it met its
# target). Without it the full run takes about ten minutes.
#
# Exit status: 0 when every benchmark ran (met or missed targets are in the
# JSON), 1 when one failed to run.
set -uo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
BUILD="${1:-}"
[ -n "$BUILD" ] || { echo "usage: bench/run.sh BUILD [--smoke] [--only B1,B2,...]" >&2; exit 2; }
shift
BUILD="$(cd "$BUILD" 2>/dev/null && pwd)" || { echo "bench/run.sh: no build dir $1" >&2; exit 2; }
SMOKE=""
ONLY="B1,B2,B3,B4,B5,B6,B6c,B7,B8,B9,B10,B11"
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) SMOKE="--smoke" ;;
    --only) ONLY="$2"; shift ;;
    *) echo "bench/run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

for b in zoosyncd bench/zkbench bench/ssesub bench/ssefloor; do
  [ -x "$BUILD/$b" ] || { echo "bench/run.sh: $BUILD/$b is missing: build first (make build)" >&2; exit 2; }
done
command -v node >/dev/null || { echo "bench/run.sh: node is missing" >&2; exit 2; }

BENCH_TMP="$(mktemp -d "${TMPDIR:-/tmp}/zoosync-bench.XXXXXX")"
export BENCH_TMP
RESULTS="$BUILD/bench-results.jsonl"
[ -n "$SMOKE" ] && RESULTS="$BUILD/bench-smoke.jsonl"
: >"$RESULTS"
CHILD=""
FAILED=0

# Stops what is left: the running benchmark (which stops its own processes),
# then, should it have died without doing so, gateways by their pid files and
# ZooKeepers by zk.sh.
cleanup() {
  if [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; then
    kill -TERM "$CHILD" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$CHILD" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$CHILD" 2>/dev/null
  fi
  for f in "$BENCH_TMP"/*/gateway*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null && grep -q zoosyncd "/proc/$pid/cmdline" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null; fi
  done
  for d in "$BENCH_TMP"/*/zk[0-9]*; do
    [ -d "$d" ] && "$REPO/scripts/zk.sh" stop "$d" >/dev/null 2>&1
  done
}
on_signal() { echo "bench/run.sh: interrupted" >&2; cleanup; exit 130; }
trap on_signal INT TERM HUP
trap cleanup EXIT

selected() { case ",$ONLY," in *",$1,"*) return 0 ;; esac; return 1; }

run() { # "ID[,ID]" SCRIPT ARGS...: the figures ID... come from one run of SCRIPT
  local ids="$1" script="$2"; shift 2
  echo "== $ids ($(date +%T))" >&2
  local out="$BENCH_TMP/${ids//,/-}.out" t0=$SECONDS
  node "$HERE/$script" --build "$BUILD" $SMOKE "$@" >"$out" &
  CHILD=$!
  wait "$CHILD"
  local rc=$?
  CHILD=""
  cat "$out"
  cat "$out" >>"$RESULTS"
  local id
  for id in ${ids//,/ }; do
    if [ $rc -ne 0 ] || ! grep -q "\"id\":\"$id\"" "$out"; then
      FAILED=1
      printf '{"id":"%s","error":"did not run (exit status %s); logs kept in %s","pass":false}\n' "$id" "$rc" "$BENCH_TMP" | tee -a "$RESULTS"
    fi
  done
  echo "== $ids took $((SECONDS - t0)) s" >&2
}

echo "zoosync benchmarks$([ -n "$SMOKE" ] && echo ' (smoke)'): $(nproc) cores, $(date -u +%FT%TZ), build $BUILD" >&2
selected B1 && run B1 push.mjs --case B1
selected B2 && run B2 push.mjs --case B2
selected B3 && run B3 store.mjs --case B3
selected B4 && run B4 fanout.mjs
selected B5 && run B5 idle.mjs
selected B6 && run B6 store.mjs --case B6
selected B6c && run B6c leader.mjs
# B7 and B8 share one run (one gateway, two browser profiles).
if selected B7 && selected B8; then run B7,B8 browser.mjs --case all
elif selected B7; then run B7 browser.mjs --case B7
elif selected B8; then run B8 browser.mjs --case B8
fi
selected B9 && run B9 scopes.mjs
selected B10 && run B10 schema.mjs
selected B11 && run B11 budget.mjs

# Summary on stderr.
node -e '
const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
const f = (v) => v === null || v === undefined ? "-" : typeof v === "object" ? Object.entries(v).map(([k, x]) => `${k} ${x}`).join(", ") : String(v);
console.error("\n id | figure | value | ceiling | ratio | target | pass");
for (const l of lines) console.error(` ${l.id} | ${l.figure || l.error || l.skipped || ""} | ${f(l.value)} | ${f(l.ceiling)} | ${f(l.ratio)} | ${l.target || ""} | ${l.pass === null ? "skipped" : l.pass ? "yes" : "NO"}`);
' "$RESULTS"

if [ $FAILED -eq 0 ]; then rm -rf "$BENCH_TMP"; else echo "bench/run.sh: a benchmark failed; logs in $BENCH_TMP" >&2; fi
trap - EXIT
cleanup
exit $FAILED
