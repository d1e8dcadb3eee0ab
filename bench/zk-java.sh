#!/usr/bin/env bash
# The JVM for the benchmarks' ZooKeeper: scripts/zk.sh runs "$JAVA" with the
# test settings (-Xmx256m, C1 only). For benchmarks the server gets the full
# JIT and a heap of BENCH_ZK_HEAP (default 1g; B6 holds a million znodes).
args=()
for a in "$@"; do
  case "$a" in
    -Xmx*) args+=("-Xmx${BENCH_ZK_HEAP:-1g}") ;;
    -XX:TieredStopAtLevel=*) ;;
    *) args+=("$a") ;;
  esac
done
exec "${BENCH_REAL_JAVA:-java}" "${args[@]}"
