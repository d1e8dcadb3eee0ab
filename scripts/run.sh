#!/usr/bin/env bash
# `make run`: a local ZooKeeper and one gateway on http://127.0.0.1:8080
# (override with PORT=...), with the store "todos" shared by the demo users
# (DEMO_USERS, default "alice bob"). Authentication is on, with a development
# secret made once in .run/jwt.secret; each user gets a token limited to the
# keys users/<user>/ and a link with it in the URL fragment. Data stays in
# .run/ between runs; Ctrl-C stops both (each by its own pid).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
bin="${1:-$here/build/zoosyncd}"
cli="$(dirname "$bin")/zoosync"
port="${PORT:-8080}"
users="${DEMO_USERS:-alice bob}"
ttl="${DEMO_TOKEN_TTL:-86400}"   # the gateway's --jwt-max-lifetime default: a day
state="$here/.run"
mkdir -p "$state"
[ -x "$cli" ] || { echo "run: $cli is missing: build first (make build)" >&2; exit 1; }
[[ "$ttl" =~ ^[0-9]+$ ]] && [ "$ttl" -ge 60 ] && [ "$ttl" -le 86400 ] \
  || { echo "run: DEMO_TOKEN_TTL: seconds from 60 to 86400 (the gateway refuses tokens living longer than a day)" >&2; exit 1; }
for u in $users; do
  [[ "$u" =~ ^[A-Za-z0-9._-]{1,64}$ ]] || { echo "run: DEMO_USERS: '$u' is not a plain name (letters, digits, . _ -)" >&2; exit 1; }
done

# The development secret the gateway verifies tokens with (HS256): 48
# random bytes, base64 (64 characters), made once and kept in .run/ so that
# links printed by an earlier run keep working until they expire. Delete
# the file to invalidate every token made with it.
secret="$state/jwt.secret"
if [ ! -s "$secret" ]; then
  (umask 077; head -c 48 /dev/urandom | base64 -w0 >"$secret.tmp" && mv "$secret.tmp" "$secret")
fi
token() { "$cli" token --sub "$1" --scope "$2" --ttl "$3" --secret-file "$secret"; }

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
"$bin" --listen "127.0.0.1:$port" --zk "$zk" --zk-digest-file "$digest" "${apply[@]}" --jwt-secret-file "$secret" \
  --create-store todos "${web[@]}" &
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
# Only an admin may change a store: a token for that request alone.
admin="$(token run.sh admin 60)"
schema_body="$(printf '{"schema":%s}' "$(cat "$here/web/todos.schema.json")")"
if ! out="$(curl -sS -XPUT -H 'Content-Type: application/json' -H "Authorization: Bearer $admin" --data-binary "$schema_body" \
            -w '\n%{http_code}' "http://127.0.0.1:$port/v1/stores/todos")" || [[ "${out##*$'\n'}" != 20? ]]; then
  echo "run: could not set the schema of the store todos: ${out:-no answer}" >&2
  exit 1
fi
echo "Store todos: schema set from web/todos.schema.json (title 1-200 characters, done a boolean, createdAt)"

# One token per demo user: read and write users/<user>/ of todos, nothing
# else ({sub} is the token's sub; the trailing / keeps alice from alice2).
scope='todos:read:users/{sub}/ todos:write:users/{sub}/'
links=""
first=""
for u in $users; do
  t="$(token "$u" "$scope" "$ttl")"
  [ -n "$first" ] || first="$t"
  links+="$(printf '  %-8s http://127.0.0.1:%s/#token=%s' "$u" "$port" "$t")"$'\n'
done
until="$(date -d "@$(( $(date +%s) + ttl ))" '+%F %T %Z' 2>/dev/null || echo "in $ttl s")"
first_user="${users%% *}"

cat <<MSG

zoosync is running on http://127.0.0.1:$port with authentication on.
The store "todos" holds every user's todos; each token below may read and
write only the keys users/<user>/ (scope "$scope").
Open each link in a browser of its own (or a private window) to sign in:

$links
The token is in the part after #, which the browser never sends to the
server; the page removes it from the address bar. These links work until
$until (each run prints fresh ones; the secret is kept in .run/jwt.secret).
Opened without a link, the page explains this. "Log out" deletes that
browser's copy (every tab of the user stops syncing); the server keeps the todos.

The API, with curl, as $first_user:
  TOKEN='$first'
  curl -s -H "Authorization: Bearer \$TOKEN" 'http://127.0.0.1:$port/v1/stores/todos/changes?prefix=users/$first_user/'
  curl -s -XPUT -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' \\
       http://127.0.0.1:$port/v1/stores/todos/records/users%2F$first_user%2Fmilk -d '{"title":"milk","done":false}'
  curl -s -H "Authorization: Bearer \$TOKEN" http://127.0.0.1:$port/v1/stores/todos/records/users%2Fsomeone-else%2Fx   # 403
Other tokens: $cli token --sub NAME --scope '$scope' --ttl 3600 --secret-file $secret
A value the schema refuses (a title over 200 characters, another field) is
400 invalid_value, or "rejected" in a push; the demo's "Try an invalid write"
shows the client rolling it back.
Ctrl-C stops ZooKeeper and the gateway.
MSG
wait "$gw_pid"
