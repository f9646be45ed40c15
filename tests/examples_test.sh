#!/usr/bin/env bash
# End-to-end check of the echo examples as a user runs them: echoserv on an ephemeral port with
# two shards, echoclient's exact output, --help and both flag spellings, and a clean exit 0 on
# SIGTERM.
set -euo pipefail

RUNFILES="${TEST_SRCDIR:-$PWD/..}/whorl"
SERV="$RUNFILES/examples/echoserv"
CLIENT="$RUNFILES/examples/echoclient"
TMP="${TEST_TMPDIR:-$(mktemp -d)}"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$SERV" --help | grep -q -- "--shards" || fail "echoserv --help does not list --shards"
"$CLIENT" --help | grep -q -- "--host" || fail "echoclient --help does not list --host"
set +e
"$SERV" --no-such-flag >/dev/null 2>"$TMP/err"; rc=$?
set -e
[[ $rc == 2 ]] || fail "unknown flag should exit 2, got $rc"
grep -q "unknown flag --no-such-flag" "$TMP/err" || fail "unknown flag error text: $(cat "$TMP/err")"

"$SERV" --port=0 --interface 127.0.0.1 --shards 2 2>"$TMP/serv.log" &
pid=$!
trap 'kill -9 $pid 2>/dev/null || true' EXIT
port=""
for _ in $(seq 1 200); do
  port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$TMP/serv.log" | head -1)
  [[ -n "$port" ]] && break
  kill -0 $pid 2>/dev/null || fail "echoserv exited: $(cat "$TMP/serv.log")"
  sleep 0.05
done
[[ -n "$port" ]] || fail "echoserv never said where it listens"
grep -q "2 shards" "$TMP/serv.log" || fail "expected 2 shards in: $(cat "$TMP/serv.log")"

out=$("$CLIENT" --port "$port" --host=127.0.0.1)
expected=$'receive: Hello, world!\nreceive: What a fine day it is.\nreceive: Bye-bye!\nconnection lost: Connection was closed cleanly.'
[[ "$out" == "$expected" ]] || fail "echoclient printed:
$out"

# Plain peers too: Python's socket module.
python3 - "$port" <<'PY'
import socket, sys, os
data = os.urandom(1 << 20)
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(data)
s.shutdown(socket.SHUT_WR)
got = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    got += b
assert got == data, (len(got), len(data))
PY

kill -TERM $pid
set +e
wait $pid; rc=$?
set -e
trap - EXIT
[[ $rc == 0 ]] || fail "echoserv exit code after SIGTERM: $rc"
grep -q "stopped" "$TMP/serv.log" || fail "no stop message"

# A client with nobody listening fails clearly and exits non-zero.
set +e
out=$("$CLIENT" --port "$port" --host 127.0.0.1); rc=$?
set -e
[[ $rc != 0 ]] || fail "echoclient should fail with no server"
[[ "$out" == *"connection failed: connect to 127.0.0.1:$port: Connection refused"* ]] || fail "refusal text: $out"
echo "examples_test: all checks passed"
