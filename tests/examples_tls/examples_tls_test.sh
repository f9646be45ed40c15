#!/usr/bin/env bash
# End-to-end checks of the TLS examples and tools as a user runs them: each server on an
# ephemeral port (parsed from its "listening on" log line), the seed's client programs against
# them with their exact output, check_server_certificate's three outcomes, https_hello against
# curl, openssl s_client and Python's ssl module, and a clean exit 0 on SIGTERM.
set -euo pipefail

RUNFILES="${TEST_SRCDIR:-$PWD/..}/whorl"
EX="$RUNFILES/examples"
CHECK="$RUNFILES/tools/check_server_certificate"
CA="$RUNFILES/certs/public.pem"
CERTS="$RUNFILES/certs"
PY_CLIENT="$RUNFILES/tests/examples_tls/http_client.py"
TMP="${TEST_TMPDIR:-$(mktemp -d)}"
CLIENT_TIMEOUT=30

source "$RUNFILES/tests/server_control.sh"

# start NAME BINARY [ARGS...]: starts a server on 127.0.0.1, port 0, two shards; sets
# ${NAME}_pid and ${NAME}_port. Its stdout is $TMP/NAME.out, its log $TMP/NAME.log.
start() {
  local name=$1
  shift
  launch "$name" "$@" --port=0 --interface 127.0.0.1 --shards 2
}


# run CMD...: runs a client with a time limit; sets $out (stdout), $err (stderr) and $rc.
run() {
  set +e
  out=$(timeout "$CLIENT_TIMEOUT" "$@" 2>"$TMP/stderr")
  rc=$?
  set -e
  err=$(cat "$TMP/stderr")
  [[ $rc != 124 ]] || fail "timed out: $*"
}

# --- bad start-up material: a clear error and a non-zero exit before listening ----------------
for bad in "$CERTS/test/mismatch.pem:private key does not match certificate" \
           "/nonexistent/server.pem:cannot read /nonexistent/server.pem"; do
  file=${bad%%:*}
  want=${bad#*:}
  set +e
  timeout "$CLIENT_TIMEOUT" "$EX/echoserv_ssl" --port=0 --interface 127.0.0.1 --cert "$file" \
    >"$TMP/bad.out" 2>"$TMP/bad.log"
  rc=$?
  set -e
  [[ $rc != 0 && $rc != 124 ]] || fail "echoserv_ssl with $file: exit $rc"
  grep -q "$want" "$TMP/bad.log" || fail "echoserv_ssl with $file: $(cat "$TMP/bad.log")"
  ! grep -q "listening on" "$TMP/bad.log" || fail "echoserv_ssl listened with $file"
done
echo "ok: a mismatched key or an unreadable file stops the server before it listens, with the reason"

ECHO_EXPECTED=$'receive: Hello, world!\nreceive: What a fine day it is.\nreceive: Bye-bye!\nconnection lost: Connection was closed cleanly.'

# --- echoserv_ssl / echoclient_ssl, and check_server_certificate against it -------------------
start echo "$EX/echoserv_ssl"
run "$EX/echoclient_ssl" --port "$echo_port"
[[ $rc == 0 && "$out" == "$ECHO_EXPECTED" ]] || fail "echoclient_ssl (rc $rc) printed:
$out
$err"
echo "ok: echoclient_ssl against echoserv_ssl"

run "$CHECK" --ca "$CA" --hostname example.com 127.0.0.1 "$echo_port"
[[ $rc == 0 ]] || fail "check_server_certificate (trusted) exit $rc: $out $err"
[[ "$out" == "OK: <Certificate Subject=example.com"* ]] || fail "check_server_certificate (trusted): $out"
[[ "$(sed -n 2p <<<"$out")" == "Lost." ]] || fail "check_server_certificate: no Lost. line: $out"
echo "ok: check_server_certificate: $(head -1 <<<"$out")"

run "$CHECK" --hostname example.com localhost "$echo_port"
[[ $rc == 1 ]] || fail "check_server_certificate (platform trust) exit $rc: $out $err"
grep -q "^BAD: .*certificate verify failed" <<<"$out" || fail "platform trust: $out $err"
echo "ok: check_server_certificate: $(grep BAD <<<"$out")"

run "$CHECK" --ca "$CA" --hostname wrong.example localhost "$echo_port"
[[ $rc == 1 ]] || fail "check_server_certificate (wrong name) exit $rc: $out $err"
grep -q "^BAD: .*hostname mismatch" <<<"$out" || fail "wrong name: $out $err"
echo "ok: check_server_certificate: $(grep BAD <<<"$out")"

stop echo

run "$CHECK" --ca "$CA" 127.0.0.1 "$echo_port"
[[ $rc == 1 && "$out" == "BAD: "*"Connection refused"* ]] || fail "no server: rc $rc: $out $err"
echo "ok: check_server_certificate with no server: $out"

# --- client authentication ---------------------------------------------------------------------
start clientauth "$EX/ssl_clientauth_server"
run "$EX/ssl_clientauth_client" --port "$clientauth_port"
[[ $rc == 0 && "$out" == "$ECHO_EXPECTED" ]] || fail "ssl_clientauth_client (rc $rc) printed:
$out
$err"
echo "ok: ssl_clientauth_client against ssl_clientauth_server"

run "$EX/echoclient_ssl" --port "$clientauth_port"
! grep -q "receive:" <<<"$out" || fail "a client without a certificate got an echo: $out"
[[ $rc != 0 ]] || [[ "$out" == *"connection failed"* ]] || fail "no-certificate client: rc $rc, $out"
echo "ok: echoclient_ssl without a certificate gets nothing echoed (exit $rc): $out"

# The server keeps serving after that.
run "$EX/ssl_clientauth_client" --port "$clientauth_port"
[[ $rc == 0 && "$out" == "$ECHO_EXPECTED" ]] || fail "ssl_clientauth_client after a refused client: $out $err"
stop clientauth

# --- startTLS: starttls_server / starttls_client (the seed's STARTTLS / READY exchange) -----------
start starttls "$EX/starttls_server"
run "$EX/starttls_client" --port "$starttls_port"
[[ $rc == 0 && "$out" == "received: READY" ]] || fail "starttls_client (rc $rc): $out $err"
expected=$'received: plain text\nreceived: STARTTLS\n-- Switching to TLS\nreceived: secure text'
for _ in $(seq 1 100); do
  [[ "$(cat "$TMP/starttls.out")" == "$expected" ]] && break
  sleep 0.05
done
[[ "$(cat "$TMP/starttls.out")" == "$expected" ]] || fail "starttls_server printed:
$(cat "$TMP/starttls.out")"
echo "ok: starttls_client and starttls_server switch the connection to TLS after READY"
# A client that does not trust the server's certificate: the handshake fails after READY, and the
# client says why and exits 1.
run "$EX/starttls_client" --port "$starttls_port" --ca "$CERTS/test/ca.pem"
[[ $rc == 1 && "$out" == $'received: READY\nconnection lost: '*"certificate verify failed"* ]] ||
  fail "starttls_client with the wrong authority (rc $rc): $out $err"
echo "ok: starttls_client with the wrong authority: $(tail -1 <<<"$out")"
stop starttls

# --- ALPN ----------------------------------------------------------------------------------------
start alpn "$EX/alpn_server"
run "$EX/alpn_client" --port "$alpn_port"
[[ $rc == 0 && "$out" == "negotiated: h2" ]] || fail "alpn_client (rc $rc): $out $err"
echo "ok: alpn_client: $out"
run "$EX/alpn_client" --port "$alpn_port" --protocols http/1.1
[[ $rc == 0 && "$out" == "negotiated: http/1.1" ]] || fail "alpn_client http/1.1 (rc $rc): $out $err"
echo "ok: alpn_client --protocols http/1.1: $out"
run "$EX/alpn_client" --port "$alpn_port" --protocols=
[[ $rc == 0 && "$out" == "negotiated: none" ]] || fail "alpn_client offering nothing (rc $rc): $out $err"
echo "ok: alpn_client --protocols= : $out"
run "$EX/alpn_client" --port "$alpn_port" --protocols spdy/3
[[ $rc == 1 && "$out" == "connection failed: "*"no application protocol"* ]] ||
  fail "alpn_client with no overlap (rc $rc): $out $err"
echo "ok: alpn_client with no overlap: $out"
for _ in $(seq 1 100); do
  [[ $(grep -c . "$TMP/alpn.out") -ge 4 ]] && break
  sleep 0.05
done
expected=$'negotiated: h2\nnegotiated: http/1.1\nnegotiated: none\nhandshake failed: TLS handshake failed: no application protocol'
[[ "$(cat "$TMP/alpn.out")" == "$expected" ]] || fail "alpn_server printed:
$(cat "$TMP/alpn.out")"
echo "ok: alpn_server printed each negotiation"
stop alpn

# --- https_hello -----------------------------------------------------------------------------------
start https "$EX/https_hello"
URL="https://example.com:$https_port"
CURL=(curl -sS --max-time 20 --cacert "$CA" --resolve "example.com:$https_port:127.0.0.1")
run "${CURL[@]}" "$URL/"
[[ $rc == 0 && "$out" == "hello world" ]] || fail "curl (rc $rc): $out $err"
echo "ok: curl: $out"

run "${CURL[@]}" -v "$URL/one" "$URL/two"
[[ $rc == 0 && "$out" == $'hello world\nhello world' ]] || fail "curl two URLs (rc $rc): $out $err"
grep -qiE "Re-?using existing connection" <<<"$err" || fail "curl did not reuse the connection: $err"
grep -q "ALPN: server accepted http/1.1" <<<"$err" || fail "curl: no ALPN http/1.1: $err"
echo "ok: curl reuses the connection for two URLs: $(grep -iE "Re-?using" <<<"$err")"

run "${CURL[@]}" -i -X POST -d data "$URL/"
[[ "$out" == "HTTP/1.1 405 Method Not Allowed"* ]] || fail "curl POST: $out $err"
run "${CURL[@]}" --http1.0 -i "$URL/"
[[ $rc == 0 && "$out" == "HTTP/1.1 200 OK"*"Connection: close"*"hello world" ]] ||
  fail "curl --http1.0 (rc $rc): $out $err"
echo "ok: curl POST gets 405, --http1.0 gets 200 and a close"

set +e
out=$(printf 'GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n' |
  timeout "$CLIENT_TIMEOUT" openssl s_client -connect "127.0.0.1:$https_port" -alpn h2,http/1.1 \
    -CAfile "$CA" -verify_hostname example.com -servername example.com -ign_eof 2>&1)
rc=$?
set -e
[[ $rc == 0 ]] || fail "openssl s_client exit $rc: $out"
grep -q "ALPN protocol: http/1.1" <<<"$out" || fail "openssl s_client ALPN: $out"
grep -q "Verify return code: 0 (ok)" <<<"$out" || fail "openssl s_client verification: $out"
grep -q "^hello world" <<<"$out" || fail "openssl s_client response: $out"
echo "ok: openssl s_client -alpn h2,http/1.1 negotiates http/1.1 and gets hello world"

# RFC 9112 §2.2: a request with bare LF line ends, as typed into s_client, gets its answer.
set +e
out=$(printf 'GET / HTTP/1.0\n\n' | timeout "$CLIENT_TIMEOUT" openssl s_client -quiet \
  -connect "127.0.0.1:$https_port" -CAfile "$CA" -servername example.com -ign_eof 2>&1)
rc=$?
set -e
[[ $rc == 0 && "$out" == *"HTTP/1.1 200 OK"*"Connection: close"*"hello world"* ]] ||
  fail "openssl s_client 'GET / HTTP/1.0\n\n' (rc $rc): $out"
echo "ok: openssl s_client 'GET / HTTP/1.0\n\n' gets hello world and a close"

# Raw garbage gets 400 naming the cause and a close, never silence.
set +e
out=$(head -c 4096 /dev/urandom | timeout "$CLIENT_TIMEOUT" openssl s_client -quiet \
  -connect "127.0.0.1:$https_port" -CAfile "$CA" -servername example.com -ign_eof 2>&1)
rc=$?
set -e
[[ $rc == 0 && "$out" == *"HTTP/1.1 400 Bad Request"*"Connection: close"*"bad request: "* ]] ||
  fail "openssl s_client with random bytes (rc $rc): $out"
echo "ok: openssl s_client sending random bytes gets 400 and a close"

python3 "$PY_CLIENT" "$https_port" "$CA" || fail "python ssl checks (above)"
stop https

# --idle-timeout: an idle connection is closed, and the close is logged with its reason.
start https_idle "$EX/https_hello" --idle-timeout 1
python3 "$PY_CLIENT" "$https_idle_port" "$CA" --idle 1 || fail "python idle check (above)"
for _ in $(seq 200); do
  grep -q "idle timeout, no activity for 1 s" "$TMP/https_idle.log" && break
  sleep 0.05
done
grep -q "idle timeout, no activity for 1 s" "$TMP/https_idle.log" ||
  fail "https_hello did not log the idle close: $(cat "$TMP/https_idle.log")"
echo "ok: https_hello --idle-timeout 1 closes an idle connection and logs why"
stop https_idle

# --- tls_file_server: sendFile over TLS (userspace here; kTLS in the VM suite) ----------------
mkdir -p "$TMP/www"
head -c 3000000 /dev/urandom >"$TMP/www/big.bin"
echo "index" >"$TMP/www/index.html"
start files "$EX/tls_file_server" --root "$TMP/www"
FURL="https://example.com:$files_port"
FCURL=(curl -sS --max-time 20 --cacert "$CA" --resolve "example.com:$files_port:127.0.0.1")
run "${FCURL[@]}" "$FURL/big.bin" -o "$TMP/got.bin" "$FURL/"
[[ $rc == 0 && "$out" == "index" ]] || fail "tls_file_server (rc $rc): $out $err"
cmp -s "$TMP/www/big.bin" "$TMP/got.bin" || fail "tls_file_server: the 3 MB file differs"
run "${FCURL[@]}" -o /dev/null -w '%{http_code}' "$FURL/missing"
[[ "$out" == 404 ]] || fail "tls_file_server missing file: $out"
run "${FCURL[@]}" --path-as-is -o /dev/null -w '%{http_code}' "$FURL/../etc/passwd"
[[ "$out" == 400 ]] || fail "tls_file_server path escape: $out"
echo "ok: tls_file_server sends a 3 MB file intact on a keep-alive connection, 404, no path escape"
stop files

echo "examples_tls_test: all checks passed"
