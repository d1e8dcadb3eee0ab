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

four() { # four-letter word to a port, prints the reply
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && printf '%s' '$2' >&3 && cat <&3" 2>/dev/null || true
}

node_mode() { four "$1" srvr | sed -n 's/^Mode: //p'; }

launch() { # DIR I
  local nd="$1/node$2"
  ( cd "$nd" && exec "$JAVA" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
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
    until [ -n "$(node_mode "$port")" ]; do
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
  local ports=() peers=() elects=()
  for i in $(seq 1 "$n"); do ports+=("$(pick_port)"); peers+=("$(pick_port)"); elects+=("$(pick_port)"); done
  local connect=""
  for i in $(seq 1 "$n"); do
    local nd="$dir/node$i"; mkdir -p "$nd/data"
    echo "$i" >"$nd/data/myid"; echo "${ports[$((i-1))]}" >"$nd/port"
    {
      echo "tickTime=${ZK_TICK_MS:-500}"
      echo "initLimit=20"; echo "syncLimit=10"
      echo "dataDir=$nd/data"
      echo "clientPort=${ports[$((i-1))]}"; echo "clientPortAddress=127.0.0.1"
      echo "maxClientCnxns=0"; echo "4lw.commands.whitelist=srvr,ruok,mntr"
      echo "admin.enableServer=false"; echo "autopurge.purgeInterval=0"
      echo "minSessionTimeout=1000"
      if [ "$n" -gt 1 ]; then
        for j in $(seq 1 "$n"); do
          echo "server.$j=127.0.0.1:${peers[$((j-1))]}:${elects[$((j-1))]}"
        done
      else
        echo "standaloneEnabled=true"
      fi
    } >"$nd/zoo.cfg"
    connect="${connect:+$connect,}127.0.0.1:${ports[$((i-1))]}"
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
                echo "$i $pid $p $(node_mode "$p")"
              done ;;
  *) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
