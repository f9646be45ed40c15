#!/usr/bin/env bash
# Compile-failure test of Factory::forProtocol<P>(args...): wrong constructor arguments and a P
# that is not a Protocol must fail with a message in words that names P and the argument types,
# not deep inside unique_ptr.h. Runs g++ (as the build does: -std=c++20, the repository root on
# the include path) on tests/compile_fail/for_protocol.cc with one CASE_ macro at a time.
set -euo pipefail

ROOT="${TEST_SRCDIR:-$PWD/..}/whorl"
SNIPPET="$ROOT/tests/compile_fail/for_protocol.cc"
CXX="${CXX:-g++}"
TMP="${TEST_TMPDIR:-$(mktemp -d)}"
fail() { echo "FAIL: $*" >&2; exit 1; }

# compile NAME [FLAGS...]: compiles the snippet; its output is in $TMP/NAME.out, status in $rc.
compile() {
  local name=$1
  shift
  set +e
  "$CXX" -std=c++20 -fsyntax-only -I"$ROOT" "$@" "$SNIPPET" >"$TMP/$name.out" 2>&1
  rc=$?
  set -e
}

# The right arguments compile (so the failures below are the checks', not a missing header).
compile ok
[[ $rc == 0 ]] || fail "the correct use does not compile: $(cat "$TMP/ok.out")"

compile wrong_arguments -DCASE_WRONG_ARGUMENTS
[[ $rc != 0 ]] || fail "forProtocol<Chat>(8000) compiled; Chat needs (int, std::string)"
out="$TMP/wrong_arguments.out"
grep -q "P is not constructible from the given arguments" "$out" ||
  fail "no 'not constructible' message: $(cat "$out")"
grep -q "ForProtocolCheck<Chat, int>" "$out" ||
  fail "the message does not name P and Args: $(cat "$out")"
[[ $(grep -c "error:" "$out") == 1 ]] || fail "more than the one error: $(cat "$out")"

compile not_a_protocol -DCASE_NOT_A_PROTOCOL
[[ $rc != 0 ]] || fail "forProtocol<NotAProtocol>() compiled"
out="$TMP/not_a_protocol.out"
grep -q "P does not derive from whorl::api::Protocol" "$out" ||
  fail "no 'does not derive' message: $(cat "$out")"
grep -q "ForProtocolCheck<NotAProtocol>" "$out" || fail "the message does not name P: $(cat "$out")"
[[ $(grep -c "error:" "$out") == 1 ]] || fail "more than the one error: $(cat "$out")"

echo "PASS"
