#!/usr/bin/env bash
# ZooKeeper launcher shared by `make run` and the tests.
#
#   zk.sh start DIR [NODES]   start a standalone server (NODES=1, default) or a
#                             NODES-node ensemble on 127.0.0.1, free ports, data
#                             under DIR; waits until every node serves; prints
#                             the connect string (also in DIR/connect).
#   zk.sh stop DIR            stop every node of DIR by its pid.
#   zk.sh stop-node DIR I     stop node I (1-based) by its pid (SIGKILL with -9).
#   zk.sh start-node DIR I    start node I again with its old config and data.
#   zk.sh status DIR          one line per node: I PID PORT MODE
#
# Network namespaces (the partition tests, tests/lib/netns.mjs): with
# ZK_NETNS="ns1 ns2 ns3" and ZK_ADDRS="10.x.y.11 10.x.y.12 10.x.y.13" (one
# per node, created by the caller), `start` runs node I in namespace I
# (`ip netns exec`, which execs: the pid is Java's) on port 2181 of address
# I (peers on 2888/3888 there), listening on every address of its
# namespace, and the four-letter probes are sent from inside the namespace
# (to its 127.0.0.1), so a node cut off from the network still answers
# `status`. The namespace and address are kept in DIR/nodeI/{netns,addr}.
#
# Logs stay in DIR/nodeI/zk.log; the caller removes DIR when it wants to.
set -euo pipefail

JAVA=${JAVA:-java}
CP="/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar"

die() { echo "zk.sh: $*" >&2; exit 1; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Ports are drawn below the kernel's ephemeral range, where outgoing
# connections take their local ports (a port used that way looks free to a
# connect probe, yet cannot be bound).
pick_port() {
  local lo=10000 hi p
  hi=$(awk '{print $1 - 1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32767)
  [ "$hi" -gt $((lo + 1000)) ] || hi=32767
  for _ in $(seq 1 200); do
    p=$(( lo + (RANDOM * 32768 + RANDOM) % (hi - lo) ))
    if port_free "$p"; then echo "$p"; return 0; fi
  done
  die "no free port found"
}

four() { # four-letter word to a port, prints the reply; NS: the node's namespace, if any
  local pre=()
  [ -n "${3:-}" ] && pre=(ip netns exec "$3")
  "${pre[@]}" timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && printf '%s' '$2' >&3 && cat <&3" 2>/dev/null || true
}

node_ns() { cat "$1/netns" 2>/dev/null || true; } # NODEDIR

node_mode() { four "$1" srvr "${2:-}" | sed -n 's/^Mode: //p'; } # PORT [NS]

launch() { # DIR I
  local nd="$1/node$2" pre=()
  local ns; ns=$(node_ns "$nd")
  [ -n "$ns" ] && pre=(ip netns exec "$ns")
  ( cd "$nd" && exec "${pre[@]}" "$JAVA" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
      -Dorg.slf4j.simpleLogger.defaultLogLevel="${ZK_LOG_LEVEL:-warn}" \
      -Dzookeeper.admin.enableServer=false -Dzookeeper.jmx.log4j.disable=true \
      -cp "$CP" org.apache.zookeeper.server.quorum.QuorumPeerMain "$nd/zoo.cfg" \
      >>"$nd/zk.log" 2>&1 ) &
  echo $! >"$nd/pid"
}

wait_ready() { # DIR I...
  local dir="$1"; shift
  local deadline=$(( $(date +%s) + ${ZK_START_TIMEOUT:-60} ))
  for i in "$@"; do
    local port; port=$(cat "$dir/node$i/port")
    until [ -n "$(node_mode "$port" "$(node_ns "$dir/node$i")")" ]; do
      kill -0 "$(cat "$dir/node$i/pid")" 2>/dev/null || { tail -20 "$dir/node$i/zk.log" >&2; die "node $i exited"; }
      [ "$(date +%s)" -lt "$deadline" ] || die "node $i not ready in time (log: $dir/node$i/zk.log)"
      sleep 0.2
    done
  done
}

cmd_start() {
  local try
  for try in 1 2 3; do
    if (start_once "$@"); then return 0; fi
    cmd_stop "$1"
    grep -qs "Address already in use" "$1"/node*/zk.log || return 1
    echo "zk.sh: a port was taken meanwhile; trying other ports" >&2
    rm -rf "$1"/node[0-9]*
  done
  return 1
}

start_once() {
  local dir="$1" n="${2:-1}"
  [ "$n" -ge 1 ] || die "NODES must be >= 1"
  mkdir -p "$dir"; dir="$(cd "$dir" && pwd)"
  local ports=() peers=() elects=() addrs=() nss=()
  if [ -n "${ZK_NETNS:-}" ]; then
    read -r -a nss <<<"$ZK_NETNS"; read -r -a addrs <<<"${ZK_ADDRS:-}"
    [ "${#nss[@]}" -eq "$n" ] && [ "${#addrs[@]}" -eq "$n" ] || die "ZK_NETNS and ZK_ADDRS need $n entries each"
    for i in $(seq 1 "$n"); do ports+=(2181); peers+=(2888); elects+=(3888); done
  else
    for i in $(seq 1 "$n"); do
      ports+=("$(pick_port)"); peers+=("$(pick_port)"); elects+=("$(pick_port)"); addrs+=(127.0.0.1)
    done
  fi
  local connect=""
  for i in $(seq 1 "$n"); do
    local nd="$dir/node$i"; mkdir -p "$nd/data"
    echo "$i" >"$nd/data/myid"; echo "${ports[$((i-1))]}" >"$nd/port"
    echo "${addrs[$((i-1))]}" >"$nd/addr"
    if [ "${#nss[@]}" -gt 0 ]; then echo "${nss[$((i-1))]}" >"$nd/netns"; else rm -f "$nd/netns"; fi
    {
      echo "tickTime=${ZK_TICK_MS:-500}"
      echo "initLimit=20"; echo "syncLimit=10"
      echo "dataDir=$nd/data"
      echo "clientPort=${ports[$((i-1))]}"
      if [ "${#nss[@]}" -gt 0 ]; then echo "clientPortAddress=0.0.0.0"; else echo "clientPortAddress=127.0.0.1"; fi
      echo "maxClientCnxns=0"; echo "4lw.commands.whitelist=srvr,ruok,mntr,cons"
      echo "admin.enableServer=false"; echo "autopurge.purgeInterval=0"
      echo "minSessionTimeout=1000"
      if [ "$n" -gt 1 ]; then
        for j in $(seq 1 "$n"); do
          echo "server.$j=${addrs[$((j-1))]}:${peers[$((j-1))]}:${elects[$((j-1))]}"
        done
      else
        echo "standaloneEnabled=true"
      fi
    } >"$nd/zoo.cfg"
    connect="${connect:+$connect,}${addrs[$((i-1))]}:${ports[$((i-1))]}"
  done
  echo "$connect" >"$dir/connect"
  echo "$n" >"$dir/nodes"
  for i in $(seq 1 "$n"); do launch "$dir" "$i"; done
  wait_ready "$dir" $(seq 1 "$n")
  echo "$connect"
}

stop_pid() { # PIDFILE SIGNAL
  [ -f "$1" ] || return 0
  local pid; pid=$(cat "$1")
  if kill -0 "$pid" 2>/dev/null; then
    kill "-$2" "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$1"
}

cmd_stop() {
  local dir="$1"; [ -d "$dir" ] || return 0
  for nd in "$dir"/node[0-9]*; do [ -d "$nd" ] && stop_pid "$nd/pid" TERM; done
  return 0
}

case "${1:-}" in
  start)      [ $# -ge 2 ] || die "usage: zk.sh start DIR [NODES]"; cmd_start "$2" "${3:-1}" ;;
  stop)       [ $# -ge 2 ] || die "usage: zk.sh stop DIR"; cmd_stop "$2" ;;
  stop-node)  [ $# -ge 3 ] || die "usage: zk.sh stop-node DIR I [-9]"
              sig=TERM; [ "${4:-}" = "-9" ] && sig=KILL; stop_pid "$2/node$3/pid" "$sig" ;;
  start-node) [ $# -ge 3 ] || die "usage: zk.sh start-node DIR I"; launch "$2" "$3"; wait_ready "$2" "$3" ;;
  status)     [ $# -ge 2 ] || die "usage: zk.sh status DIR"
              for nd in "$2"/node[0-9]*; do
                i=${nd##*node}; p=$(cat "$nd/port"); pid=$(cat "$nd/pid" 2>/dev/null || echo -)
                echo "$i $pid $p $(node_mode "$p" "$(node_ns "$nd")")"
              done ;;
  *) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
