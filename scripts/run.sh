#!/usr/bin/env bash
# `make run`: a local ZooKeeper and one gateway on http://127.0.0.1:8080
# (override with PORT=...), with the store "todos". Data stays in .run/
# between runs; Ctrl-C stops both (each by its own pid).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
bin="${1:-$here/build/zoosyncd}"
port="${PORT:-8080}"
state="$here/.run"
mkdir -p "$state"

gw_pid=""
cleanup() {
  trap - EXIT INT TERM
  if [ -n "$gw_pid" ] && kill -0 "$gw_pid" 2>/dev/null; then
    kill -TERM "$gw_pid" 2>/dev/null || true
    wait "$gw_pid" 2>/dev/null || true
  fi
  "$here/scripts/zk.sh" stop "$state/zk"
  echo "stopped."
}
trap cleanup EXIT INT TERM

if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "run: port $port is in use; try PORT=8081 make run" >&2
  exit 1
fi

"$here/scripts/zk.sh" stop "$state/zk"   # a leftover from a killed run
old_tree=""
[ -f "$state/zk/node1/zoo.cfg" ] && [ ! -f "$state/zk.acl-applied" ] && old_tree=yes
if [ -f "$state/zk/node1/zoo.cfg" ]; then
  "$here/scripts/zk.sh" start-node "$state/zk" 1 >/dev/null
  zk="$(cat "$state/zk/connect")"
else
  zk="$("$here/scripts/zk.sh" start "$state/zk")"
fi
echo "ZooKeeper: $zk (data in $state/zk)"

# The gateway's ZooKeeper identity (digest scheme): every znode it creates
# is writable by it alone (readable by all). Made once, kept in .run/.
digest="$state/zk.digest"
if [ ! -s "$digest" ]; then
  (umask 077; printf 'zoosync:%s\n' "$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$digest")
fi
apply=()
# A .run/ from before the digest identity: put the ACL on its tree once.
[ -n "$old_tree" ] && apply+=(--zk-apply-acl)

web=()
[ -f "$here/web/index.html" ] && web+=(--web "$here/web")
[ -f "$here/client/zoosync.js" ] && web+=(--client-dir "$here/client")
"$bin" --listen "127.0.0.1:$port" --zk "$zk" --zk-digest-file "$digest" "${apply[@]}" --create-store todos "${web[@]}" &
gw_pid=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && { touch "$state/zk.acl-applied"; break; }
  kill -0 "$gw_pid" 2>/dev/null || { echo "run: zoosyncd exited" >&2; exit 1; }
  sleep 0.1
done
curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 || { echo "run: zoosyncd is not ready after 10 s" >&2; exit 1; }

# The todos store's schema (web/todos.schema.json): every gateway refuses a
# value that does not match it (400 invalid_value, or "rejected" in a push).
# A store PUT changes only the fields it names, so this is safe on every
# start (200 when the store is unchanged or updated).
schema_body="$(printf '{"schema":%s}' "$(cat "$here/web/todos.schema.json")")"
if ! out="$(curl -sS -XPUT -H 'Content-Type: application/json' --data-binary "$schema_body" \
            -w '\n%{http_code}' "http://127.0.0.1:$port/v1/stores/todos")" || [[ "${out##*$'\n'}" != 20? ]]; then
  echo "run: could not set the schema of the store todos: ${out:-no answer}" >&2
  exit 1
fi
echo "Store todos: schema set from web/todos.schema.json (title 1-200 characters, done a boolean, createdAt)"

cat <<MSG

zoosync is running: open http://127.0.0.1:$port for the demo (store "todos").
The API, with curl:
  curl -s http://127.0.0.1:$port/v1/stores/todos
  curl -s -XPOST -H 'Content-Type: application/json' http://127.0.0.1:$port/v1/stores/todos/push \\
       -d '{"client":"me","mutations":[{"id":1,"key":"todo:1","op":"put","value":{"title":"milk","done":false},"base":0}]}'
  curl -s http://127.0.0.1:$port/v1/stores/todos/changes
A value the schema refuses (a title over 200 characters, another field) is
400 invalid_value, or "rejected" in a push; the demo's "Try an invalid write"
shows the client rolling it back.
Ctrl-C stops ZooKeeper and the gateway.
MSG
wait "$gw_pid"
