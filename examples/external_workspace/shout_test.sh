#!/usr/bin/env bash
# Starts shout on an ephemeral port, checks with Python's ssl module that it serves TLS as
# example.com (trusting public.pem) and answers a line in upper case, then stops it with SIGTERM,
# which must exit 0.
#   shout_test.sh SHOUT SERVER_PEM PUBLIC_PEM
set -euo pipefail
shout=$1 cert=$2 ca=$3
log="${TEST_TMPDIR:-$(mktemp -d)}/shout.log"

"$shout" --port 0 --interface 127.0.0.1 --shards 1 --cert "$cert" 2>"$log" &
pid=$!
trap 'kill -9 $pid 2>/dev/null || true' EXIT
port=""
for _ in $(seq 1 200); do
  port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log")
  [[ -n "$port" ]] && break
  kill -0 "$pid" 2>/dev/null || { echo "FAIL: shout exited: $(cat "$log")"; exit 1; }
  sleep 0.05
done
[[ -n "$port" ]] || { echo "FAIL: shout never said where it listens: $(cat "$log")"; exit 1; }

python3 - "$port" "$ca" <<'PY'
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
context = ssl.create_default_context(cafile=ca)  # verifies the chain and the name
with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
    with context.wrap_socket(raw, server_hostname="example.com") as tls:
        tls.sendall(b"hello, whorl\r\n")
        answer = b""
        while not answer.endswith(b"\r\n"):
            chunk = tls.recv(100)
            if not chunk:
                break
            answer += chunk
        print(f"{tls.version()}: {answer!r}")
        assert answer == b"HELLO, WHORL\r\n", answer
PY

kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
[[ $rc == 0 ]] || { echo "FAIL: shout exit $rc after SIGTERM: $(cat "$log")"; exit 1; }
echo "ok: shout answered in upper case over TLS and exited 0 on SIGTERM"
