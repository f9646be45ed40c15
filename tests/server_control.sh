# Sourced by the shell tests that run example servers (examples_tls, loadgen, smtp): start a
# server on an ephemeral port and learn the port from its "listening on" log line, stop it and
# check its exit, and kill whatever is left when the test exits. Needs $TMP set by the caller.
#
#   source "$RUNFILES/tests/server_control.sh"
#   launch echo "$EX/echoserv" --port=0 --interface 127.0.0.1 --shards 2   # sets echo_pid, echo_port
#   stop echo                                                              # SIGTERM, must exit 0

PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do kill -9 "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# launch NAME CMD...: runs CMD in the background (stdout $TMP/NAME.out, log $TMP/NAME.log), waits
# until it logs "listening on 127.0.0.1:PORT"; sets ${NAME}_pid and ${NAME}_port.
launch() {
  local name=$1
  shift
  "$@" >"$TMP/$name.out" 2>"$TMP/$name.log" &
  local pid=$! port="" _
  PIDS+=("$pid")
  for _ in $(seq 1 200); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$TMP/$name.log" | head -1)
    [[ -n "$port" ]] && break
    kill -0 "$pid" 2>/dev/null || fail "$name exited at start-up: $(cat "$TMP/$name.log")"
    sleep 0.05
  done
  [[ -n "$port" ]] || fail "$name never said where it listens: $(cat "$TMP/$name.log")"
  printf -v "${name}_pid" '%s' "$pid"
  printf -v "${name}_port" '%s' "$port"
  echo "started $name (pid $pid) on port $port"
}

# stop NAME: SIGTERM, then the server must exit 0 and log that it stopped.
stop() {
  local name=$1 pidvar="${1}_pid" rc
  kill -TERM "${!pidvar}"
  set +e
  wait "${!pidvar}"
  rc=$?
  set -e
  local p kept=()
  for p in "${PIDS[@]}"; do [[ $p == "${!pidvar}" ]] || kept+=("$p"); done
  PIDS=("${kept[@]+"${kept[@]}"}")
  [[ $rc == 0 ]] || fail "$name exit code after SIGTERM: $rc; log: $(cat "$TMP/$name.log")"
  grep -q "stopped" "$TMP/$name.log" || fail "$name: no stop message in $(cat "$TMP/$name.log")"
  echo "ok: $name exits 0 on SIGTERM"
}
