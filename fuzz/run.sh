#!/usr/bin/env bash
# Runs the libFuzzer targets one after the other, each for SECONDS.
#
#   fuzz/run.sh BUILD_DIR SECONDS [target ...]      (default: every target)
#
# Each target starts from its committed seeds (fuzz/corpus/<t>/) plus what
# earlier runs found (BUILD_DIR/corpus/<t>/, where new inputs are written;
# the committed seeds are never modified). A crash, leak, undefined
# behaviour, timeout (10 s per input) or out-of-memory (2 GiB) stops that
# target and leaves the input in BUILD_DIR/crashes/<t>/ (crash-*, leak-*,
# timeout-*, oom-*); the script goes on with the others and exits 1 at the
# end if any failed. Reproduce with: BUILD_DIR/fuzz_<t> BUILD_DIR/crashes/<t>/<file>
# Each run appends a line to BUILD_DIR/fuzz-runs.tsv (date, target,
# seconds, executions, exit status): what docs/FUZZING.md totals.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
build="${1:?usage: fuzz/run.sh BUILD_DIR SECONDS [target ...]}"
secs="${2:?usage: fuzz/run.sh BUILD_DIR SECONDS [target ...]}"
shift 2
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for f in "$here"/fuzz_*.c; do t="$(basename "$f" .c)"; targets+=("${t#fuzz_}"); done
fi

export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"

failed=()
mkdir -p "$build/logs"
for t in "${targets[@]}"; do
  bin="$build/fuzz_$t"
  if [ ! -x "$bin" ]; then echo "fuzz: $bin is missing (make build-fuzz)" >&2; failed+=("$t"); continue; fi
  mkdir -p "$build/corpus/$t" "$build/crashes/$t"
  opts=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$build/crashes/$t/")
  [ -f "$here/dict/$t.dict" ] && opts+=(-dict="$here/dict/$t.dict")
  log="$build/logs/$t.log"
  start=$(date +%s)
  "$bin" "${opts[@]}" "$build/corpus/$t" "$here/corpus/$t" >"$log" 2>&1
  rc=$?
  took=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  printf '%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$t" "$took" "${execs:-?}" "$rc" >>"$build/fuzz-runs.tsv"
  if [ "$rc" -ne 0 ]; then
    failed+=("$t")
    echo "fuzz_$t: FAILED (exit $rc) after ${took}s; input in $build/crashes/$t/:" >&2
    ls -1 "$build/crashes/$t/" >&2
    grep -E 'ERROR|SUMMARY|property failed|runtime error' "$log" | head -20 >&2
    echo "  full log: $log" >&2
  else
    echo "fuzz_$t: ok, ${execs:-?} inputs in ${took}s, corpus $(ls "$build/corpus/$t" | wc -l) (+$(ls "$here/corpus/$t" | wc -l) seeds)"
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]}" >&2
  exit 1
fi
