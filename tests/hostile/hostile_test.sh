#!/usr/bin/env bash
# Runs the hostile-peer tests of //examples:echo_service (hostile_test.py) with the system
# Python 3, from the runfiles root, with the shared harness (tests/service/service_harness.py) on
# the import path. Arguments (see BUILD): the service binary, the CA file in certs/, then anything
# for unittest (e.g. a case: SlowlorisTest).
set -euo pipefail
binary=$1
ca=$2
shift 2
export PYTHONPATH="$PWD/tests/service${PYTHONPATH:+:$PYTHONPATH}"
exec /usr/bin/python3 -u tests/hostile/hostile_test.py --binary "$binary" \
  --certs "$(dirname "$ca")" "$@"
