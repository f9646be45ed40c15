#!/usr/bin/env bash
# End-to-end checks of //tools:loadgen against the example servers, each on an ephemeral port
# (parsed from its "listening on" log line): HTTP keep-alive against https_hello, TLS echo against
# echoserv_ssl, plain echo against echoserv, full and resumed handshakes, the open loop's rate,
# byte verification (a corrupting echo server), error kinds and exit codes, SIGINT.
set -euo pipefail

RUNFILES="${TEST_SRCDIR:-$PWD/..}/whorl"
EX="$RUNFILES/examples"
LOADGEN="$RUNFILES/tools/loadgen"
CA="$RUNFILES/certs/public.pem"
MISBEHAVING_ECHO="$RUNFILES/tests/loadgen/misbehaving_echo.py"
TMP="${TEST_TMPDIR:-$(mktemp -d)}"

source "$RUNFILES/tests/server_control.sh"

# start NAME BINARY [ARGS...]: a server on 127.0.0.1, port 0, one shard (the load generator gets
# the other core); sets ${NAME}_pid and ${NAME}_port.
start() {
  local name=$1
  shift
  launch "$name" "$@" --port=0 --interface 127.0.0.1 --shards 1
}

# Unlike the shared stop: only the exit code is checked here.
stop() {
  local pidvar="${1}_pid" rc
  kill -TERM "${!pidvar}"
  set +e
  wait "${!pidvar}"
  rc=$?
  set -e
  [[ $rc == 0 ]] || fail "$1 exit code after SIGTERM: $rc; log: $(cat "$TMP/$1.log")"
}

# run ARGS...: runs the load generator; sets $out (stdout), $err (stderr) and $rc.
run() {
  set +e
  out=$(timeout 60 "$LOADGEN" "$@" 2>"$TMP/stderr")
  rc=$?
  set -e
  err=$(cat "$TMP/stderr")
  [[ $rc != 124 ]] || fail "timed out: loadgen $*"
  echo "loadgen $* -> exit $rc"
}

# check NAME PYTHON-EXPRESSION: evaluates the expression over d, the JSON report in $out.
check() {
  local name=$1 expr=$2
  python3 - "$out" "$expr" <<'EOF' || fail "$name: $expr does not hold for: $out (stderr: $err)"
import json, sys
d = json.loads(sys.argv[1])
sys.exit(0 if eval("(" + sys.argv[2] + ")", {}, {"d": d}) else 1)
EOF
  echo "ok: $name: $expr"
}

# Every good run: something measured, no errors, a consistent latency summary.
GOOD='d["requests"] > 0 and d["errors"] == 0 and d["latency_us"]["count"] == d["requests"] and
      0 < d["latency_us"]["p50"] <= d["latency_us"]["p90"] <= d["latency_us"]["p99"] <=
      d["latency_us"]["p99_9"] <= d["latency_us"]["max"] and d["duration_s"] > 1.3'

# The warm-up must cover the handshakes (keep-alive runs check that none is measured): 0.5 s did
# not under ThreadSanitizer on a busy machine.
LG=(--duration 1.5 --warmup 1.5 --connections 8 --json)
TLS=(--ca "$CA" --hostname example.com)

start https "$EX/https_hello"
start echossl "$EX/echoserv_ssl"
start echo "$EX/echoserv"

# --- HTTP keep-alive --------------------------------------------------------------------------
run --mode=http --target "127.0.0.1:$https_port" "${TLS[@]}" "${LG[@]}"
[[ $rc == 0 ]] || fail "http: exit $rc: $out $err"
check "http keep-alive" "$GOOD"
check "http keep-alive" 'd["mb_in_per_sec"] > 0 and d["mb_out_per_sec"] > 0 and d["tls"] and d["path"] == "/"'
check "http keep-alive" 'd["handshakes"] == 0 and all(v == 0 for v in d["errors_by_kind"].values())'

run --mode=http --target "127.0.0.1:$https_port" "${TLS[@]}" "${LG[@]}" --pipeline 4 --shards 2
[[ $rc == 0 ]] || fail "http pipelined: exit $rc: $out $err"
check "http, 4 pipelined, 2 shards" "$GOOD"

# The text table.
run --mode=http --target "127.0.0.1:$https_port" "${TLS[@]}" --duration 1 --warmup 0.2
[[ $rc == 0 ]] || fail "http text: exit $rc: $out $err"
grep -qE '^  requests +[1-9][0-9]* +[0-9.]+$' <<<"$out" || fail "text: no requests row: $out"
grep -qE '^  latency us +p50 +p90 +p99 +p99\.9 +max +mean$' <<<"$out" || fail "text: latency: $out"
grep -qE '^  errors +0 *$' <<<"$out" || fail "text: errors: $out"
grep -qE '^  MB in ' <<<"$out" || fail "text: MB in: $out"
echo "ok: text report:"
echo "$out"

# --- echo -----------------------------------------------------------------------------------------
run --mode=echo --target "127.0.0.1:$echossl_port" "${TLS[@]}" "${LG[@]}" --size 1024 --pipeline 4
[[ $rc == 0 ]] || fail "echo tls: exit $rc: $out $err"
check "echo over TLS" "$GOOD"
check "echo over TLS" 'd["bytes_in"] >= d["requests"] * 1024 and d["size"] == 1024'

run --mode=echo --target "127.0.0.1:$echo_port" --tls=off "${LG[@]}" --size 16384
[[ $rc == 0 ]] || fail "echo plain: exit $rc: $out $err"
check "plain echo" "$GOOD"
check "plain echo" 'not d["tls"] and d["bytes_in"] >= d["requests"] * 16384'

# Every echoed byte is checked: a server that flips one bit per connection is caught.
python3 -u "$MISBEHAVING_ECHO" corrupt >"$TMP/corrupt.port" 2>"$TMP/corrupt.log" &
PIDS+=($!)
for _ in $(seq 1 100); do [[ -s "$TMP/corrupt.port" ]] && break; sleep 0.05; done
run --mode=echo --target "127.0.0.1:$(cat "$TMP/corrupt.port")" --tls=off "${LG[@]}"
check "corrupting echo server" 'd["errors_by_kind"]["mismatch"] > 0'
check "corrupting echo server" 'any("mismatch error: an echoed byte differs" in n for n in d["notes"])'

# --- handshakes --------------------------------------------------------------------------------------
run --mode=handshake --target "127.0.0.1:$https_port" "${TLS[@]}" "${LG[@]}"
[[ $rc == 0 ]] || fail "handshake: exit $rc: $out $err"
check "full handshakes" "$GOOD"
check "full handshakes" 'd["handshakes"] == d["requests"] and d["resumed"] == 0 and d["handshakes_per_sec"] > 0'

run --mode=handshake --resume --target "127.0.0.1:$https_port" "${TLS[@]}" "${LG[@]}"
[[ $rc == 0 ]] || fail "handshake --resume: exit $rc: $out $err"
check "resumed handshakes" "$GOOD"
check "resumed handshakes" 'd["resumed_fraction"] > 0.5'

run --mode=handshake --resume --request=http --target "127.0.0.1:$https_port" "${TLS[@]}" "${LG[@]}"
[[ $rc == 0 ]] || fail "handshake --request=http: exit $rc: $out $err"
check "resumed handshakes + GET" "$GOOD"
check "resumed handshakes + GET" 'd["resumed_fraction"] > 0.5 and d["request"] == "http"'

run --mode=handshake --resume --request=echo --warmup 0 --target "127.0.0.1:$echossl_port" \
  "${TLS[@]}" --duration 1.5 --connections 8 --json
[[ $rc == 0 ]] || fail "handshake --request=echo: exit $rc: $out $err"
check "resumed handshakes + echo, no warm-up" "$GOOD"
check "resumed handshakes + echo, no warm-up" 'd["resumed_fraction"] > 0.5 and d["resumed"] < d["handshakes"]'

run --mode=handshake --target "127.0.0.1:$echo_port" --tls=off "${LG[@]}"
[[ $rc == 0 ]] || fail "plain connections: exit $rc: $out $err"
check "plain TCP connection per request" "$GOOD"

# --- open loop ------------------------------------------------------------------------------------
run --mode=http --rate 500 --connections 10 --duration 2 --warmup 0.5 --json \
  --target "127.0.0.1:$https_port" "${TLS[@]}" --server-pid "$https_pid"
[[ $rc == 0 ]] || fail "open loop: exit $rc: $out $err"
check "open loop at 500/s" "$GOOD"
check "open loop at 500/s" '350 <= d["requests_per_sec"] <= 650 and d["rate"] == 500'
# --server-pid: the server's CPU and wake-ups over the window (it served ~1000 requests: it ran
# and slept), per request consistent with the totals.
check "server CPU" "d['server']['pid'] == $https_pid and d['server']['cpu_s'] > 0 and d['server']['wakeups'] > 0"
check "server CPU" 'abs(d["server"]["cpu_us_per_req"] - d["server"]["cpu_s"] * 1e6 / d["requests"]) < 0.01 * d["server"]["cpu_us_per_req"] + 0.01'
check "server CPU" 'abs(d["server"]["cpu_s"] - d["server"]["user_s"] - d["server"]["sys_s"]) < 1e-3'
run --mode=http --duration 0.5 --warmup 0 --connections 2 --json --target "127.0.0.1:$https_port" "${TLS[@]}"
check "no --server-pid, no server figures" '"server" not in d'
run --mode=http --target "127.0.0.1:$https_port" "${TLS[@]}" --server-pid 999999999 --json
[[ $rc == 2 && "$err" == *"--server-pid: no process 999999999"* ]] || fail "bad --server-pid: exit $rc: $err"
echo "ok: bad --server-pid: $err"

run --mode=handshake --resume --rate 100 --connections 4 --duration 2 --warmup 0.5 --json \
  --target "127.0.0.1:$https_port" "${TLS[@]}"
[[ $rc == 0 ]] || fail "open-loop handshakes: exit $rc: $out $err"
check "open-loop handshakes at 100/s" "$GOOD"
check "open-loop handshakes at 100/s" '70 <= d["handshakes_per_sec"] <= 130'

# A server that falls behind during the warm-up (0.9 s stalled, then catching up at ~1000/s
# against 500/s offered, behind until ~1.8 s): what it answers in the window for requests
# scheduled in the warm-up is not counted, so the achieved rate stays at the offered one (counted,
# it would be ~700/s).
python3 -u "$MISBEHAVING_ECHO" slow-start 0.9 0.001 >"$TMP/slow.port" 2>"$TMP/slow.log" &
PIDS+=($!)
for _ in $(seq 1 100); do [[ -s "$TMP/slow.port" ]] && break; sleep 0.05; done
run --mode=echo --rate 500 --connections 1 --duration 2 --warmup 1 --json --tls=off \
  --target "127.0.0.1:$(cat "$TMP/slow.port")"
[[ $rc == 0 ]] || fail "open loop, slow start: exit $rc: $out $err"
check "open loop after a slow start" "$GOOD"
check "open loop after a slow start" 'd["requests_per_sec"] <= 500 * 1.02'

# --- errors and exit codes ----------------------------------------------------------------------
run --mode=http --target "127.0.0.1:$https_port" --ca "$CA" --hostname wrong.example \
  --duration 0.5 --warmup 0 --connections 2 --json
[[ $rc == 1 ]] || fail "wrong name: exit $rc, want 1: $out $err"
check "wrong certificate name" 'd["requests"] == 0 and d["errors_by_kind"]["tls"] > 0'
check "wrong certificate name" 'any("hostname mismatch" in n for n in d["notes"])'

for bad in "--tls off" "--mode=nope" "--connections 0" "--bogus"; do
  # shellcheck disable=SC2086
  run --target "127.0.0.1:$https_port" $bad --duration 0.1
  [[ $rc == 2 ]] || fail "bad flags '$bad': exit $rc, want 2: $out $err"
  [[ -n "$err" ]] || fail "bad flags '$bad': no message"
done
run --duration 0.1
[[ $rc == 2 && "$err" == *"--target"* ]] || fail "no target: exit $rc: $err"
echo "ok: bad flags exit 2 with a message"

# SIGINT stops the run early and still reports.
"$LOADGEN" --mode=http --target "127.0.0.1:$https_port" "${TLS[@]}" --duration 30 --warmup 0 \
  --connections 2 --json >"$TMP/int.out" 2>"$TMP/int.err" &
lg=$!
PIDS+=("$lg")
sleep 1
kill -INT "$lg"
set +e
wait "$lg"
rc=$?
set -e
out=$(cat "$TMP/int.out")
err=$(cat "$TMP/int.err")
[[ $rc == 0 ]] || fail "SIGINT: exit $rc: $out $err"
check "SIGINT" 'd["requests"] > 0 and d["duration_s"] < 10 and any("interrupted" in n for n in d["notes"])'

stop echo
stop echossl
stop https
run --mode=http --target "127.0.0.1:$https_port" "${TLS[@]}" --duration 0.5 --warmup 0 --json
[[ $rc == 1 ]] || fail "no server: exit $rc, want 1: $out $err"
check "no server" 'd["requests"] == 0 and d["errors_by_kind"]["connect"] > 0'

echo "loadgen_test: all checks passed"
