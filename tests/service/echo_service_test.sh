#!/usr/bin/env bash
# Runs the end-to-end tests of //examples:echo_service (echo_service_test.py) with the system
# Python 3, from the runfiles root. Arguments (see BUILD): the service binary, the CA file in
# certs/, then anything for unittest (e.g. a test name: ReloadTest.test_reload_under_load).
set -euo pipefail
binary=$1
ca=$2
shift 2
exec /usr/bin/python3 -u tests/service/echo_service_test.py --binary "$binary" \
  --certs "$(dirname "$ca")" "$@"
