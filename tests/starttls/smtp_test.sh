#!/usr/bin/env bash
# End-to-end checks of //examples:smtp_starttls with standard SMTP clients: openssl s_client
# -starttls smtp and curl's SMTP client each send a message over STARTTLS that must arrive intact
# on the server's standard output and in its Maildir; RFC 3207 §4.2 (MAIL after STARTTLS without a
# new EHLO is 503); --require-tls answers 530 before STARTTLS; a client that pipelines commands
# behind STARTTLS (CVE-2011-0411) is disconnected and nothing it injected executes; SIGTERM exits 0.
set -euo pipefail

RUNFILES="${TEST_SRCDIR:-$PWD/..}/whorl"
SMTP="$RUNFILES/examples/smtp_starttls"
CA="$RUNFILES/certs/public.pem"
TMP="${TEST_TMPDIR:-$(mktemp -d)}"
CLIENT_TIMEOUT=30

source "$RUNFILES/tests/server_control.sh"

# start NAME [ARGS...]: starts smtp_starttls on 127.0.0.1, port 0, two shards; sets ${NAME}_pid
# and ${NAME}_port. Its stdout is $TMP/NAME.out, its log $TMP/NAME.log.
start() {
  local name=$1
  shift
  launch "$name" "$SMTP" --port=0 --interface 127.0.0.1 --shards 2 --hostname mx.whorl.test "$@"
}


# run CMD...: runs a client with a time limit and stdin from $TMP/stdin; sets $out, $err, $rc.
run() {
  set +e
  out=$(timeout "$CLIENT_TIMEOUT" "$@" <"$TMP/stdin" 2>"$TMP/stderr")
  rc=$?
  set -e
  err=$(cat "$TMP/stderr")
  [[ $rc != 124 ]] || fail "timed out: $*
stdout: $out
stderr: $err"
}

# message NAME SENDER: the body of the message from SENDER as the server printed it (LF ends).
message() {
  awk -v head="-- message from <$2> " '
    index($0, head) == 1 { on = 1; next }
    on && $0 == "-- end of message" { exit }
    on { print }' "$TMP/$1.out"
}

# maildir_file DIR ID: the Maildir file of the message with queue id ID (two trace headers, then
# the message as received).
maildir_file() {
  grep -l "^Received: .* id $2;" "$1"/new/* 2>/dev/null | head -1
}


MAILDIR="$TMP/maildir"
start mx --maildir "$MAILDIR"

# --- openssl s_client -starttls smtp -------------------------------------------------------------
# A message with a dot-stuffed line (s_client sends stdin verbatim; -crlf turns LF into CRLF), an
# 8-bit line and an empty line. The session must be greeted again after STARTTLS.
printf '%s\n' \
  "EHLO openssl.client.test" \
  "MAIL FROM:<alice@example.com>" \
  "RCPT TO:<bob@example.com>" \
  "RCPT TO:<carol@example.com>" \
  "DATA" \
  "From: alice@example.com" \
  "Subject: over openssl s_client" \
  "" \
  "first line" \
  "..a line that starts with a dot" \
  "caf$(printf '\xc3\xa9') 8-bit" \
  "." \
  "QUIT" >"$TMP/stdin"
run openssl s_client -starttls smtp -connect "127.0.0.1:$mx_port" -CAfile "$CA" \
  -verify_hostname example.com -verify_return_error -crlf -quiet
[[ $rc == 0 ]] || fail "s_client exit $rc: $out $err"
replies=$(tr -d '\r' <<<"$out")  # the server's replies after the handshake
! grep -q "Didn't find STARTTLS" <<<"$err" || fail "STARTTLS was not advertised: $err"
grep -q "^250 OK: queued as " <<<"$replies" || fail "s_client: no 250 after the data: $out $err"
grep -q "^221 " <<<"$replies" || fail "s_client: no 221 after QUIT: $out"
# After STARTTLS, EHLO no longer offers it.
grep -q "^250-mx.whorl.test greets openssl.client.test" <<<"$replies" || fail "no EHLO reply over TLS: $out"
! grep -q "STARTTLS" <<<"$replies" || fail "STARTTLS advertised again over TLS: $out"
expected=$'From: alice@example.com\nSubject: over openssl s_client\n\nfirst line\n.a line that starts with a dot\ncaf\xc3\xa9 8-bit'
got=$(message mx alice@example.com)
[[ "$got" == "$expected" ]] || fail "s_client message printed as:
$got
--- expected:
$expected
--- server output:
$(cat "$TMP/mx.out")"
grep -qF -- "-- message from <alice@example.com> to <bob@example.com>, <carol@example.com> (TLS: TLSv1.3)" \
  "$TMP/mx.out" || fail "header line: $(cat "$TMP/mx.out")"
id=$(sed -n 's/^250 OK: queued as \([0-9A-F]*\)$/\1/p' <<<"$replies")
file=$(maildir_file "$MAILDIR" "$id")
[[ -n "$file" ]] || fail "no Maildir file for queue id $id: $(ls -la "$MAILDIR/new")"
head -1 "$file" | grep -q "^Return-Path: <alice@example.com>" || fail "Return-Path: $(head -2 "$file")"
sed -n 2p "$file" | grep -q "^Received: from openssl.client.test (127.0.0.1:[0-9]*) by mx.whorl.test with ESMTPS (TLSv1.3)" ||
  fail "Received: $(sed -n 2p "$file")"
printf '%s\r\n' "From: alice@example.com" "Subject: over openssl s_client" "" "first line" \
  ".a line that starts with a dot" "caf$(printf '\xc3\xa9') 8-bit" >"$TMP/expected.eml"
tail -n +3 "$file" | cmp -s - "$TMP/expected.eml" || fail "Maildir file differs: $(cat -A "$file")"
echo "ok: openssl s_client -starttls smtp delivered a message (queue id $id), stdout and Maildir intact"

# --- curl's SMTP client ---------------------------------------------------------------------------
# curl dot-stuffs the file itself and ends it with CRLF.CRLF; 300 KB of lines checks larger bodies.
{
  printf 'From: a@example.com\r\nTo: b@example.com\r\nSubject: over curl\r\n\r\n'
  printf '.starts with a dot\r\n..two dots\r\n.\r\nafter a lone dot line\r\n'
  for i in $(seq 1 5000); do printf 'line %05d: the quick brown fox jumps over the lazy dog\r\n' "$i"; done
  printf 'last line\r\n'
} >"$TMP/curl.eml"
: >"$TMP/stdin"
run curl -sS -v --ssl-reqd --cacert "$CA" --resolve "example.com:$mx_port:127.0.0.1" \
  "smtp://example.com:$mx_port" --mail-from a@example.com --mail-rcpt b@example.com \
  -T "$TMP/curl.eml"
[[ $rc == 0 ]] || fail "curl exit $rc: $out $err"
grep -q "^> STARTTLS" <<<"$err" || fail "curl did not use STARTTLS: $err"
grep -q "SSL connection using TLSv1.3" <<<"$err" || fail "curl: no TLS 1.3: $err"
got=$(message mx a@example.com)
[[ "$got" == "$(tr -d '\r' <"$TMP/curl.eml")" ]] || fail "curl's message differs on stdout:
$(diff <(echo "$got") <(tr -d '\r' <"$TMP/curl.eml") | head -20)"
grep -qF -- "-- message from <a@example.com> to <b@example.com> (TLS: TLSv1.3)" "$TMP/mx.out" ||
  fail "curl header line: $(grep -- '^-- message' "$TMP/mx.out")"
id=$(sed -n 's/^< 250 OK: queued as \([0-9A-F]*\).*$/\1/p' <<<"$err" | tr -d '\r')
file=$(maildir_file "$MAILDIR" "$id")
[[ -n "$file" ]] || fail "no Maildir file for curl's message (id '$id'): $err"
tail -n +3 "$file" | cmp -s - "$TMP/curl.eml" || fail "curl's Maildir file differs from what it sent"
echo "ok: curl --ssl-reqd delivered $(wc -c <"$TMP/curl.eml") bytes (queue id $id) intact"

# --- RFC 3207 §4.2: the session starts over after STARTTLS ---------------------------------------
printf '%s\n' "MAIL FROM:<early@example.com>" "EHLO again.test" "MAIL FROM:<early@example.com>" \
  "RSET" "NOOP" "FROB" "RCPT TO:<x@example.com>" "QUIT" >"$TMP/stdin"
run openssl s_client -starttls smtp -connect "127.0.0.1:$mx_port" -CAfile "$CA" \
  -verify_hostname example.com -verify_return_error -crlf -quiet
codes=$(tr -d '\r' <<<"$out" | grep -v "^250-" | cut -c1-3 | tr '\n' ' ')
[[ "$codes" == "503 250 250 250 250 500 503 221 " ]] || fail "reply codes after STARTTLS: $codes
$out"
echo "ok: after STARTTLS, MAIL before a new EHLO is 503; RSET/NOOP 250; unknown 500; replies: $codes"

# --- plaintext: STARTTLS advertised, mail accepted without TLS ------------------------------------
cat >"$TMP/plain.py" <<'PY'
import socket, sys

port, script = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=20)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
buf = b""

def reply():
    """One (possibly multi-line) reply, lines joined with |."""
    global buf
    lines = []
    while True:
        while b"\r\n" not in buf:
            d = s.recv(65536)
            if not d:
                raise SystemExit("EOF; got %r %r" % (lines, buf))
            buf += d
        line, buf = buf.split(b"\r\n", 1)
        lines.append(line.decode())
        if line[3:4] != b"-":
            return "|".join(lines)

print(reply())
if script == "inject":
    s.sendall(b"EHLO evil.test\r\n")
    print(reply())
    # STARTTLS and a whole transaction in one segment: CVE-2011-0411.
    s.sendall(b"STARTTLS\r\nMAIL FROM:<mallory@evil.test>\r\nRCPT TO:<victim@example.com>\r\n"
              b"DATA\r\ninjected\r\n.\r\nQUIT\r\n")
    rest = buf
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            rest += d
        print("EOF after %r" % rest)
    except ConnectionResetError:
        print("RESET after %r" % rest)
    raise SystemExit(0)
# Commands are separated by ";"; a newline inside one sends several lines before reading a reply.
for cmd in script.split(";"):
    s.sendall(cmd.replace("\n", "\r\n").encode() + b"\r\n")
    print(reply())
PY
: >"$TMP/stdin"
run python3 "$TMP/plain.py" "$mx_port" \
  "EHLO plain.test;MAIL FROM:<p@example.com>;RCPT TO:<q@example.com>;DATA;Subject: plain"$'\n'".;QUIT"
[[ $rc == 0 ]] || fail "plain client: $out $err"
grep -q "^250-mx.whorl.test greets plain.test|250-PIPELINING|250-SIZE [0-9]*|250-8BITMIME|250 STARTTLS$" <<<"$out" ||
  fail "EHLO before TLS does not advertise STARTTLS last: $out"
grep -q "^250 OK: queued as" <<<"$out" || fail "plain mail not accepted: $out"
grep -qF -- "-- message from <p@example.com> to <q@example.com> (TLS: none)" "$TMP/mx.out" ||
  fail "plain message: $(cat "$TMP/mx.out")"
echo "ok: without --require-tls, EHLO advertises STARTTLS and plaintext mail is accepted"

# --- injection: commands pipelined behind STARTTLS never execute ---------------------------------
run python3 "$TMP/plain.py" "$mx_port" inject
[[ $rc == 0 ]] || fail "injecting client: $out $err"
grep -q "^\(EOF\|RESET\) after b'220 Ready to start TLS\\\\r\\\\n'$" <<<"$out" ||
  fail "the injecting client got more than the go-ahead: $out"
for _ in $(seq 1 100); do
  grep -q "CVE-2011-0411" "$TMP/mx.log" && break
  sleep 0.05
done
grep -q "connection lost: .*CVE-2011-0411" "$TMP/mx.log" || fail "no CVE-2011-0411 log: $(cat "$TMP/mx.log")"
! grep -q "mallory\|victim\|injected" "$TMP/mx.out" || fail "the injected transaction executed: $(cat "$TMP/mx.out")"
[[ "$(grep -c -- '^-- message from' "$TMP/mx.out")" == 3 ]] || fail "unexpected messages: $(cat "$TMP/mx.out")"
echo "ok: STARTTLS + pipelined MAIL/RCPT/DATA in one segment: closed after the 220, nothing executed"

stop mx
[[ "$(ls "$MAILDIR/new" | wc -l)" == 3 ]] || fail "Maildir holds: $(ls "$MAILDIR/new")"

# --- --require-tls -----------------------------------------------------------------------------
start strict --require-tls
run python3 "$TMP/plain.py" "$strict_port" \
  "EHLO plain.test;MAIL FROM:<p@example.com>;RCPT TO:<q@example.com>;DATA;NOOP;QUIT"
[[ $rc == 0 ]] || fail "plain client against --require-tls: $out $err"
mapfile -t lines <<<"$out"
[[ "${lines[0]}" == "220 mx.whorl.test ESMTP whorl" ]] || fail "greeting: ${lines[0]}"
[[ "${lines[2]}" == "530 Must issue a STARTTLS command first" ]] || fail "MAIL without TLS: $out"
[[ "${lines[3]}" == 530* && "${lines[4]}" == 530* ]] || fail "RCPT/DATA without TLS: $out"
[[ "${lines[5]}" == "250 OK" && "${lines[6]}" == 221* ]] || fail "NOOP/QUIT: $out"
echo "ok: --require-tls: plain MAIL gets '${lines[2]}'"

run curl -sS --ssl-reqd --cacert "$CA" --resolve "example.com:$strict_port:127.0.0.1" \
  "smtp://example.com:$strict_port" --mail-from a@example.com --mail-rcpt b@example.com \
  -T "$TMP/curl.eml"
[[ $rc == 0 ]] || fail "curl against --require-tls: exit $rc: $err"
[[ "$(message strict a@example.com)" == "$(tr -d '\r' <"$TMP/curl.eml")" ]] ||
  fail "curl's message differs with --require-tls"
[[ "$(grep -c -- '^-- message from' "$TMP/strict.out")" == 1 ]] || fail "strict: $(cat "$TMP/strict.out")"
echo "ok: --require-tls: curl --ssl-reqd delivers after STARTTLS"
stop strict

# --- --idle-timeout: an idle client gets 421 and is closed, plain and after STARTTLS -------------
start idle --idle-timeout 1
cat >"$TMP/idle.py" <<'PY'
import socket, ssl, sys, time

port, mode, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port), timeout=30)
f = s.makefile("rb")

def reply(f):
    lines = []
    while True:
        line = f.readline()
        if not line:
            raise SystemExit("EOF; got %r" % lines)
        lines.append(line.decode().rstrip("\r\n"))
        if line[3:4] != b"-":
            return "|".join(lines)

reply(f)
s.sendall(b"EHLO idle.test\r\n")
reply(f)
if mode == "tls":
    s.sendall(b"STARTTLS\r\n")
    print(reply(f))
    ctx = ssl.create_default_context(cafile=ca)
    s = ctx.wrap_socket(s, server_hostname="example.com")
    f = s.makefile("rb")
    s.sendall(b"EHLO idle.test\r\n")
    reply(f)
# Now idle: the server must speak first, then close.
start = time.monotonic()
rest = f.read()
print("after %.1f s: %r" % (time.monotonic() - start, rest))
PY
: >"$TMP/stdin"
for mode in plain tls; do
  run python3 "$TMP/idle.py" "$idle_port" "$mode" "$CA"
  [[ $rc == 0 ]] || fail "idle $mode client: $out $err"
  grep -q "^after [0-9.]* s: b'421 mx.whorl.test idle timeout, closing connection\\\\r\\\\n'$" <<<"$out" ||
    fail "idle $mode client did not get 421 and EOF: $out"
  # Closed by the timeout, not at once: about 1 s after the last reply.
  elapsed=$(sed -n 's/^after \([0-9.]*\) s:.*/\1/p' <<<"$out")
  awk -v e="$elapsed" 'BEGIN { exit !(e >= 0.5) }' || fail "idle $mode: closed after only $elapsed s"
done
grep -q "^220 Ready to start TLS" <<<"$out" || fail "the TLS idle client did not start TLS: $out"
for _ in $(seq 1 200); do
  [[ "$(grep -c "idle timeout, no activity for 1 s" "$TMP/idle.log")" -ge 2 ]] && break
  sleep 0.05
done
[[ "$(grep -c "idle timeout, no activity for 1 s" "$TMP/idle.log")" -ge 2 ]] ||
  fail "the log does not name the idle timeout twice: $(cat "$TMP/idle.log")"
echo "ok: --idle-timeout 1: idle clients get 421 and are closed, plain and after STARTTLS; logged"
stop idle

echo "PASS"
